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
 * The recorded run is checked again a moment after the start, and put back in the step's final
 * write, in case a Python worker's late whole-document write removed it (see Workflow.ensureTaskRun).
 *
 * Hand-off: when a step's on_success sends the next step, the worker keeps its Workflow (the
 * document as it last wrote it) under the next task's id. If this same worker runs that task, its
 * before_start starts from that document instead of reading it again, and its on_success sends
 * the step after it without writing first (see Workflow.onStepSuccess): two Mongo round trips less
 * per transition when a workflow's steps share a worker (Bioloop's one queue per app). Steps are
 * never changed after a workflow is created, and any other worker reads the document as usual.
 */
import { randomUUID } from 'node:crypto';
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
/** Hand-offs kept at most per app (those whose task another worker ran are never taken). */
const MAX_HAND_OFFS = 1_000;

/** Per app, shared by all its workflow tasks (one step's task hands off to another's): task id → Workflow. */
const handOffsByApp = new WeakMap<Celeriac, Map<string, Workflow>>();

function handOffsOf(app: Celeriac): Map<string, Workflow> {
  let handOffs = handOffsByApp.get(app);
  if (!handOffs) handOffsByApp.set(app, (handOffs = new Map()));
  return handOffs;
}

/** The workflow a step's task runs in: the one handed off by the previous step, or read. */
async function workflowFor(app: Celeriac, workflowId: string, taskId: string): Promise<{ workflow: Workflow; handedOff: boolean }> {
  const handOffs = handOffsOf(app);
  const handed = handOffs.get(taskId);
  handOffs.delete(taskId);
  if (handed?.id === workflowId) return { workflow: handed, handedOff: true };
  return { workflow: await Workflow.load(app, workflowId), handedOff: false };
}

export function workflowTask<A extends unknown[], R>(app: Celeriac, name: string, fn: TaskFn<A, R>, options: TaskOptions = {}): TaskHandle<A, R> {
  // Workflows of the tasks running in this worker, by task id, from before_start to the outcome.
  const running = new Map<string, { workflow: Workflow; step: string; run: TaskRun; handedOff: boolean; recheck: NodeJS.Timeout }>();
  const finish = (taskId: string): { workflow: Workflow; step: string; run: TaskRun; handedOff: boolean } | undefined => {
    const entry = running.get(taskId);
    if (entry) clearTimeout(entry.recheck);
    running.delete(taskId);
    return entry;
  };
  return app.task<A, R>(name, fn, {
    ...options,
    before_start: async (taskId, args, kwargs) => {
      await options.before_start?.(taskId, args, kwargs);
      const { workflow_id: workflowId, step } = kwargs as WorkflowKwargs;
      if (typeof workflowId !== 'string' || typeof step !== 'string') return;
      const { workflow, handedOff } = await workflowFor(app, workflowId, taskId);
      const run = await workflow.onStepStart(step, taskId);
      const recheck = setTimeout(() => void workflow.ensureTaskRun(step, taskId, run.date_start).catch(() => undefined), RECHECK_MS);
      recheck.unref();
      running.set(taskId, { workflow, step, run, handedOff, recheck });
    },
    on_success: async (retval, taskId, args, kwargs) => {
      const entry = finish(taskId);
      if (entry) {
        // The hand-off is in place before the send: the next task may start here at once.
        const handOffs = handOffsOf(app);
        const nextTaskId = randomUUID();
        handOffs.set(nextTaskId, entry.workflow);
        if (handOffs.size > MAX_HAND_OFFS) handOffs.delete(handOffs.keys().next().value as string);
        const sent = await entry.workflow.onStepSuccess(retval, entry.step, { run: entry.run, nextTaskId, recordedAfterLastWrite: entry.handedOff }).catch((err: unknown) => {
          handOffs.delete(nextTaskId);
          throw err;
        });
        if (sent === undefined) handOffs.delete(nextTaskId);
      }
      await options.on_success?.(retval, taskId, args, kwargs);
    },
    on_failure: async (error, taskId, args, kwargs) => {
      const entry = finish(taskId);
      await entry?.workflow.onStepFailure({ stepName: entry.step, run: entry.run });
      await options.on_failure?.(error, taskId, args, kwargs);
    },
  });
}
