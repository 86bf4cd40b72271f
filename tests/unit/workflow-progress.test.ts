// sca_rhythm.progress semantics (workers/workflows/progress.ts) on a fake clock: the first report
// has an unknown ETA (1e100), reports within the throttle window are dropped, rates come from the
// bias-corrected exponentially weighted average (alpha 0.9), meta keys as sca-rhythm writes them.
import { ExponentialWeightedAverage, Progress, UNKNOWN_ETA, type ProgressReport } from '../../workers/workflows/progress';
import { validateSteps } from '../../workers/workflows/workflow';

test('reports: first with unknown ETA, throttled within a second, then EWA rates and ETA', async () => {
  let now = 0;
  const written: ProgressReport[] = [];
  const p = new Progress({ name: 'copy', total: 100, units: 'bytes', now: () => now, report: (r) => void written.push(r) });
  expect(await p.update(0)).toEqual({ name: 'copy', fraction_done: 0, done: 0, total: 100, units: 'bytes', time_remaining_sec: UNKNOWN_ETA, wt_avg_rate: null, avg_rate: null });
  now = 0.5;
  expect(await p.update(10)).toBeNull();
  now = 2;
  const second = (await p.update(20))!;
  expect(second.fraction_done).toBeCloseTo(0.2);
  expect(second.time_remaining_sec).toBeCloseTo(8, 4);
  expect(second.wt_avg_rate).toBeCloseTo(10, 4);
  expect(second.avg_rate).toBeCloseTo(10, 4);
  now = 3;
  const third = (await p.update(60))!;
  // rate 0.4/s after 0.1/s: EWA (0.9*0.01 + 0.1*0.4) / (1 - 0.81) = 0.2578947
  expect(third.wt_avg_rate).toBeCloseTo(25.78947, 3);
  expect(third.time_remaining_sec).toBeCloseTo(0.4 / 0.2578947, 3);
  expect(third.avg_rate).toBeCloseTo(20, 3);
  expect(written).toHaveLength(3);
});

test('no total: done only, no fraction or ETA; unit_scale scales done and total', async () => {
  const bare = new Progress({ name: 'walk', now: () => 0 });
  expect(await bare.update(7)).toMatchObject({ done: 7, total: null, fraction_done: null, time_remaining_sec: null });
  const scaled = new Progress({ total: 4, unitScale: 1024, now: () => 0 });
  expect(await scaled.update(1)).toMatchObject({ done: 1024, total: 4096, fraction_done: 0.25 });
});

test('ExponentialWeightedAverage is bias-corrected from the first value', () => {
  const ewa = new ExponentialWeightedAverage(0.9);
  expect(ewa.update(5)).toBeCloseTo(5);
  expect(ewa.update(5)).toBeCloseTo(5);
});

test.each([
  [[], 'steps is empty'],
  [[{ task: 't' }], 'step[0] does not have "name" key'],
  [[{ name: 'a', task: '' }], 'step[0]["task"] is an empty string'],
  [[{ name: 'a', task: 't' }, { name: 'a', task: 'u' }], 'Steps with duplicate names: ["a"]'],
  [[{ name: 'a', task: 't', queue: '' }], 'step[0]["queue"] is not a non-empty string'],
])('step validation refuses %j: %s', (steps, message) => {
  expect(() => validateSteps(steps, 'wf', 'app')).toThrow(message);
});
