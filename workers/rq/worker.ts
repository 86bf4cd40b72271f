/**
 * `celeriac worker --rq`: takes jobs from rq queues, runs the TypeScript function registered under
 * the job's dotted func_name, and leaves Redis as an rq worker would (see commands/*.lua).
 *
 * Up to `concurrency` jobs run at once (rq runs one per worker process); the worker record shows
 * `busy` while any runs and the latest started job as `current_job`.
 */
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type Redis from 'ioredis';
import { closeRedis, connectRedis, type Outcome, type TaskDefinition, type TaskPool } from '../index';
import { CLAIM, FINISH, SCHEDULE } from './scripts';
import { DEFAULT_RESULT_TTL, DEFAULT_WORKER_TTL, instant, JOB_MONITORING_INTERVAL, rqKey, type Instant } from './keys';
import { decodeCall, fieldsOf, RefusedJobError, timeoutOf, type RqJob } from './jobData';
import { excPayload, excString } from './failure';
import { runJob, type RunningJob } from './run';
import { WorkerRecord } from './record';
import { listenForCommands, type CommandListener } from './commands';
import { MAINTENANCE_INTERVAL, maintainQueues } from './maintenance';

export interface RqLogger {
  info(msg: string): void;
  warn(msg: string): void;
  error(msg: string): void;
}

export interface RqWorkerOptions {
  redisUrl: string;
  /** In priority order, as `rq worker high default low`. */
  queues: readonly string[];
  /** rq's worker name (default: a uuid4 hex, as rq). */
  name?: string;
  concurrency: number;
  pool: TaskPool;
  tasks: ReadonlyMap<string, TaskDefinition>;
  log: RqLogger;
  workerTtl?: number;
  defaultResultTtl?: number;
  /** Seconds between heartbeats of running jobs (rq's job_monitoring_interval). */
  monitoringInterval?: number;
  /** rq's `shutdown` command arrived (default: a warm stop). */
  onShutdownCommand?: () => void;
}

interface Running extends RunningJob {
  started: Instant;
  startedMs: number;
  stopRequested: boolean;
}

type Claimed = [Buffer, Buffer, Buffer, Buffer[]];

/** What 'job-ended' carries (finish.lua's answer as status); 'job-started' carries the func_name. */
export interface RqJobEnd {
  id: string;
  funcName: string;
  status: string;
  seconds: number;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class RqWorker extends EventEmitter {
  readonly name: string;
  private readonly redis: Redis;
  private readonly blocking: Redis;
  private readonly record: WorkerRecord;
  private readonly running = new Map<string, Running>();
  private readonly timers: NodeJS.Timeout[] = [];
  private commands: CommandListener | null = null;
  private stopping = false;
  private suspended = false;
  private loopDone: Promise<void> = Promise.resolve();
  private wake: (() => void) | null = null;
  private readonly finishing = new Set<Promise<void>>();

  constructor(private readonly opts: RqWorkerOptions) {
    super();
    if (opts.queues.length === 0) throw new Error('rq worker: at least one queue is needed');
    this.name = opts.name ?? randomUUID().replace(/-/g, '');
    this.redis = connectRedis(opts.redisUrl, { logger: opts.log, name: 'rq' });
    this.blocking = connectRedis(opts.redisUrl, { logger: opts.log, name: 'rq (blocking)' });
    this.record = new WorkerRecord(this.redis, this.name, opts.queues);
  }

  get queues(): readonly string[] {
    return this.opts.queues;
  }

  get concurrency(): number {
    return this.opts.concurrency;
  }

  get activeCount(): number {
    return this.running.size;
  }

  /** The worker's command connection (the metrics endpoint reads queue depths over it). */
  get connection(): Redis {
    return this.redis;
  }

  private get workerTtl(): number {
    return this.opts.workerTtl ?? DEFAULT_WORKER_TTL;
  }

  private get monitoring(): number {
    return this.opts.monitoringInterval ?? JOB_MONITORING_INTERVAL;
  }

  async start(): Promise<void> {
    await this.redis.connect();
    await this.blocking.connect();
    await this.record.register(this.workerTtl + 60);
    this.commands = await listenForCommands(this.opts.redisUrl, this.name, this.opts.log, {
      shutdown: () => (this.opts.onShutdownCommand ?? (() => void this.stop('warm')))(),
      killHorse: () => this.killAll('Work-horse terminated unexpectedly; killed by the kill-horse command'),
      stopJob: (id) => this.stopJob(id),
    });
    await this.record.setState('idle');
    this.timers.push(setInterval(() => void this.heartbeat(), this.monitoring * 1000));
    this.timers.push(setInterval(() => void this.schedule(), 1000));
    this.timers.push(setInterval(() => void this.maintain(), MAINTENANCE_INTERVAL * 1000));
    await this.maintain();
    this.opts.log.info(`Worker ${this.name}: started with PID ${process.pid}; listening on ${this.opts.queues.join(', ')}`);
    this.loopDone = this.loop();
  }

  /** Warm: take no more jobs, let the running ones end and record them. Cold: leave them to rq's cleanup. */
  async stop(mode: 'warm' | 'cold'): Promise<void> {
    this.stopping = true;
    this.wake?.();
    await this.loopDone;
    if (mode === 'warm') {
      while (this.running.size || this.finishing.size) await Promise.all([...this.finishing, ...[...this.running.values()].map((r) => r.outcome)]);
    }
    for (const t of this.timers) clearInterval(t);
    await this.record.death().catch((err: Error) => this.opts.log.error(`Worker ${this.name}: could not register death: ${err.message}`));
    await this.commands?.close();
    await closeRedis(this.blocking);
    await closeRedis(this.redis);
  }

  private async loop(): Promise<void> {
    let backoff = 500;
    while (!this.stopping) {
      try {
        if (await this.checkSuspended()) {
          await sleep(1000);
          continue;
        }
        // A job holds its slot until its end is recorded (finish.lua), as in rq.
        const free = this.opts.concurrency - this.running.size - this.finishing.size;
        if (free <= 0) {
          await new Promise<void>((resolve) => (this.wake = resolve));
          continue;
        }
        const claimed = await this.claimMany(free);
        if (claimed.length === 0) {
          const given = await this.blockingPop();
          if (given) claimed.push(...given);
        }
        for (const c of claimed) this.begin(c);
        backoff = 500;
      } catch (err) {
        if (this.stopping) break;
        this.opts.log.error(`Worker ${this.name}: could not dequeue (${(err as Error).message}); retrying in ${backoff} ms`);
        await sleep(backoff);
        backoff = Math.min(backoff * 2, 30_000);
      }
    }
  }

  /** rq's check_for_suspension: `rq suspend` sets rq:suspended; the worker idles as `suspended`. */
  private async checkSuspended(): Promise<boolean> {
    const now = (await this.redis.exists(rqKey.suspended)) === 1;
    if (now !== this.suspended) {
      this.suspended = now;
      this.opts.log.info(now ? `Worker ${this.name}: suspended, run \`rq resume\` to resume` : `Worker ${this.name}: resumed`);
      await this.record.setState(now ? 'suspended' : this.running.size ? 'busy' : 'idle');
    }
    return now;
  }

  private claimArgs(mode: 'pop' | 'given'): (string | number)[] {
    const now = instant();
    return [mode, this.name, now.iso, now.ts, now.int, this.monitoring];
  }

  private async claimMany(n: number): Promise<Claimed[]> {
    const executionIds = Array.from({ length: n }, () => randomUUID().replace(/-/g, ''));
    const args = [...this.claimArgs('pop'), n, this.opts.queues.length, ...this.opts.queues, ...executionIds];
    return (await CLAIM.runBuffer(this.redis, [this.record.key], args)) as Claimed[];
  }

  /**
   * Nothing queued: wait as rq does, BLMOVE into the queue's intermediate list for one queue
   * (Redis >= 6.2), BLPOP over several; then claim.lua records the start.
   */
  private async blockingPop(): Promise<Claimed[] | null> {
    const queues = this.opts.queues;
    let queue: string;
    let id: string | null;
    if (queues.length === 1) {
      queue = queues[0]!;
      id = await this.blocking.blmove(rqKey.queue(queue), rqKey.intermediate(queue), 'LEFT', 'RIGHT', 1);
    } else {
      const popped = await this.blocking.blpop(...queues.map(rqKey.queue), 1);
      if (!popped) return null;
      queue = popped[0].slice('rq:queue:'.length);
      id = popped[1];
    }
    if (!id) return null;
    const args = [...this.claimArgs('given'), id, queue, queues.length === 1 ? '1' : '0', randomUUID().replace(/-/g, '')];
    return (await CLAIM.runBuffer(this.redis, [this.record.key], args)) as Claimed[];
  }

  private begin([queueB, idB, execB, flat]: Claimed): void {
    const fields = fieldsOf(flat);
    const timeout = timeoutOf(fields);
    const base = {
      id: idB.toString(),
      queue: queueB.toString(),
      executionId: execB.toString(),
      timeout,
      heartbeatTtl: timeout && timeout > 0 ? Math.floor(Math.min(timeout, this.monitoring)) + 60 : this.monitoring + 60,
    };
    const started = instant();
    const settle = (job: RqJob, outcome: Outcome, kind: 'run' | 'refuse' | 'stop'): void => {
      const p = this.finish(job, started, outcome, kind).finally(() => {
        this.finishing.delete(p);
        this.wake?.();
      });
      this.finishing.add(p);
    };
    let job: RqJob;
    try {
      job = { ...base, ...decodeCall(fields.get('data')) };
    } catch (err) {
      const reason = err instanceof RefusedJobError ? err : new RefusedJobError(String(err));
      this.opts.log.warn(`Worker ${this.name}: job ${base.id} refused: ${reason.message}`);
      settle({ ...base, funcName: '?', args: [], kwargs: {} }, { ok: false, error: reason }, 'refuse');
      return;
    }
    this.opts.log.info(`Worker ${this.name}: ${job.queue}: ${job.funcName} (${job.id})`);
    this.emit('job-started', job.funcName);
    const def = this.opts.tasks.get(job.funcName);
    if (!def) {
      const error = new Error(`Celeriac has no function registered as ${JSON.stringify(job.funcName)}`);
      error.name = 'AttributeError';
      settle(job, { ok: false, error }, 'run');
      return;
    }
    const run: Running = { ...runJob(this.opts.pool, def, job, this.name), started, startedMs: Date.now(), stopRequested: false };
    this.running.set(job.id, run);
    void run.outcome.then((outcome) => {
      this.running.delete(job.id);
      settle(job, outcome, run.stopRequested ? 'stop' : 'run');
    });
  }

  /** Records the end (finish.lua); a Redis outage is waited out, never dropped. */
  private async finish(job: RqJob, started: Instant, outcome: Outcome, kind: 'run' | 'refuse' | 'stop'): Promise<void> {
    const ended = instant();
    let value = '';
    let exc = '';
    if (outcome.ok) {
      if (outcome.value !== undefined && outcome.value !== null) {
        let json: string;
        try {
          json = JSON.stringify(outcome.value) ?? 'null';
        } catch {
          json = JSON.stringify('Unserializable return value');
        }
        value = Buffer.from(json, 'utf8').toString('base64');
      }
    } else {
      const text = kind === 'stop' ? 'Job stopped by user, work-horse terminated.' : excString(outcome.error);
      exc = excPayload(text);
      if (kind === 'run') this.opts.log.error(`Worker ${this.name}: job ${job.id}: exception raised while executing (${job.funcName})\n${text}`);
    }
    const outcomeName = outcome.ok ? 'ok' : kind === 'run' ? 'fail' : kind;
    const worked = (Number(ended.ts) - Number(started.ts)).toFixed(6);
    const args = [
      job.id,
      job.queue,
      job.executionId,
      this.name,
      ended.iso,
      ended.int,
      ended.ts,
      outcomeName,
      value,
      exc,
      started.ts,
      worked,
      this.opts.defaultResultTtl ?? DEFAULT_RESULT_TTL,
      this.running.size > 0 ? '1' : '0',
    ];
    for (let backoff = 500; ; backoff = Math.min(backoff * 2, 30_000)) {
      try {
        const status = String(await FINISH.run(this.redis, [this.record.key], args));
        this.emit('job-ended', { id: job.id, funcName: job.funcName, status, seconds: Number(worked) } satisfies RqJobEnd);
        this.opts.log.info(`Worker ${this.name}: ${job.queue}: ${status === 'finished' ? 'Job OK' : status} (${job.id})`);
        return;
      } catch (err) {
        this.opts.log.error(`Worker ${this.name}: could not record the end of job ${job.id} (${(err as Error).message}); retrying in ${backoff} ms`);
        await sleep(backoff);
      }
    }
  }

  private killAll(reason: string): void {
    if (this.running.size === 0) this.opts.log.info(`Worker ${this.name}: not working, kill horse command ignored`);
    for (const run of this.running.values()) run.kill(new Error(reason));
  }

  private stopJob(id: string): void {
    const run = this.running.get(id);
    if (!run) {
      this.opts.log.info(`Worker ${this.name}: not working on job ${id}, command ignored`);
      return;
    }
    run.stopRequested = true;
    run.kill(new Error('Job stopped by user, work-horse terminated.'));
  }

  /** rq's heartbeat / maintain_heartbeats; the worker key lives worker_ttl + 60 when idle. */
  private async heartbeat(): Promise<void> {
    const running = [...this.running.values()].map((r) => ({ id: r.job.id, queue: r.job.queue, executionId: r.job.executionId, ttl: r.job.heartbeatTtl }));
    const ttl = running.length ? this.monitoring + 60 : this.workerTtl + 60;
    await this.record.heartbeat(ttl, running).catch((err: Error) => this.opts.log.warn(`Worker ${this.name}: heartbeat failed: ${err.message}`));
  }

  private async maintain(): Promise<void> {
    try {
      const cleaned = await maintainQueues(this.redis, this.opts.queues, this.name);
      if (cleaned.length) this.opts.log.warn(`Worker ${this.name}: maintenance: abandoned jobs retried or failed: ${cleaned.join(', ')}`);
    } catch (err) {
      this.opts.log.warn(`Worker ${this.name}: maintenance failed: ${(err as Error).message}`);
    }
  }

  /** Retries with an interval wait in rq:scheduled:<queue>; due ones go back onto their queue. */
  private async schedule(): Promise<void> {
    const now = instant();
    await SCHEDULE.run(this.redis, [], [this.name, 61, now.int, now.iso, ...this.opts.queues]).catch((err: Error) =>
      this.opts.log.warn(`Worker ${this.name}: scheduler tick failed: ${err.message}`),
    );
  }
}
