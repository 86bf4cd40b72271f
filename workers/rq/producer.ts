/**
 * Enqueueing rq jobs from TypeScript, by function name, as Python's
 * `Queue(name, serializer=JSONSerializer).enqueue_call(func_name, args, kwargs, ...)` writes them,
 * so a Python `rq worker` (or `celeriac worker --rq`) runs them. Plus actinia's choice of queue:
 * one per job, one per user, or round-robin over N worker queues (`INCR actinia_worker_count`).
 */
import { randomUUID } from 'node:crypto';
import { deflateSync } from 'node:zlib';
import type Redis from 'ioredis';
import { ENQUEUE } from './scripts';
import { DEFAULT_JOB_TIMEOUT, rqKey, utcformat } from './keys';

export interface RqEnqueueOptions {
  queue?: string;
  jobId?: string;
  /** Seconds the job may run; -1 = no limit (rq's default: 180). */
  timeout?: number;
  resultTtl?: number;
  failureTtl?: number;
  /** Seconds the job may wait in the queue before Redis drops it. */
  ttl?: number;
  description?: string;
  atFront?: boolean;
  meta?: Record<string, unknown>;
  /** rq's Retry(max, interval). */
  retry?: { max: number; interval?: number | number[] };
}

/** A short Python-ish call string, as rq's get_call_string. */
function callString(funcName: string, args: readonly unknown[], kwargs: Record<string, unknown>): string {
  const parts = [...args.map((a) => JSON.stringify(a)), ...Object.entries(kwargs).map(([k, v]) => `${k}=${JSON.stringify(v)}`)];
  const s = parts.join(', ');
  return `${funcName}(${s.length > 75 ? `${s.slice(0, 75)}...` : s})`;
}

export async function enqueueRq(redis: Redis, funcName: string, args: readonly unknown[] = [], kwargs: Record<string, unknown> = {}, opts: RqEnqueueOptions = {}): Promise<string> {
  if (!/^[\w.]+$/.test(funcName)) throw new Error(`rq func_name must be a dotted name, got ${JSON.stringify(funcName)}`);
  if (opts.timeout === 0) throw new Error('0 timeout is not allowed. Use -1 for infinite timeout');
  if (opts.ttl !== undefined && opts.ttl <= 0) throw new Error('Job ttl must be greater than 0');
  const id = opts.jobId ?? randomUUID();
  const queue = opts.queue ?? 'default';
  const now = utcformat(new Date());
  const fields: Record<string, string | number | Buffer> = {
    created_at: now,
    data: deflateSync(Buffer.from(JSON.stringify([funcName, null, args, kwargs]), 'utf8')),
    success_callback_name: '',
    failure_callback_name: '',
    stopped_callback_name: '',
    started_at: '',
    ended_at: '',
    last_heartbeat: '',
    worker_name: '',
    group_id: '',
    origin: queue,
    description: opts.description ?? callString(funcName, args, kwargs),
    enqueued_at: now,
    timeout: opts.timeout ?? DEFAULT_JOB_TIMEOUT,
    status: 'queued',
  };
  if (opts.retry) {
    const intervals = opts.retry.interval === undefined ? [0] : Array.isArray(opts.retry.interval) ? opts.retry.interval : [opts.retry.interval];
    fields.retries_left = opts.retry.max;
    fields.retry_intervals = JSON.stringify(intervals);
  }
  if (opts.resultTtl !== undefined) fields.result_ttl = opts.resultTtl;
  if (opts.failureTtl !== undefined) fields.failure_ttl = opts.failureTtl;
  if (opts.ttl !== undefined) fields.ttl = opts.ttl;
  if (opts.meta && Object.keys(opts.meta).length) fields.meta = JSON.stringify(opts.meta);
  await ENQUEUE.run(redis, [rqKey.queue(queue), rqKey.job(id)], [opts.atFront ? '1' : '0', opts.ttl ?? '', ...Object.entries(fields).flat()]);
  return id;
}

/** actinia's queue names: `<prefix>_<job id>`, `<prefix>_<user>`, or `<prefix>_<n mod workers>`. */
export type ActiniaQueueChoice =
  | { kind: 'per_job'; jobId: string }
  | { kind: 'per_user'; user: string }
  | { kind: 'round_robin'; workers: number };

export async function actiniaQueue(redis: Redis, choice: ActiniaQueueChoice, prefix = 'job_queue'): Promise<string> {
  if (choice.kind === 'per_job') return `${prefix}_${choice.jobId}`;
  if (choice.kind === 'per_user') return `${prefix}_${choice.user}`;
  if (!Number.isInteger(choice.workers) || choice.workers < 1) throw new Error(`round_robin needs workers >= 1, got ${choice.workers}`);
  const n = await redis.incr('actinia_worker_count');
  return `${prefix}_${n % choice.workers}`;
}
