/**
 * The curation pipeline end to end on real Redis: NetCDF4 files written by Python netCDF4, the
 * `celeriac` commands (create-index, init-zarr, enqueue-regrid, enqueue-curate, queues, purge)
 * and two Celeriac workers (-P processes) running climate.regrid (Debian's cdo) and
 * climate.curate (zarrita). One worker is killed with -9 right after the first file is curated;
 * re-running enqueue-curate sends exactly the files Python finds missing in the store; after the
 * rest has run, xarray opens the store and every value equals the regridded file's at its time.
 * Then bad input (failing regrid command, missing file, not NetCDF, off the time axis, no
 * configured variable, wrong grid) fails with its reason, and files sharing a chunk are flagged.
 * Redis db 93 (broker).
 */
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { loadConfig } from '../../workers';
import { curateFile, curationSettings, planCurate, readIndex, regridFile } from '../../workers/curation';
import { celeriacCli, startCeleriacWorker } from '../helpers/celeriacWorker';
import { INTEROP_DIR, testRedisUrl, testTmpDir } from '../helpers/env';
import { waitFor } from '../helpers/faults';
import type { ProcessHandle } from '../helpers/processes';
import { runPyJson } from '../helpers/python';
import { flushDb } from '../helpers/redis';

jest.setTimeout(300_000);

const BROKER_DB = 93;
const BROKER = testRedisUrl(BROKER_DB);
const DIR = testTmpDir('curation');
const SRC = path.join(DIR, 'src');
const OUT = path.join(DIR, 'regridded');
const STORE = path.join(DIR, 'store.zarr');
const SCRIPT = path.join(INTEROP_DIR, 'curation_data.py');
const TCWV = 'tcwv_extra_day4.nc';

const ENV: Record<string, string> = {
  APP_ENV: 'development',
  CELERY_BROKER_URL: BROKER,
  CELERIAC_CURATION_INDEX: path.join(DIR, 'index.csv'),
  CELERIAC_CURATION_REGRID_OUTPUT: OUT,
  CELERIAC_CURATION_ZARR: STORE,
  CELERIAC_CURATION_VARIABLES: '2t,msl,tcwv',
  CELERIAC_CURATION_REGRID_COMMAND: 'cdo -s remapbil,r36x18 {input} {output}',
  CELERIAC_CURATION_GRID: '18x36',
  CELERIAC_CURATION_TIME_START: '2020-01-01T00:00:00Z',
  CELERIAC_CURATION_TIME_END: '2020-01-05T18:00:00Z',
  CELERIAC_CURATION_TIME_STEP_MINUTES: '360',
  CELERIAC_CURATION_TIME_CHUNK: '4',
  // A killed worker's unacked messages come back soon (any live worker restores them).
  CELERIAC_VISIBILITY_TIMEOUT: '3',
  CELERIAC_UNACKED_RESTORE_INTERVAL: '1',
};

function py(args: string[]): string {
  return `import runpy, sys; sys.argv = ${JSON.stringify([SCRIPT, ...args])}; runpy.run_path(sys.argv[0], run_name='__main__')`;
}

/** One `celeriac` command (scripts/celeriac.ts, the composition root), optional stdin. */
function cli(args: string[], input?: string) {
  return celeriacCli(args, ENV, { input });
}

async function ok(args: string[], input?: string): Promise<string> {
  const res = await cli(args, input);
  if (res.code !== 0) throw new Error(`celeriac ${args.join(' ')} exited ${res.code}: ${res.stderr}${res.stdout}`);
  return res.stdout;
}

function startWorker(n: number): Promise<ProcessHandle> {
  return startCeleriacWorker({ brokerUrl: BROKER, concurrency: 1, hostname: `curation${n}@%h`, app: 'workers/tasks/curation.ts', extraArgs: ['-P', 'processes'], env: ENV, timeoutMs: 90_000 });
}

function chunkFiles(): number {
  return ['2t', 'msl', 'tcwv'].reduce((n, v) => n + (existsSync(path.join(STORE, v, 'c')) ? readdirSync(path.join(STORE, v, 'c')).length : 0), 0);
}

let sources: string[];
let regridded: string[];
const workers: ProcessHandle[] = [];

beforeAll(async () => {
  rmSync(DIR, { recursive: true, force: true });
  await flushDb(BROKER_DB);
  sources = await runPyJson<string[]>(py(['generate', SRC]), { timeoutMs: 60_000 });
  regridded = sources.map((f) => path.join(OUT, path.basename(f)));
}, 120_000);

afterAll(async () => {
  await Promise.all(workers.map((w) => w.stop()));
});

test('the whole chain: index, store, regrid, curate with a kill -9, resume, values equal the source', async () => {
  // Index: the ERA5 names by the pattern; a file the pattern does not match by its time variable.
  rmSync(path.join(SRC, TCWV));
  expect(await ok(['create-index', SRC])).toMatch(/added 6, kept 0, not indexed 0/);
  await runPyJson(py(['generate', SRC]), { timeoutMs: 60_000 }); // the same six again, plus the tcwv file
  expect(await ok(['create-index', SRC])).toMatch(/added 1, kept 6, not indexed 0/);
  const index = readFileSync(ENV.CELERIAC_CURATION_INDEX, 'utf8').trim().split('\n');
  expect(index[0]).toBe('file,table,param,name,start_date,end_date');
  expect(index).toContain(`${path.join(SRC, 'e5.oper.an.sfc.128_167_2t.ll025sc.2020010200_2020010218.nc')},128,167,2t,2020-01-02 00:00:00,2020-01-02 18:00:00`);
  expect(index).toContain(`${path.join(SRC, TCWV)},-1,-1,tcwv,2020-01-04 00:00:00,2020-01-04 18:00:00`);

  expect(await ok(['init-zarr'])).toMatch(/created 2t, msl, tcwv, time; existing none/);
  expect(await ok(['init-zarr'])).toMatch(/created nothing; existing 2t, msl, tcwv, time/);

  // Nothing regridded yet: curate has nothing to send.
  expect(await ok(['enqueue-curate'])).toMatch(/sent 0, skipped 0 done, 7 not ready, of 7 selected/);
  expect(await ok(['enqueue-regrid', '--variables', '2t', '--to', '2020-01-02'])).toMatch(/sent 2, skipped 0 done, 0 not ready, of 2 selected/);
  workers.push(await startWorker(1), await startWorker(2));
  await waitFor(() => regridded.filter((f) => /_2t\.ll025sc\.2020010[12]/.test(f)).every(existsSync), 120_000, 'the first two 2t files regridded');
  expect(await ok(['enqueue-regrid'])).toMatch(/sent 5, skipped 2 done, 0 not ready, of 7 selected/);
  await waitFor(() => regridded.every(existsSync), 120_000, 'every file regridded');
  expect(await ok(['enqueue-regrid'])).toMatch(/sent 0, skipped 7 done/);
  expect(readdirSync(OUT).filter((f) => f.includes('.tmp-'))).toEqual([]);

  // Curate; kill -9 one worker (and its pool process) once the first file is in the store.
  expect(await ok(['enqueue-curate'])).toMatch(/sent 7, skipped 0 done, 0 not ready, of 7 selected/);
  await waitFor(() => chunkFiles() >= 1, 120_000, 'a first chunk written');
  workers[0].kill('SIGKILL');
  await workers[1].stop(60_000);

  // What is left waiting; purge asks first and refuses a wrong answer.
  // Ready in every priority list; unacked is not counted per queue on Redis (said once, on stderr).
  const listed = await cli(['queues']);
  expect(listed.stdout).toMatch(/^queue\tready\tunacked\ncelery\t\d+\t-\n$/);
  expect(listed.stderr).toMatch(/note: unacked is not counted per queue on Redis/);
  const waiting = Number(/^celery\t(\d+)\t-$/m.exec(listed.stdout)![1]);
  const refused = await cli(['purge', 'celery'], 'no\n');
  expect(refused.code).toBe(2);
  expect(refused.stdout).toMatch(/not purged/);
  expect(await ok(['purge', 'celery'], 'celery\n')).toMatch(new RegExp(`purged ${waiting} message\\(s\\) from 'celery'`));
  expect(await ok(['queues'])).toMatch(/^celery\t0\t-$/m);

  // Re-running sends exactly what Python finds missing in the store.
  const done = await runPyJson<Record<string, boolean>>(py(['done', STORE]), { input: JSON.stringify({ files: regridded }), timeoutMs: 60_000 });
  const missing = regridded.filter((f) => !done[f]);
  expect(missing.length).toBeGreaterThan(0);
  expect(missing.length).toBeLessThan(7);
  expect(await ok(['enqueue-curate'])).toMatch(new RegExp(`sent ${missing.length}, skipped ${7 - missing.length} done, 0 not ready, of 7 selected`));

  workers.push(await startWorker(3), await startWorker(4));
  await waitFor(async () => /would send 0, skipped 7/.test(await ok(['enqueue-curate', '--dry-run'])), 180_000, 'every file curated');

  const report = await runPyJson<{ dims: Record<string, string[]>; time0: string; time_len: number; files: Record<string, { name: string; equal: boolean; nan: number; steps: number }> }>(
    py(['verify', STORE]),
    { input: JSON.stringify({ files: regridded }), timeoutMs: 60_000 },
  );
  expect(report.dims).toEqual({ '2t': ['time', 'lat', 'lon'], msl: ['time', 'lat', 'lon'], tcwv: ['time', 'lat', 'lon'] });
  expect(report.time0).toMatch(/^2020-01-01T00:00:00/);
  expect(report.time_len).toBe(20);
  expect(Object.values(report.files).map((f) => [f.name, f.equal, f.steps])).toEqual(regridded.map((f) => [/_2t\./.test(f) ? '2t' : /_msl\./.test(f) ? 'msl' : 'tcwv', true, 4]));
  // The 2t files carry missing cells: NaN in the store where the source has none.
  expect(Object.values(report.files).filter((f) => f.name === '2t').every((f) => f.nan > 0)).toBe(true);
});

test('bad input fails the task with a clear reason and leaves nothing half-written', async () => {
  const settings = curationSettings(loadConfig({ env: ENV }));
  const bad = { ...settings, regridOutput: path.join(DIR, 'bad-regrid'), regridCommand: ['false', '{input}', '{output}'] };
  await expect(regridFile(sources[0], bad)).rejects.toThrow(/false .* failed \(exit 1\)/);
  expect(existsSync(bad.regridOutput) ? readdirSync(bad.regridOutput) : []).toEqual([]);
  await expect(regridFile(path.join(SRC, 'missing.nc'), settings)).rejects.toThrow(/missing.nc: no such file/);

  const text = path.join(DIR, 'not-netcdf.nc');
  writeFileSync(text, 'hello');
  await expect(curateFile(text, settings)).rejects.toThrow(/not a NetCDF file/);
  await expect(curateFile(regridded[0], { ...settings, timeStartMs: Date.parse('2021-01-01T00:00:00Z') })).rejects.toThrow(/2020-01-01T00:00:00.000Z is not on the store's time axis/);
  await expect(curateFile(regridded[0], { ...settings, variables: [{ name: 'tp', levels: false }] })).rejects.toThrow(/none of its variables/);
  await expect(curateFile(regridded[0], { ...settings, grid: [19, 36] })).rejects.toThrow(/'VAR_2T' is 4x18x36 per file, the store's '2t' is time x 19x36/);

  // Files that share a store chunk (8 steps, files of 4) are flagged when enqueued.
  const plan = planCurate(await readIndex(ENV.CELERIAC_CURATION_INDEX), { ...settings, timeChunk: 8, zarr: path.join(DIR, 'empty.zarr') });
  expect(plan.send).toHaveLength(7);
  expect(plan.unaligned).toHaveLength(7);
});
