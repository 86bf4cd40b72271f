/** Building the pool the worker was asked for (-P async | threads | processes). */
import type { AppLogger } from '../app/app';
import { AsyncPool } from './asyncPool';
import { ChildPool } from './childPool';
import { startProcess, startThread } from './handle';
import type { PoolKind, TaskPool } from './pool';
import type { ChildInit } from './wire';

export type { PoolKind, TaskPool } from './pool';

export interface PoolOptions {
  kind: PoolKind;
  /** For threads/processes: what each child loads. */
  init: ChildInit;
  maxTasksPerChild: number | null;
  maxMemoryPerChild: number | null;
  log: AppLogger;
}

export function createPool(opts: PoolOptions): TaskPool {
  if (opts.kind === 'async') return new AsyncPool();
  return new ChildPool(opts.kind, { ...opts, start: opts.kind === 'threads' ? startThread : startProcess });
}
