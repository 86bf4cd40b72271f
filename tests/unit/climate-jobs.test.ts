import { loadConfig, ConfigError } from '../../config';
import { datasetRegistry, DatasetConfigError } from '../../workers/jobs/datasets';
import { BadParameter, parseJobRequest, parseUsDate } from '../../workers/jobs/request';
import { ProgressReporter } from '../../workers/jobs/runner';
import { jobPriority } from '../../workers/jobs/api';
import { usDate, stepEntry } from '../../workers/jobs/results';

const datasets = datasetRegistry({ 0: { name: 'CHIRPS', folder: '/data/chirps', variable: 'precipitation' }, 26: { name: 'IMERG', folder: '/d', variable: 'p', pattern: '*%Y%m%d*.nc4' } });
const limits = { maxAreaKm2: 1_000_000, maxYears: 20 };
const square = JSON.stringify({ type: 'Polygon', coordinates: [[[30, 0], [31, 0], [31, 1], [30, 1], [30, 0]]] });
const base = { datatype: '0', operationtype: '5', begintime: '01/01/2020', endtime: '01/31/2020', intervaltype: '0', geometry: square };

function problem(params: Record<string, unknown>): BadParameter {
  try {
    parseJobRequest(params, datasets, limits);
  } catch (err) {
    expect(err).toBeInstanceOf(BadParameter);
    return err as BadParameter;
  }
  throw new Error('accepted');
}

describe('parseJobRequest', () => {
  test('a ClimateSERV request becomes a typed request', () => {
    expect(parseJobRequest({ ...base, is_from_ui: 'true' }, datasets, limits)).toEqual({
      datatype: 0,
      operationtype: 5,
      begintime: '01/01/2020',
      endtime: '01/31/2020',
      intervaltype: 0,
      geometry: JSON.parse(square),
      from_ui: true,
    });
  });

  test('a MultiPolygon with a hole, inside a Feature, is accepted', () => {
    const multi = {
      type: 'Feature',
      geometry: {
        type: 'MultiPolygon',
        coordinates: [
          [[[30, 0], [32, 0], [32, 2], [30, 2], [30, 0]], [[30.5, 0.5], [31, 0.5], [31, 1], [30.5, 1], [30.5, 0.5]]],
          [[[33, 0], [34, 0], [34, 1], [33, 0]]],
        ],
      },
    };
    expect(parseJobRequest({ ...base, geometry: JSON.stringify(multi) }, datasets, limits).geometry.type).toBe('MultiPolygon');
  });

  test.each([
    [{ datatype: '5' }, 'datatype', /known: 0, 26/],
    [{ datatype: '1.5' }, 'datatype', /whole number/],
    [{ operationtype: '-1' }, 'operationtype', /unknown operation/],
    [{ begintime: '13/01/2020' }, 'begintime', /not a calendar date/],
    [{ endtime: '' }, 'endtime', /is required/],
    [{ begintime: '02/01/2020' }, 'endtime', /before begintime/],
    [{ begintime: '01/01/1990' }, 'endtime', /limit is 20/],
    [{ intervaltype: '2' }, 'intervaltype', /only 0/],
    [{ geometry: '[1,2]' }, 'geometry', /Polygon or MultiPolygon/],
    [{ geometry: '{"type":"Polygon","coordinates":[[[0,0],[1,0],[0,0]]]}' }, 'geometry', /at least 4/],
    [{ geometry: '{"type":"Polygon","coordinates":[[[0,0],[1,0],[1,95],[0,0]]]}' }, 'geometry', /outside/],
    [{ geometry: '{"type":"Polygon","coordinates":[[[0,0],[2,2],[2,0],[0,2],[0,0]]]}' }, 'geometry', /self-intersecting/],
    [{ geometry: '{"type":"Polygon","coordinates":[[[0,0],[30,0],[30,30],[0,30],[0,0]]]}' }, 'geometry', /limit is 1,000,000/],
    [{ datatype: ['0', '1'] }, 'datatype', /more than once/],
  ])('%j -> 400 on %s', (override, parameter, message) => {
    const err = problem({ ...base, ...override });
    expect(err.parameter).toBe(parameter);
    expect(err.message).toMatch(message);
    expect(err.message.startsWith(`${parameter}: `)).toBe(true);
  });

  test('intervaltype may be left out (each time step)', () => {
    const { intervaltype: _drop, ...rest } = base;
    expect(parseJobRequest(rest, datasets, limits).intervaltype).toBe(0);
  });
});

describe('dates and answers', () => {
  test('MM/DD/YYYY is read as UTC midnight and written back the same', () => {
    const t = parseUsDate('03/01/2020', 'begintime');
    expect(new Date(t).toISOString()).toBe('2020-03-01T00:00:00.000Z');
    expect(usDate('2020-03-01T00:00:00.000Z')).toBe('03/01/2020');
    expect(stepEntry('2020-03-01T00:00:00.000Z', { avg: 1.5 })).toMatchObject({ date: '03/01/2020', epochTime: '1583020800', value: { avg: 1.5 } });
  });
});

describe('datasetRegistry', () => {
  test.each([
    [{ x: { name: 'a', folder: 'f', variable: 'v' } }, /climate\.datasets\.x: the key must be/],
    [{ 1: { name: 'a', folder: '', variable: 'v' } }, /climate\.datasets\.1\.folder/],
    [{ 1: 'CHIRPS' }, /climate\.datasets\.1: must be/],
    [{ 1: { name: 'a', folder: 'f', variable: 'v', pattern: 3 } }, /climate\.datasets\.1\.pattern/],
  ])('%j is refused, naming the key', (raw, message) => {
    expect(() => datasetRegistry(raw)).toThrow(DatasetConfigError);
    expect(() => datasetRegistry(raw)).toThrow(message);
  });
});

describe('config', () => {
  test('climate.datasets comes from CELERIAC_CLIMATE_DATASETS as JSON; limits from their variables', () => {
    const c = loadConfig({ envFile: null, env: { CELERIAC_CLIMATE_DATASETS: '{"0":{"name":"CHIRPS","folder":"/c","variable":"precipitation"}}', CELERIAC_CLIMATE_MAX_YEARS: '5', CELERIAC_CLIMATE_OUTPUT_DIR: '/out' } });
    expect(c.climate.datasets).toEqual({ 0: { name: 'CHIRPS', folder: '/c', variable: 'precipitation' } });
    expect(c.climate.max_years).toBe(5);
    expect(c.climate.output_dir).toBe('/out');
  });

  test('invalid JSON in CELERIAC_CLIMATE_DATASETS names the variable', () => {
    expect(() => loadConfig({ envFile: null, env: { CELERIAC_CLIMATE_DATASETS: '{0:' } })).toThrow(ConfigError);
    expect(() => loadConfig({ envFile: null, env: { CELERIAC_CLIMATE_DATASETS: '{0:' } })).toThrow(/CELERIAC_CLIMATE_DATASETS.*must be JSON/);
  });
});

describe('ProgressReporter', () => {
  test('about ten writes a job, never two within a second, never 100 before the results', async () => {
    let now = 0;
    const written: [number, number][] = [];
    const reporter = new ProgressReporter(async (p) => (written.push([now, p]), true), () => now);
    for (let done = 1; done <= 1000; done++) {
      now += 50;
      await reporter.report(done, 1000);
    }
    expect(written.length).toBeGreaterThanOrEqual(8);
    expect(written.length).toBeLessThanOrEqual(11);
    written.slice(1).forEach(([t], i) => expect(t - written[i][0]).toBeGreaterThanOrEqual(1000));
    expect(Math.max(...written.map(([, p]) => p))).toBeLessThan(100);
  });

  test('a job shorter than a second writes no intermediate progress (0, then 100 with the results)', async () => {
    let now = 0;
    const written: number[] = [];
    const reporter = new ProgressReporter(async (p) => (written.push(p), true), () => now);
    for (let done = 1; done <= 100; done++) {
      now += 5;
      await reporter.report(done, 100);
    }
    expect(written).toEqual([]);
  });
});

test('API jobs go at a lower priority than UI jobs, on AMQP and on Redis (where 0 is served first)', () => {
  expect(jobPriority({ from_ui: true }, 'amqp://h')).toBeGreaterThan(jobPriority({ from_ui: false }, 'amqp://h'));
  expect(jobPriority({ from_ui: true }, 'redis://h')).toBeLessThan(jobPriority({ from_ui: false }, 'redis://h'));
});
