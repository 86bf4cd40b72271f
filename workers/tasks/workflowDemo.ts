/**
 * The demo workflow's step (`workflows.registry.demo`): waits `seconds` reporting progress as
 * sca-rhythm's progress does, then hands `value > step` to the next step. Loaded by
 * `celeriac workflows demo`, or by a worker with `-A ./workers/tasks/workflowDemo`.
 */
import type { Celeriac } from '../index';
import { progress, workflowTask, type WorkflowKwargs } from '../workflows';

const TICKS = 10;

/** Rejects with the signal's reason (a revoke's TaskRevokedError: the step ends REVOKED, not FAILURE). */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason as Error);
    const abort = (): void => (clearTimeout(timer), reject(signal.reason as Error));
    const timer = setTimeout(() => (signal.removeEventListener('abort', abort), resolve()), ms);
    signal.addEventListener('abort', abort, { once: true });
  });
}

export function register(app: Celeriac) {
  return {
    step: workflowTask(
      app,
      'workflow_demo.step',
      async function (value: unknown, kwargs: WorkflowKwargs = {}) {
        const seconds = Number(kwargs.seconds ?? 1);
        const report = progress(this, { name: String(kwargs.step ?? 'demo'), total: TICKS, units: 'ticks' });
        for (let done = 0; done <= TICKS; done++) {
          await report.update(done);
          if (done < TICKS) await sleep((seconds * 1000) / TICKS, this.signal);
        }
        return [`${String(value)} > ${String(kwargs.step ?? 'demo')}`];
      },
      { params: ['value'] },
    ),
  };
}
