/**
 * Bioloop's dataset tasks under Bioloop's task names (workers/tasks/declarations.py), so a
 * deployment can move any step between Python and Celeriac workers without touching its workflow
 * registry. Each takes the dataset id (plus the workflow kwargs sca-rhythm adds) and returns
 * [dataset_id], which a workflow hands to the next step.
 *
 * Errors: InspectionFailed and ValidationFailed (and an unknown dataset) fail the step at once;
 * anything else is wrapped in RetryableException and retried (max_retries 3, 5 s apart), as
 * Bioloop's autoretry_for does. A revoke or time limit is never retried.
 *
 * `-A workers/tasks/bioloop` loads them with settings from config (`datasets.*`, `mongo.*`);
 * registerBioloopTasks(app, deps) takes them from the caller (tests, embedding). They are
 * workflow tasks (workers/workflows): sent by a workflow, each records its run on the workflow
 * and sends the next step, as sca-rhythm's WorkflowTask does; sent alone, they are plain tasks.
 */
import { loadConfig, PythonError, type Celeriac, type TaskContext, type TaskOptions } from '../index';
import { isIntegrityFailure, RetryableException } from '../datasets/errors';
import { resolvePaths } from '../datasets/layout';
import { DatasetStore } from '../datasets/store';
import { archiveDataset, awaitStability, inspectDataset } from './bioloopIngest';
import { deleteDataset, setupDatasetDownload, stageDataset, validateDataset } from './bioloopStage';
import { progressFactory, type BioloopDeps, type StepCall } from './bioloopSteps';
import { workflowTask } from '../workflows';

export type { BioloopDeps } from './bioloopSteps';

type StepBody = (call: StepCall) => Promise<void>;

export const BIOLOOP_STEPS: Readonly<Record<string, StepBody>> = {
  await_stability: awaitStability,
  inspect_dataset: inspectDataset,
  archive_dataset: archiveDataset,
  stage_dataset: stageDataset,
  validate_dataset: validateDataset,
  setup_dataset_download: setupDatasetDownload,
  delete_dataset: deleteDataset,
};

/** How a task's `this` becomes the step's progress sink (a workflow task may bring its own). */
export type ProgressWriter = (ctx: TaskContext, meta: object) => Promise<void>;

const startedState: ProgressWriter = (ctx, meta) => ctx.updateState('STARTED', meta);

export interface RegisterOptions {
  /** Extra per-task options (e.g. a queue); the retry policy is Bioloop's unless given here. */
  taskOptions?: TaskOptions;
  progress?: ProgressWriter;
  /** Registers a task the way the caller wants; default workflowTask (sca-rhythm's WorkflowTask). */
  define?: (name: string, fn: (this: TaskContext, datasetId: unknown, kwargs?: Record<string, unknown>) => Promise<[string]>, options: TaskOptions) => unknown;
}

export function registerBioloopTasks(app: Celeriac, deps: BioloopDeps | (() => Promise<BioloopDeps>), opts: RegisterOptions = {}): void {
  const getDeps = typeof deps === 'function' ? deps : () => Promise.resolve(deps);
  const write = opts.progress ?? startedState;
  const define = opts.define ?? ((name, fn, options) => workflowTask(app, name, fn, options));
  for (const [name, body] of Object.entries(BIOLOOP_STEPS)) {
    const fn = async function (this: TaskContext, datasetId: unknown, kwargs: Record<string, unknown> = {}): Promise<[string]> {
      if (typeof datasetId !== 'string' || datasetId === '') {
        throw new PythonError('TypeError', `${name}() needs a dataset id (a non-empty string), got ${JSON.stringify(datasetId) ?? String(datasetId)}`);
      }
      // Progress writes are not awaited by the step; the task waits for them before it ends, so
      // a late STARTED write can never land after the final state (on FerretDB the backend's
      // "never overwrite SUCCESS" guard is a conditional update, which is not atomic there).
      const inFlight = new Set<Promise<void>>();
      const sink = (meta: object): Promise<void> => {
        const p = write(this, meta).catch(() => undefined);
        inFlight.add(p);
        void p.finally(() => inFlight.delete(p));
        return p;
      };
      try {
        const resolved = await getDeps();
        await body({ deps: resolved, datasetId, kwargs, signal: this.signal, progress: progressFactory(sink), reportState: (m) => void sink(m) });
      } catch (err) {
        if (isIntegrityFailure(err) || this.signal.aborted || (err instanceof PythonError && err.pyType === 'TypeError')) throw err;
        throw new RetryableException(err);
      } finally {
        await Promise.all([...inFlight]);
      }
      return [datasetId];
    };
    define(name, fn, {
      params: ['dataset_id'],
      autoretry_for: ['RetryableException'],
      max_retries: 3,
      default_retry_delay: 5,
      ...opts.taskOptions,
    });
  }
}

let shared: Promise<BioloopDeps> | undefined;

/** Settings and the store from config, opened once per process on the first task. */
function depsFromConfig(app: Celeriac): Promise<BioloopDeps> {
  shared ??= (async () => {
    const cfg = loadConfig();
    const store = await DatasetStore.connect(cfg.mongo.url, { dbName: cfg.mongo.db, logger: app.log });
    return { store, settings: resolvePaths(cfg.datasets), log: app.log };
  })().catch((err: unknown) => {
    shared = undefined;
    throw err;
  });
  return shared;
}

export function register(app: Celeriac): void {
  const cfg = loadConfig();
  registerBioloopTasks(app, () => depsFromConfig(app), { taskOptions: { default_retry_delay: cfg.datasets.retry_delay_seconds } });
}
