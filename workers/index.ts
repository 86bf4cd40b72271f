/** Celeriac's public API: the app (tasks + producer), the worker, results and errors. */
export { Celeriac, type AppOptions, type SendOptions, type TaskHandle, type AppLogger } from './app/app';
export type { TaskOptions, TaskContext, TaskFn, RetryOptions } from './app/task';
export {
  PythonError,
  Retry,
  Reject,
  Ignore,
  MaxRetriesExceededError,
  SoftTimeLimitExceeded,
  TimeLimitExceeded,
  NotRegistered,
  WorkerLostError,
  ChordError,
} from './app/errors';
export { Worker, type WorkerOptions } from './worker/worker';
export { AsyncResult, RemoteTaskError } from './producer/asyncResult';
export { GroupResult } from './producer/groupResult';
export { signature, chain, group, chord, Signature, Chain, Group, Chord, XMap, XStarmap, Chunks } from './canvas';
export { appFromConfig, workerOptionsFromConfig } from './app/fromConfig';
export { loadConfig } from '../config';
