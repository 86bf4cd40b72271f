/**
 * A private redis-server for one bench suite: free loopback port, temp dir, no persistence, and
 * the ioredis clients the suite opens on it (closed with it).
 */
import { mkdirSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import Redis from 'ioredis';
import { freePort, sleep, start, stop, type Proc } from './common';

export class PrivateRedis {
  private readonly clients: Redis[] = [];

  private constructor(
    readonly proc: Proc,
    readonly port: number,
  ) {}

  static async start(dir: string): Promise<PrivateRedis> {
    mkdirSync(dir, { recursive: true });
    const port = await freePort();
    const proc = start('redis-server', 'redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--daemonize', 'no']);
    const t0 = performance.now();
    while (!/Ready to accept connections/.test(proc.output())) {
      if (proc.exited) throw new Error(`redis-server exited:\n${proc.output()}`);
      if (performance.now() - t0 > 10_000) throw new Error(`redis-server not ready after 10 s:\n${proc.output()}`);
      await sleep(20);
    }
    return new PrivateRedis(proc, port);
  }

  url(db: number): string {
    return `redis://127.0.0.1:${this.port}/${db}`;
  }

  /** A client that gives up quickly when the server is gone (a bench must not hang on it). */
  connect(db: number): Redis {
    const c = new Redis(this.url(db), { maxRetriesPerRequest: 1, retryStrategy: (times) => (times > 50 ? null : 50) });
    this.clients.push(c);
    return c;
  }

  /** Disconnect the clients and stop the server (workers are stopped by the caller first). */
  async stop(): Promise<void> {
    for (const c of this.clients.splice(0)) c.disconnect();
    await stop(this.proc, 5_000);
  }
}
