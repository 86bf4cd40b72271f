/**
 * The ClimateSERV-compatible job API end to end: a real `celeriac climate-api` process and real
 * Celeriac workers (workers/tasks/climateJobs.ts) on Redis, the job log on the MongoDB-wire server,
 * driven over HTTP by Python `requests` the way ClimateSERV's scripts call it. Values are compared
 * with netCDF4 + numpy + shapely on the same files; downloads are opened with rasterio and xarray.
 */
import path from 'node:path';
import Redis from 'ioredis';
import type { Db } from 'mongodb';
import { openMongo, type MongoConnection } from '../../workers';
import { CELERIAC_PROGRAM, startCeleriacWorker } from '../helpers/celeriacWorker';
import { PROJECT_ROOT, testMongoUrl, testRedisUrl, testTmpDir } from '../helpers/env';
import { startProcess, type ProcessHandle } from '../helpers/processes';
import { runPyJson } from '../helpers/python';
import { freePort } from '../setup/redisServer';
import { randomUUID } from 'node:crypto';
import { JobLog, type JobDocument } from '../../workers/jobs/log';
import { finishJob, watchChunks } from '../../workers/jobs/fanOut';
import type { JobRequest } from '../../workers/jobs/request';

const BROKER_DB = 88;
const BACKEND_DB = 89;
const MONGO_DB = 'climate_jobs_test';
const POLYGON = { type: 'Polygon', coordinates: [[[30.61, 0.53], [34.87, 0.71], [35.33, 3.41], [31.07, 3.77], [30.61, 0.53]]] };

interface RunResult {
  job: string;
  progress_seen: number[];
  data_status: number;
  data: { data: { date: string; workid: string; epochTime: string; value: Record<string, number> | number }[] };
  reference?: { date: string; epochTime: string; key: string; value: number }[];
  file_status?: number;
  file_type?: string;
  download?: Record<string, unknown> & { names: string[]; max_abs_diff: number; nan_mismatch: number; steps: number };
}

let dir: string;
let base: string;
let api: ProcessHandle;
let worker: ProcessHandle;
let mongo: MongoConnection;
let db: Db;
let env: Record<string, string>;

const py = (code: string, timeoutMs = 120_000): Promise<RunResult> =>
  runPyJson<RunResult>(`import climate_jobs_client as c, json, sys\n${code}`, { timeoutMs });

function runJob(params: Record<string, string>, method: 'GET' | 'POST' = 'GET', dataDir = 'chirps', timeout = 90): Promise<RunResult> {
  const spec = { base, params, method, data_dir: path.join(dir, dataDir), timeout };
  return py(`c.run(json.loads(${JSON.stringify(JSON.stringify(spec))}))`).catch(async (err: Error) => {
    const job = /job ([0-9a-f-]{36})/.exec(err.message)?.[1];
    const doc = job ? await jobDoc(job) : null;
    throw new Error(`${err.message}\njob log: ${JSON.stringify(doc)}\nworker output:\n${worker.output().slice(-6000)}`);
  });
}

const request = (op: number, extra: Record<string, string> = {}): Record<string, string> => ({
  datatype: '0',
  operationtype: String(op),
  begintime: '12/20/2019',
  endtime: '01/10/2020',
  intervaltype: '0',
  geometry: JSON.stringify(POLYGON),
  ...extra,
});

const jobDoc = (uuid: string): Promise<JobDocument | null> => db.collection<JobDocument>('climate_jobs').findOne({ _id: uuid });

async function startApi(): Promise<void> {
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  api = startProcess(process.execPath, ['-r', 'tsx/cjs', CELERIAC_PROGRAM, 'climate-api', '--port', String(port)], {
    cwd: PROJECT_ROOT,
    env: { ...env, APP_ENV: 'development' },
    readyPattern: /listening on/,
    timeoutMs: 60_000,
  });
  await api.waitReady();
}

// -P processes -c 2 with a Redis result backend: statistics jobs run as chords of chunk tasks
// spread over both pool processes (workers/jobs/fanOut.ts); downloads run in one slot.
const startWorker = (name: string): Promise<ProcessHandle> =>
  startCeleriacWorker({
    brokerUrl: testRedisUrl(BROKER_DB),
    backendUrl: testRedisUrl(BACKEND_DB),
    hostname: `${name}@test`,
    concurrency: 2,
    app: 'workers/tasks/climateJobs.ts',
    extraArgs: ['-P', 'processes'],
    env: { ...env, CELERIAC_UNACKED_MUTEX_EXPIRE: '3' },
    timeoutMs: 90_000,
  });

beforeAll(async () => {
  dir = testTmpDir('climate-jobs');
  await runPyJson(`import climate_jobs_client as c\nc.generate(${JSON.stringify(path.join(dir, 'chirps'))}, '2019-12-20', 21)`);
  // A longer series for the kill test: enough files that the job is still running when killed.
  await runPyJson(`import climate_jobs_client as c\nc.generate(${JSON.stringify(path.join(dir, 'long'))}, '2018-01-01', 500, 40, 40)`, { timeoutMs: 180_000 });
  for (const url of [testRedisUrl(BROKER_DB), testRedisUrl(BACKEND_DB)]) {
    const redis = new Redis(url);
    await redis.flushdb();
    redis.disconnect();
  }
  mongo = await openMongo(testMongoUrl(MONGO_DB), { dbName: MONGO_DB, maxAttempts: 3 });
  db = mongo.db;
  await db.dropDatabase();
  env = {
    CELERY_BROKER_URL: testRedisUrl(BROKER_DB),
    CELERY_RESULT_BACKEND: '',
    CELERIAC_MONGO_URL: testMongoUrl(MONGO_DB),
    CELERIAC_MONGO_DB: MONGO_DB,
    CELERIAC_CLIMATE_DATASETS: JSON.stringify({
      0: { name: 'CHIRPS', folder: path.join(dir, 'chirps'), variable: 'precipitation' },
      1: { name: 'CHIRPS long', folder: path.join(dir, 'long'), variable: 'precipitation' },
    }),
    CELERIAC_CLIMATE_OUTPUT_DIR: path.join(dir, 'out'),
    CELERIAC_CLIMATE_MAX_AREA_KM2: '500000',
    CELERIAC_CLIMATE_MAX_YEARS: '3',
    CELERIAC_CLIMATE_JOB_LEASE: '3',
    CELERIAC_VISIBILITY_TIMEOUT: '4',
    CELERIAC_UNACKED_RESTORE_INTERVAL: '1',
  };
  await startApi();
  worker = await startWorker('w1');
}, 300_000);

afterAll(async () => {
  await Promise.all([api?.stop(), worker?.stop()]);
  await mongo?.close();
});

describe('statistics jobs', () => {
  test.each([0, 1, 2, 3, 4, 5])('operationtype %i: values equal numpy + shapely over the same files, in date order', async (op) => {
    const res = await runJob(request(op), op % 2 ? 'POST' : 'GET');
    expect(res.data_status).toBe(200);
    expect(res.progress_seen[res.progress_seen.length - 1]).toBe(100);
    const ref = res.reference!;
    expect(ref.length).toBe(21);
    expect(res.data.data.map((d) => [d.date, d.epochTime])).toEqual(ref.map((r) => [r.date, r.epochTime]));
    res.data.data.forEach((d, i) => {
      const got = (d.value as Record<string, number>)[ref[i].key];
      expect(Math.abs(got - ref[i].value)).toBeLessThanOrEqual(1e-6 * Math.max(1, Math.abs(ref[i].value)));
      expect(d.workid).toMatch(/^[0-9a-f-]{36}$/);
    });
    expect(ref[3].value).toBe(-9999);
    const doc = await jobDoc(res.job);
    expect(doc).toMatchObject({ status: 'Processing_Complete', progress: 100, is_errored: false, worker: 'w1@test' });
    expect(doc!.request).toMatchObject({ datatype: 0, operationtype: op, begintime: '12/20/2019', endtime: '01/10/2020', from_ui: false });
    expect(doc!.attempts).toHaveLength(1);
    // The truncated file and the all-missing day are warnings, not errors.
    expect(doc!.warnings.some((w) => w.includes('20200110'))).toBe(true);
    expect(doc!.warnings.some((w) => w.includes('-9999'))).toBe(true);
    expect(doc!.errors).toEqual([]);
  }, 150_000);

  test('a two-year job runs as several climate.area_values chunks on the pool, merged in date order', async () => {
    // Two jobs at once on -c 2: no task waits on another, so neither can starve the other's chunks.
    const [res, other] = await Promise.all([runJob(request(4)), runJob(request(1), 'POST')]);
    expect((await jobDoc(other.job))!).toMatchObject({ status: 'Processing_Complete', progress: 100 });
    expect(other.data.data).toHaveLength(other.reference!.length);
    const ref = res.reference!;
    expect(res.data.data.map((d) => d.date)).toEqual(ref.map((r) => r.date));
    res.data.data.forEach((d, i) => expect(Math.abs((d.value as Record<string, number>).sum - ref[i].value)).toBeLessThanOrEqual(1e-6 * Math.max(1, Math.abs(ref[i].value))));
    const doc = (await jobDoc(res.job))!;
    expect(doc).toMatchObject({ status: 'Processing_Complete', progress: 100, is_errored: false });
    expect(res.progress_seen[res.progress_seen.length - 1]).toBe(100);
    // One chunk per year at least (2019 and 2020): each is a climate.area_values result in the backend.
    const ids = doc.chunks!.ids;
    expect(ids.length).toBeGreaterThan(1);
    const backend = new Redis(testRedisUrl(BACKEND_DB));
    const metas = await Promise.all(ids.map(async (id) => JSON.parse((await backend.get(`celery-task-meta-${id}`)) ?? 'null') as { status: string; result: { values: { date: string }[] } } | null));
    backend.disconnect();
    expect(metas.map((m) => m?.status)).toEqual(ids.map(() => 'SUCCESS'));
    const years = metas.map((m) => [...new Set(m!.result.values.map((v) => v.date.slice(0, 4)))]);
    expect(years).toEqual([['2019'], ['2020']]);
    expect(metas.reduce((n, m) => n + m!.result.values.length, 0)).toBe(ref.length);
    // The chunks' warnings (the truncated file) reach the job log.
    expect(doc.warnings.some((w) => w.includes('20200110'))).toBe(true);
  }, 240_000);

  test('JSONP: callback wraps the progress and the data answers', async () => {
    const res = await runJob(request(5));
    const progress = await fetch(`${base}/api/getDataRequestProgress/?id=${res.job}&callback=cb`);
    expect(progress.headers.get('content-type')).toContain('application/javascript');
    expect(await progress.text()).toBe('cb([100])');
    const data = await fetch(`${base}/chirps/getDataFromRequest?id=${res.job}&callback=my.cb`);
    const text = await data.text();
    expect(text.startsWith('my.cb({"data":[')).toBe(true);
    expect(JSON.parse(text.slice(6, -1))).toEqual(res.data);
  }, 120_000);
});

describe('downloads', () => {
  test('operationtype 6: a zip of GeoTIFFs, one per step, EPSG:4326 with nodata, equal to the clipped grids', async () => {
    const res = await runJob(request(6));
    expect(res.file_status).toBe(200);
    expect(res.file_type).toBe('application/zip');
    const dl = res.download!;
    expect(dl.names).toHaveLength(21);
    expect(dl.names[0]).toBe('20191220.tif');
    expect(dl.crs).toEqual(['EPSG:4326']);
    expect(dl.nodata).toEqual([-9999]);
    expect(dl.steps).toBe(21);
    expect(dl.valid_cells).toBeGreaterThan(21 * 50);
    expect(dl.nan_mismatch).toBe(0);
    expect(dl.max_abs_diff).toBeLessThan(1e-5);
  }, 150_000);

  test('operationtype 7: one NetCDF4 file that xarray opens, time axis in order, equal values', async () => {
    const res = await runJob(request(7), 'POST');
    const dl = res.download!;
    expect(dl.names).toEqual([`${res.job}.nc`]);
    expect(dl.times).toHaveLength(21);
    expect((dl.times as string[])[0]).toBe('2019-12-20');
    expect(dl.nan_mismatch).toBe(0);
    expect(dl.max_abs_diff).toBeLessThan(1e-5);
  }, 150_000);

  test('operationtype 8: a CSV with one row per cell in the area that has data', async () => {
    const res = await runJob(request(8));
    const dl = res.download!;
    expect(dl.rows).toBe(dl.expected_rows);
    expect(dl.rows).toBeGreaterThan(0);
    expect(dl.steps).toBe(20); // the all-missing day has no rows
  }, 150_000);
});

describe('validation', () => {
  const cases: [string, Record<string, string>, string][] = [
    ['unknown datatype', { datatype: '42' }, 'datatype'],
    ['datatype not a number', { datatype: 'chirps' }, 'datatype'],
    ['unknown operation', { operationtype: '9' }, 'operationtype'],
    ['bad date', { begintime: '2020-01-01' }, 'begintime'],
    ['impossible date', { endtime: '02/30/2020' }, 'endtime'],
    ['begin after end', { begintime: '02/01/2020', endtime: '01/01/2020' }, 'endtime'],
    ['range over the limit', { begintime: '01/01/2010', endtime: '01/01/2020' }, 'endtime'],
    ['interval type', { intervaltype: '1' }, 'intervaltype'],
    ['geometry not JSON', { geometry: '{nope' }, 'geometry'],
    ['geometry a point', { geometry: '{"type":"Point","coordinates":[1,2]}' }, 'geometry'],
    ['ring not closed', { geometry: '{"type":"Polygon","coordinates":[[[30,1],[31,1],[31,2],[30,2]]]}' }, 'geometry'],
    ['self-intersecting', { geometry: '{"type":"Polygon","coordinates":[[[30,1],[32,3],[32,1],[30,3],[30,1]]]}' }, 'geometry'],
    ['area over the limit', { geometry: '{"type":"Polygon","coordinates":[[[0,0],[20,0],[20,20],[0,20],[0,0]]]}' }, 'geometry'],
    ['bad callback', { callback: 'alert(1)' }, 'callback'],
  ];

  test.each(cases)('%s: 400 naming the parameter, nothing logged or enqueued', async (_what, override, parameter) => {
    const before = await db.collection('climate_jobs').countDocuments();
    const params = new URLSearchParams(request(5, override));
    const res = await fetch(`${base}/api/submitDataRequest/?${params}`);
    expect(res.status).toBe(400);
    const body = (await res.json()) as { errorMsg: string; parameter: string };
    expect(body.parameter).toBe(parameter);
    expect(body.errorMsg.startsWith(`${parameter}:`)).toBe(true);
    expect(await db.collection('climate_jobs').countDocuments()).toBe(before);
  });

  test('a missing parameter, over a POSTed form', async () => {
    const params = request(5);
    delete (params as Partial<typeof params>).geometry;
    const res = await fetch(`${base}/api/submitDataRequest/`, { method: 'POST', body: new URLSearchParams(params) });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ parameter: 'geometry', errorMsg: 'geometry: is required' });
  });

  test('unknown datatype lists the known ids', async () => {
    const res = await fetch(`${base}/api/submitDataRequest/?${new URLSearchParams(request(5, { datatype: '7' }))}`);
    expect(((await res.json()) as { errorMsg: string }).errorMsg).toContain('known: 0, 1');
  });

  test('ids: malformed is a 400, unknown is progress -1 and a 404 for the data', async () => {
    expect((await fetch(`${base}/api/getDataRequestProgress/?id=abc`)).status).toBe(400);
    expect((await fetch(`${base}/api/getDataRequestProgress/`)).status).toBe(400);
    const unknown = '00000000-0000-4000-8000-000000000000';
    expect(await (await fetch(`${base}/api/getDataRequestProgress/?id=${unknown}`)).json()).toEqual([-1]);
    expect((await fetch(`${base}/api/getDataFromRequest/?id=${unknown}`)).status).toBe(404);
    expect((await fetch(`${base}/api/getFileForJobID/?id=${unknown}`)).status).toBe(404);
  });
});

describe('the pieces of a fanned-out job, on the job log', () => {
  const jobRequest: JobRequest = { datatype: 0, operationtype: 5, begintime: '12/30/2019', endtime: '01/02/2020', intervaltype: 0, geometry: POLYGON as JobRequest['geometry'], from_ui: false };
  const value = (date: string, v: number) => ({ date, epochTime: Date.parse(date) / 1000, value: v, validCells: 3, file: `/f/${date.slice(0, 10)}.nc4` });

  async function claimed(log: JobLog, worker = 'w9@test') {
    const uuid = randomUUID();
    await log.create(uuid, jobRequest);
    const outcome = await log.claim(uuid, worker);
    if (outcome.kind !== 'claimed') throw new Error(`not claimed: ${outcome.kind}`);
    return { uuid, claim: outcome.claim };
  }

  test('the body merges the chunks in date order, logs their warnings and completes; the watcher then stops', async () => {
    const log = new JobLog(db, 60_000);
    const { uuid, claim } = await claimed(log);
    const states = new Map([['a', 'PENDING'], ['b', 'PENDING']]);
    const watching = watchChunks({ log, state: async (id) => ({ status: states.get(id) ?? 'PENDING' }), pollMs: 20, touchEveryMs: 100 }, claim, ['a', 'b']);
    states.set('b', 'SUCCESS');
    const parts = [
      { values: [value('2020-01-01T00:00:00.000Z', 2), value('2020-01-02T00:00:00.000Z', 3)], warnings: [{ file: '/f/x.nc4', message: 'skipped: truncated' }] },
      { values: [value('2019-12-30T00:00:00.000Z', 0), value('2019-12-31T00:00:00.000Z', 1)], warnings: [] },
    ];
    states.set('a', 'SUCCESS');
    expect(await finishJob({ log, outputDir: path.join(dir, 'out') }, parts, uuid, claim.attempt, 'w9@test')).toMatchObject({ kind: 'completed', steps: 4, warnings: 1 });
    await watching;
    const doc = (await jobDoc(uuid))!;
    expect(doc).toMatchObject({ status: 'Processing_Complete', progress: 100, worker: 'w9@test', warnings: ['x.nc4: skipped: truncated'] });
    const data = (await (await fetch(`${base}/api/getDataFromRequest/?id=${uuid}`)).json()) as RunResult['data'];
    expect(data.data.map((d) => [d.date, d.value])).toEqual([
      ['12/30/2019', { avg: 0 }],
      ['12/31/2019', { avg: 1 }],
      ['01/01/2020', { avg: 2 }],
      ['01/02/2020', { avg: 3 }],
    ]);
  });

  test('a failed chord body (stored under the job id) fails the job', async () => {
    const log = new JobLog(db, 60_000);
    const { uuid, claim } = await claimed(log);
    const failed = { status: 'FAILURE', result: { exc_type: 'OSError', exc_message: ['disk full'] } };
    await watchChunks({ log, state: async (id) => (id === uuid ? failed : { status: 'SUCCESS' }), pollMs: 20, touchEveryMs: 100 }, claim, ['a', 'b']);
    expect(await jobDoc(uuid)).toMatchObject({ progress: -1, is_errored: true, errors: ['merging the chunks failed: OSError: disk full'] });
  });

  test('a progress write that lands after the body completed the job leaves progress at 100', async () => {
    const log = new JobLog(db, 60_000);
    const { uuid, claim } = await claimed(log);
    expect(await log.complete(claim, {})).toBe(true);
    expect(await log.progress(claim, 50)).toBe(true);
    expect(await jobDoc(uuid)).toMatchObject({ status: 'Processing_Complete', progress: 100 });
  });

  test('a body of an attempt that was taken over writes nothing', async () => {
    const log = new JobLog(db, 0);
    const { uuid, claim } = await claimed(log);
    expect((await log.claim(uuid, 'w8@test')).kind).toBe('claimed');
    expect(await finishJob({ log, outputDir: path.join(dir, 'out') }, [], uuid, claim.attempt, 'w9@test')).toEqual({ kind: 'taken-over', uuid });
    expect((await jobDoc(uuid))!.status).toBe('In_Progress');
  });

  test('a failed chunk fails the job (progress -1, the error names the chunk): the body will never run', async () => {
    const log = new JobLog(db, 60_000);
    const { uuid, claim } = await claimed(log);
    await watchChunks({ log, state: async (id) => (id === 'bad' ? { status: 'FAILURE', result: { exc_type: 'ValueError', exc_message: ['chunk.files: must be a list'] } } : { status: 'SUCCESS' }), pollMs: 20, touchEveryMs: 100 }, claim, ['ok', 'bad']);
    expect(await jobDoc(uuid)).toMatchObject({ status: 'Processing_Complete', progress: -1, is_errored: true, errors: ['chunk bad of the job ended FAILURE: ValueError: chunk.files: must be a list'] });
  });
});

describe('a worker killed mid-job', () => {
  test('the job finishes on another worker and its log says so', async () => {
    const params = new URLSearchParams({ ...request(5), datatype: '1', begintime: '01/01/2018', endtime: '05/15/2019' });
    const submitted = await fetch(`${base}/api/submitDataRequest/?${params}`);
    const [uuid] = (await submitted.json()) as string[];
    // Wait until w1 has turned the job into its chord (chunk ids recorded), then freeze its whole
    // process group at once (SIGSTOP: on a fast machine the chunks may all be done within a
    // second, so a slower check could find the job finished) and kill it without a chance to
    // clean up.
    const deadline = Date.now() + 120_000;
    let doc = await jobDoc(uuid);
    while (Date.now() < deadline && !(doc?.chunks && doc.status !== 'Waiting_To_Start')) {
      await new Promise((r) => setTimeout(r, 5));
      doc = await jobDoc(uuid);
    }
    const killed = worker;
    killed.kill('SIGSTOP');
    doc = await jobDoc(uuid);
    if (!(doc && doc.status === 'In_Progress' && doc.worker === 'w1@test')) {
      killed.kill('SIGKILL');
      throw new Error(`job never seen running on w1: ${JSON.stringify(doc)}\nworker output:\n${worker.output().slice(-3000)}`);
    }
    killed.kill('SIGKILL');
    await killed.exited;
    // A worker killed in the middle of its restore sweep leaves kombu's `unacked_mutex` behind,
    // and no worker restores anything until it expires: the workers here set
    // unacked_mutex_expire to 3 s (kombu's default, 300 s, would only delay the redelivery).
    worker = await startWorker('w2');
    const end = Date.now() + 180_000;
    while (Date.now() < end && (await jobDoc(uuid))?.status !== 'Processing_Complete') await new Promise((r) => setTimeout(r, 250));
    const done = (await jobDoc(uuid))!;
    if (done.status !== 'Processing_Complete') throw new Error(`job not finished after the kill: ${JSON.stringify(done)}\nw1 output:\n${killed.output().slice(-4000)}\nw2 output:\n${worker.output().slice(-4000)}`);
    // The job was a chord by then: w1's chunks (acks_late) went back to the queue, w2 ran them and
    // the chord body, which completed attempt 1 and noted that w1 had gone quiet.
    expect(done).toMatchObject({ status: 'Processing_Complete', progress: 100, is_errored: false, worker: 'w2@test' });
    // Or, when the kill landed before w1 acked the job task itself (acks_late), that message came
    // back too: w2 took the job over as attempt 2 once attempt 1's lease ran out. Both end right.
    const attempts = done.attempts.map((a) => [a.attempt, a.worker, a.finished_at !== undefined]);
    expect([[[1, 'w1@test', true]], [[1, 'w1@test', false], [2, 'w2@test', true]]]).toContainEqual(attempts);
    expect(done.warnings.some((w) => w.startsWith('worker w1@test stopped during attempt 1'))).toBe(true);
    const data = (await (await fetch(`${base}/api/getDataFromRequest/?id=${uuid}`)).json()) as RunResult['data'];
    expect(data.data).toHaveLength(500);
    expect(data.data[0].date).toBe('01/01/2018');
  }, 400_000);
});
