/**
 * sca-rhythm's WorkflowTask on a Celeriac worker: a task registered with workflowTask() does, via
 * Celery's task hooks, what a Python `WorkflowTask` does around its run when called with the
 * kwargs `workflow_id` and `step` (as every workflow step is):
 *   before_start  record the task run in the step (`task_runs`), `_status` STARTED, resume unlocked
 *   on_success    send the next step with `retval[0]`, or mark the workflow SUCCESS
 *   on_failure    mark the workflow FAILURE
 * so one workflow can mix Python and Celeriac steps in any order. Called without those kwargs it
 * is a plain task.
 *
 * The recorded run is checked again a moment after the start and when the task ends, and put
 * back if a Python worker's late whole-document write removed it (see Workflow.ensureTaskRun).
 */
import type { Celeriac, TaskFn, TaskHandle, TaskOptions } from '../index';
import { Workflow } from './workflow';
import type { TaskRun } from './types';

/** The workflow kwargs a step's task receives (sca-rhythm's wf_send_task adds them). */
export interface WorkflowKwargs {
  workflow_id?: string;
  step?: string;
  app_id?: string;
  [key: string]: unknown;
}

/** When to look again at a started step's recorded run (ms): after the previous step's final write. */
const RECHECK_MS = 1_500;

export function workflowTask<A extends unknown[], R>(app: Celeriac, name: string, fn: TaskFn<A, R>, options: TaskOptions = {}): TaskHandle<A, R> {
  // Workflows of the tasks running in this worker, by task id, from before_start to the outcome.
  const running = new Map<string, { workflow: Workflow; step: string; run: TaskRun; recheck: NodeJS.Timeout }>();
  const ensureRun = async (taskId: string): Promise<void> => {
    const entry = running.get(taskId);
    if (entry) await entry.workflow.ensureTaskRun(entry.step, taskId, entry.run.date_start);
  };
  const finish = async (taskId: string): Promise<Workflow | undefined> => {
    const entry = running.get(taskId);
    if (!entry) return undefined;
    clearTimeout(entry.recheck);
    await ensureRun(taskId).catch((err: Error) => app.log.warn(`workflow ${entry.workflow.id}: could not re-check the run of ${taskId}: ${err.message}`));
    running.delete(taskId);
    return entry.workflow;
  };
  return app.task<A, R>(name, fn, {
    ...options,
    before_start: async (taskId, args, kwargs) => {
      await options.before_start?.(taskId, args, kwargs);
      const { workflow_id: workflowId, step } = kwargs as WorkflowKwargs;
      if (typeof workflowId !== 'string' || typeof step !== 'string') return;
      const workflow = await Workflow.load(app, workflowId);
      const run = await workflow.onStepStart(step, taskId);
      const recheck = setTimeout(() => void ensureRun(taskId).catch(() => undefined), RECHECK_MS);
      recheck.unref();
      running.set(taskId, { workflow, step, run, recheck });
    },
    on_success: async (retval, taskId, args, kwargs) => {
      const workflow = await finish(taskId);
      await workflow?.onStepSuccess(retval, String((kwargs as WorkflowKwargs).step));
      await options.on_success?.(retval, taskId, args, kwargs);
    },
    on_failure: async (error, taskId, args, kwargs) => {
      const workflow = await finish(taskId);
      await workflow?.onStepFailure();
      await options.on_failure?.(error, taskId, args, kwargs);
    },
  });
}
