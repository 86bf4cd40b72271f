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
export {
  openMongo,
  isTransient as isTransientMongoError,
  mongoHosts,
  MongoUnavailableError,
  type MongoConnection,
  type MongoConnectOptions,
} from './mongodb/connect';
export { MongoBackend, type MongoBackendSettings, type TaskMetaDocument } from './backends/mongodb';
export type { ResultBackend, ResultMeta, TaskState } from './backends/backend';
export { ControlClient } from './control/client';
export { buildProgram, runProgram, type ProgramExtensions } from './cli/program';
export type { WorkerMode } from './cli/worker';
export { loadOrExit, loggerFor, commonOverrides, type CommonFlags } from './cli/options';
export type { Logger } from './log/logger';
