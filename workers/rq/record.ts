/**
 * The worker's own record, as rq's register_birth / heartbeat / register_death keep it:
 * rq:worker:<name> (birth, last_heartbeat, queues, pid, hostname, ip_address, version,
 * python_version, state), rq:workers and rq:workers:<queue>, with rq's TTLs.
 */
import os from 'node:os';
import type Redis from 'ioredis';
import { DEATH, HEARTBEAT, REGISTER } from './scripts';
import { instant, RQ_VERSION, rqKey } from './keys';

export interface HeartbeatEntry {
  id: string;
  queue: string;
  executionId: string;
  ttl: number;
}

export class WorkerRecord {
  readonly key: string;
  constructor(
    private readonly redis: Redis,
    readonly name: string,
    readonly queues: readonly string[],
  ) {
    this.key = rqKey.worker(name);
  }

  /** rq names its connection after the worker and records the address Redis sees it from. */
  private async ipAddress(): Promise<string> {
    try {
      await this.redis.client('SETNAME', this.name);
      const list = String(await this.redis.client('LIST'));
      const line = list.split('\n').find((l) => l.includes(` name=${this.name} `));
      return line?.match(/\baddr=(\S+)/)?.[1] ?? 'unknown';
    } catch {
      return 'unknown';
    }
  }

  async register(ttl: number): Promise<void> {
    const now = instant();
    const fields: Record<string, string> = {
      birth: now.iso,
      last_heartbeat: now.iso,
      queues: this.queues.join(','),
      pid: String(process.pid),
      hostname: os.hostname(),
      ip_address: await this.ipAddress(),
      version: RQ_VERSION,
      python_version: `Celeriac 0.1.0 (Node ${process.version})`,
      state: 'started',
    };
    await REGISTER.run(this.redis, [this.key], [ttl, this.queues.length, ...this.queues, ...Object.entries(fields).flat()]);
  }

  async setState(state: 'idle' | 'busy' | 'suspended'): Promise<void> {
    await this.redis.hset(this.key, 'state', state);
  }

  async heartbeat(ttl: number, running: readonly HeartbeatEntry[]): Promise<void> {
    const now = instant();
    const jobs = running.flatMap((r) => [r.id, r.queue, r.executionId, r.ttl]);
    await HEARTBEAT.run(this.redis, [this.key], [now.iso, now.ts, now.int, ttl, ...jobs]);
  }

  async death(): Promise<void> {
    await DEATH.run(this.redis, [this.key], [instant().iso, ...this.queues]);
  }
}
