/**
 * Execution pools (Celery's -P): where a task function runs. `async` runs it on the event loop
 * (right for I/O); `threads` (worker_threads) and `processes` (child processes) run CPU-bound tasks
 * off it, so heartbeats and control replies keep flowing, and a stuck task can really be killed.
 * The worker decides how many tasks run at once; a pool only runs what it is given.
 */
import type { Job } from '../worker/job';
import type { Limits, Outcome } from '../worker/execute';
import type { CanvasHost } from '../canvas/types';

export type PoolKind = 'async' | 'threads' | 'processes';

export interface TaskRun {
  job: Job;
  limits: Limits;
  hostname: string;
  /** The task's updateState(): stores a custom state for it. */
  updateState(state: string, meta: unknown): Promise<void>;
  /** Sends on the task's behalf (add_to_chord), through the worker's app. */
  canvasHost(): Promise<CanvasHost>;
}

export interface PoolStats {
  /** What `inspect stats` shows as pool.implementation. */
  implementation: string;
  /** Pids of the pool's processes (the worker's own pid for async and threads). */
  processes: number[];
  maxTasksPerChild: number | null;
}

export interface TaskPool {
  readonly kind: PoolKind;
  start(size: number): Promise<void>;
  /** Run one task; never rejects: a failure of the task or of its thread/process is an Outcome. */
  execute(run: TaskRun): Promise<Outcome>;
  /** The worker's concurrency changed (pool_grow/shrink, autoscale). */
  resize(size: number): void;
  /** Stop a running task now (revoke --terminate, cold shutdown): abort or kill. */
  terminate(job: Job, reason: Error): void;
  stats(): PoolStats;
  close(): Promise<void>;
}
