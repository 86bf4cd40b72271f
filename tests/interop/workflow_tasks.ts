/**
 * Celeriac workflow steps for tests/integration/workflows.test.ts (twins of tests/interop/pywf.py,
 * named wf.* here and pywf.* there), loaded with `-A tests/interop/workflow_tasks.ts`:
 *   wf.step(value)   -> [value + '>' + step]
 *   wf.slow(value)   progress every 0.2 s until the file kwargs.release exists (max 60 s), then as wf.step
 *   wf.flaky(value)  fails with ValueError while the file kwargs.fail_if_exists exists, else as wf.step
 */
import fs from 'node:fs';
import type { Celeriac } from '../../workers';
import { PythonError } from '../../workers';
import { progress, workflowTask, type WorkflowKwargs } from '../../workers/workflows';

/** Rejects with the signal's reason (a revoke's TaskRevokedError), as the worker expects. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const abort = (): void => (clearTimeout(timer), reject(signal.reason as Error));
    const timer = setTimeout(() => (signal.removeEventListener('abort', abort), resolve()), ms);
    signal.addEventListener('abort', abort, { once: true });
  });
}

const next = (value: unknown, kwargs: WorkflowKwargs): string[] => [`${String(value)}>${String(kwargs.step)}`];

export function register(app: Celeriac): void {
  workflowTask(app, 'wf.step', (value: unknown, kwargs: WorkflowKwargs = {}) => next(value, kwargs), { params: ['value'] });
  workflowTask(
    app,
    'wf.slow',
    async function (value: unknown, kwargs: WorkflowKwargs = {}) {
      const report = progress(this, { name: 'slow', total: 300, units: 'ticks', throttle: 0.2 });
      for (let tick = 0; tick < 300 && !fs.existsSync(String(kwargs.release)); tick++) {
        await report.update(tick);
        await sleep(200, this.signal);
      }
      return next(value, kwargs);
    },
    { params: ['value'] },
  );
  workflowTask(
    app,
    'wf.flaky',
    (value: unknown, kwargs: WorkflowKwargs = {}) => {
      if (fs.existsSync(String(kwargs.fail_if_exists))) throw new PythonError('ValueError', `flaky step failed: ${String(kwargs.fail_if_exists)} exists`);
      return next(value, kwargs);
    },
    { params: ['value'] },
  );
}
