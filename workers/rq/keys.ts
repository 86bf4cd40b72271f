/** rq's Redis key names and time formats (rq/job.py, queue.py, registry.py, worker/base.py, utils.py). */

export const RQ_VERSION = '2.12.0';
/** Queue.DEFAULT_TIMEOUT: a job without `timeout` may run this long. */
export const DEFAULT_JOB_TIMEOUT = 180;
/** rq's DEFAULT_RESULT_TTL, DEFAULT_WORKER_TTL, DEFAULT_JOB_MONITORING_INTERVAL (seconds). */
export const DEFAULT_RESULT_TTL = 500;
export const DEFAULT_WORKER_TTL = 420;
export const JOB_MONITORING_INTERVAL = 30;

export const rqKey = {
  job: (id: string): string => `rq:job:${id}`,
  queue: (name: string): string => `rq:queue:${name}`,
  worker: (name: string): string => `rq:worker:${name}`,
  pubsub: (worker: string): string => `rq:pubsub:${worker}`,
  intermediate: (queue: string): string => `rq:queue:${queue}:intermediate`,
  suspended: 'rq:suspended',
} as const;

/** rq's utcformat: '%Y-%m-%dT%H:%M:%S.%fZ' (microseconds). */
export function utcformat(d: Date): string {
  return `${d.toISOString().slice(0, 23)}000Z`;
}

/** One instant in the three shapes rq writes: utcformat text, float seconds, whole seconds. */
export interface Instant {
  iso: string;
  ts: string;
  int: number;
}

export function instant(d = new Date()): Instant {
  const ms = d.getTime();
  return { iso: utcformat(d), ts: (ms / 1000).toFixed(6), int: Math.floor(ms / 1000) };
}
