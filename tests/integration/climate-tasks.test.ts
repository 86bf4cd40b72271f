/**
 * The climate tasks on a real worker (-P processes -c 2, Redis broker and results): a Python
 * Celery client sends `climate.area_request` and gets the merged values of a request spanning two
 * years (a chord of per-year chunks), equal to netCDF4 + numpy + shapely, in date order, with the
 * corrupt files as warnings; the TS producer runs `areaValuesChord` itself (the job API's way).
 */
import path from 'node:path';
import { Celeriac } from '../../workers';
import { areaValuesChord, planAreaRequest, type AreaGeometry, type AreaRequest, type AreaValues } from '../../workers/climate';
import { startCeleriacWorker } from '../helpers/celeriacWorker';
import { INTEROP_DIR, testRedisUrl, testTmpDir } from '../helpers/env';
import type { ProcessHandle } from '../helpers/processes';
import { pyClient, runPyJson } from '../helpers/python';
import { flushDb } from '../helpers/redis';

jest.setTimeout(180_000);

const BROKER_DB = 120;
const RESULTS_DB = 121;
const env = { BROKER_URL: testRedisUrl(BROKER_DB), RESULT_BACKEND: testRedisUrl(RESULTS_DB) };
const SCRIPT = path.join(INTEROP_DIR, 'climate_data.py');

interface Manifest {
  nc4: string[];
  corrupt: string[];
  geometry: AreaGeometry;
}

interface RefStep {
  date: string;
  stats: Record<string, number>;
}

function py(args: string[]): string {
  return `import runpy, sys; sys.argv = ${JSON.stringify([SCRIPT, ...args])}; runpy.run_path(sys.argv[0], run_name='__main__')`;
}

let worker: ProcessHandle;
let app: Celeriac;
let data: Manifest;
let request: AreaRequest;
let expected: RefStep[];

beforeAll(async () => {
  await flushDb(BROKER_DB);
  await flushDb(RESULTS_DB);
  data = await runPyJson<Manifest>(py(['generate', testTmpDir('climate-tasks')]), { timeoutMs: 60_000 });
  request = { folder: path.dirname(data.nc4[0]), variable: 'precipitation', geometry: data.geometry, operation: 2, begin: '2019-12-30', end: '2020-01-10', chunkSize: 2 };
  const files = data.nc4.slice(1).map((p) => ({ path: p, date: `${/(\d{4})(\d{2})(\d{2})T/.exec(p)!.slice(1).join('-')}T00:00:00.000Z` }));
  expected = (await runPyJson<{ values: RefStep[] }>(py(['reference']), { input: JSON.stringify({ files, variable: 'precipitation', geometry: data.geometry }), timeoutMs: 60_000 })).values;
  worker = await startCeleriacWorker({ brokerUrl: env.BROKER_URL, backendUrl: env.RESULT_BACKEND, concurrency: 2, app: 'workers/tasks/climate.ts', extraArgs: ['-P', 'processes'], timeoutMs: 60_000 });
  app = new Celeriac({ brokerUrl: env.BROKER_URL, resultBackend: env.RESULT_BACKEND });
}, 180_000);

afterAll(async () => {
  await app?.close();
  await worker?.stop();
});

function expectMatchesReference(result: AreaValues) {
  expect(result.values.map((v) => v.date)).toEqual(expected.map((r) => r.date));
  result.values.forEach((v, i) => expect(Math.abs(v.value - expected[i].stats.median)).toBeLessThanOrEqual(1e-6 * Math.max(1, Math.abs(expected[i].stats.median))));
  const skipped = result.warnings.filter((w) => w.message.startsWith('skipped:')).map((w) => w.file);
  expect(skipped.sort()).toEqual([...data.corrupt].sort());
  expect(result.warnings.some((w) => w.message.includes('-9999'))).toBe(true);
}

test('a Python client sends climate.area_request: chord of per-year chunks, merged in date order', async () => {
  const out = await pyClient<{ state: string; result: AreaValues; exc_message?: string }>(
    { op: 'send', task: 'climate.area_request', kwargs: { request }, wait: true, timeout: 150 },
    { env, timeoutMs: 170_000 },
  );
  expect(out.exc_message ?? null).toBeNull();
  expect(out.state).toBe('SUCCESS');
  expectMatchesReference(out.result);
  expect(out.result.values.map((v) => v.date.slice(0, 4))).toEqual(['2019', '2019', '2020', '2020', '2020']);
});

test('the job API way: plan in the caller, chord with known chunk ids, every chunk recorded', async () => {
  const plan = await planAreaRequest(request);
  expect(plan.years).toEqual([2019, 2020]);
  const { canvas, chunkIds } = areaValuesChord(plan);
  expect(chunkIds).toHaveLength(plan.chunks.length);
  const result = await canvas.bind(app).applyAsync();
  expectMatchesReference((await result.get({ timeout: 150 })) as AreaValues);
  for (const id of chunkIds) expect(await (await app.asyncResult(id)).state()).toBe('SUCCESS');
});

test('a malformed request fails with a ValueError naming the field; nothing is read', async () => {
  const send = (bad: Record<string, unknown>) =>
    pyClient<{ state: string; exc_type: string | null; exc_message: string | null }>(
      { op: 'send', task: 'climate.area_request', kwargs: { request: { ...request, ...bad } }, wait: true, timeout: 60 },
      { env, timeoutMs: 90_000 },
    );
  const badOperation = await send({ operation: 6 });
  expect(badOperation).toMatchObject({ state: 'FAILURE', exc_type: 'ValueError' });
  expect(badOperation.exc_message).toMatch(/^request\.operation: expected an operationtype 0-5/);
  const badGeometry = await send({ geometry: { type: 'Point', coordinates: [1, 2] } });
  expect(badGeometry.exc_message).toMatch(/^request\.geometry: expected a GeoJSON Polygon or MultiPolygon/);
  const badDates = await send({ begin: '2020-02-01', end: '2020-01-01' });
  expect(badDates.exc_message).toMatch(/^request\.begin: 2020-02-01 is after end 2020-01-01/);
});
