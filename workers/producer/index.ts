/**
 * `celeriac/producer`: what code that only sends tasks and reads results needs (the app, results,
 * the canvas, the errors a result can raise), without the worker, the CLI or config loading.
 */
export { Celeriac, type AppOptions, type SendOptions, type TaskHandle, type TaskMapOf, type AppLogger } from '../app/app';
export type { TaskMap, KnownTask, TaskArgs, TaskResult, ArgsTail, TaskFn, TaskOptions } from '../app/task';
export { PythonError, NotRegistered, ChordError } from '../app/errors';
export { AsyncResult, RemoteTaskError } from './asyncResult';
export { GroupResult } from './groupResult';
export { signature, chain, group, chord, Signature, Chain, Group, Chord, XMap, XStarmap, Chunks } from '../canvas';
export type { ResultType, ResultFor, ResultsOf, LastResult, SigOptions } from '../canvas';
