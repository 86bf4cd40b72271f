/**
 * Demo tasks, loaded by default so a fresh worker has something to run. Each mirrors what a
 * Celery user tries first: arithmetic, echo, sleeping, failing, progress reports and retries.
 */
import { PythonError, type Celeriac } from '../index';

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason as Error);
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(timer);
      reject(signal.reason as Error);
    }, { once: true });
  });
}

export function register(app: Celeriac) {
  return {
    add: app.task('demo.add', (x: number, y: number) => x + y, { params: ['x', 'y'] }),

    echo: app.task('demo.echo', (value: unknown) => value, { params: ['value'] }),

    noop: app.task('demo.noop', () => null),

    sleep: app.task(
      'demo.sleep',
      async function (seconds: number) {
        await sleep(seconds * 1000, this.signal);
        return seconds;
      },
      { params: ['seconds'] },
    ),

    fail: app.task(
      'demo.fail',
      (message: string): never => {
        throw new PythonError('ValueError', message);
      },
      { params: ['message'] },
    ),

    progress: app.task(
      'demo.progress',
      async function (steps: number) {
        for (let current = 1; current <= steps; current++) {
          await this.updateState('PROGRESS', { current, total: steps });
          await sleep(50, this.signal);
        }
        return steps;
      },
      { params: ['steps'] },
    ),

    retry: app.task(
      'demo.retry',
      function (times: number) {
        if (this.retries < times) this.retry({ countdown: 0.1, max_retries: times });
        return this.retries + 1;
      },
      { params: ['times'] },
    ),
  };
}
