/** Celeriac's public API: the app (tasks + producer), the worker, results and errors. */
export { Celeriac, type AppOptions, type SendOptions, type TaskHandle, type TaskMapOf, type AppLogger } from './app/app';
export type { TaskOptions, TaskContext, TaskFn, RetryOptions, TaskMap, KnownTask, TaskArgs, TaskResult, ArgsTail } from './app/task';
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
export type { ResultType, ResultFor, ResultsOf, LastResult, SigOptions } from './canvas';
export { appFromConfig, workerOptionsFromConfig } from './app/fromConfig';
export { loadConfig, brokerUrlOf } from '../config';
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
export type { FleetSource, WorkerRow } from './cli/workers';
export { taskModulePaths } from './cli/root';
export { loadOrExit, loggerFor, commonOverrides, type CommonFlags } from './cli/options';
export type { Logger } from './log/logger';
// For other workers behind `celeriac worker --<mode>` (workers/rq): Redis, Lua, the pools, task loading.
export { connectRedis, closeRedis, type RedisConnectOptions } from './redis/connect';
export { LuaScript, type RedisReply } from './redis/script';
export { createPool, type PoolKind, type TaskPool, type PoolOptions } from './pool';
export type { TaskRun } from './pool/pool';
export type { Outcome, Limits } from './worker/execute';
export type { Job as PoolJob } from './worker/job';
export type { TaskRequest } from './protocol/message';
export type { TaskDefinition } from './app/task';
export { loadTaskModule, resolveModule } from './app/loadTasks';
export { projectRoot } from './cli/root';
export { maskUrl } from './log/mask';
export { lazyModule } from './lazy';
export { serveMetrics, type MetricsServer } from './metrics/server';
// For domain commands on the broker (workers/curation: `celeriac queues`, `purge`): app.transport()'s type.
export type { MissingCount, QueueCounts, Transport } from './transports/transport';
export type { Config } from '../config/types';
