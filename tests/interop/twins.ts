/**
 * Celeriac twins of tests/interop/pyapp.py tasks (same names, same results), loaded with
 * `-A tests/interop/twins.ts`: a mixed fleet of Python and Celeriac workers then has tasks in
 * common, as a real fleet sharing one code base's task names would.
 */
import type { Celeriac } from '../../workers/app/app';

export function register(app: Celeriac): void {
  app.task('py.add', (x: number, y: number) => x + y, { params: ['x', 'y'] });
}
