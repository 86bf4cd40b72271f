/**
 * Celeriac twins of tests/interop/pyapp.py tasks (same names, same results), loaded with
 * `-A tests/interop/twins.ts`: a mixed fleet of Python and Celeriac workers then has tasks in
 * common, as a real fleet sharing one code base's task names would. py.tsum and py.fail let the
 * same canvas (chord body, failing header task) run on either worker (canvas-redis-diff.test.ts);
 * py.echo, py.add_to_chord and py.add_chord_to_chord serve the add_to_chord parity test.
 */
import type { Celeriac } from '../../workers/app/app';
import { PythonError } from '../../workers/app/errors';
import { Group, chain, signature } from '../../workers/canvas';

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
  app.task('py.echo', (value: unknown) => value, { params: ['value'] });
  app.task(
    'py.add_to_chord',
    async function (nums: number[]) {
      for (const n of nums) await this.addToChord(signature('py.add', [n, n]));
      return 0;
    },
    { params: ['nums'] },
  );
  app.task(
    'py.add_chord_to_chord',
    async function (nums: number[]) {
      await this.addToChord(chain(new Group(nums.map((n) => signature('py.add', [n, n]))), signature('py.tsum')));
      return 0;
    },
    { params: ['nums'] },
  );
}
