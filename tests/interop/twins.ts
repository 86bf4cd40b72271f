/**
 * Celeriac twins of tests/interop/pyapp.py tasks (same names, same results), loaded with
 * `-A tests/interop/twins.ts`: a mixed fleet of Python and Celeriac workers then has tasks in
 * common, as a real fleet sharing one code base's task names would. py.tsum and py.fail let the
 * same canvas (chord body, failing header task) run on either worker (canvas-redis-diff.test.ts).
 */
import type { Celeriac } from '../../workers/app/app';
import { PythonError } from '../../workers/app/errors';

export function register(app: Celeriac): void {
  app.task('py.add', (x: number, y: number) => x + y, { params: ['x', 'y'] });
  app.task('py.tsum', (numbers: number[]) => numbers.reduce((a, b) => a + b, 0), { params: ['numbers'] });
  app.task(
    'py.fail',
    (message: string) => {
      throw new PythonError('ValueError', message);
    },
    { params: ['message'] },
  );
}
