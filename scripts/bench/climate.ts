/**
 * `npm run bench -- --suite climate`: area average over daily 0.05° grids (Africa extent, NetCDF4
 * zlib, CHIRPS-like) for a country-sized polygon, one value per day, three ways on the same files
 * in the same run:
 *   - Celeriac: `climate.area_request` sent to a worker (-P processes -c 2 by default) over a
 *     private Redis; timed from submit to the merged result in the caller (a chord of chunks);
 *   - the path ClimateSERV runs: xarray open_mfdataset (dask) + regionmask mask + mean, timed in
 *     the Python process after its imports (`xarray`), and the same with the grid cut to the
 *     polygon's bbox before masking (`xarray-bbox`, the tuned variant);
 *   - a plain netCDF4 + numpy loop (window read, shapely mask once), timed the same way.
 * Peak RSS: the worker's whole process group sampled every --sample-ms (the pool processes
 * included); Python's getrusage maximum (dask's threads live in the process). The values of every
 * contender are cross-checked against the loop's. Data are generated once by climate_bench.py
 * into --data-dir (reused next time) and not timed.
 */
import { spawnSync } from 'node:child_process';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Celeriac } from '../../workers';
import type { AreaGeometry, AreaRequest, AreaValues } from '../../workers/climate';
import { BENCH_DIR, ROOT, cleanEnv, log, positiveInt, sleep, start, stop, workerMemory, type Proc } from './common';
import { PrivateRedis } from './privateRedis';

export const CLIMATE_OPTIONS = {
  days: { type: 'string', default: '365' },
  'data-dir': { type: 'string', default: join(tmpdir(), 'celeriac-bench-climate') },
  'climate-pool': { type: 'string', default: 'processes' },
  'climate-concurrency': { type: 'string', default: '2' },
  'chunk-size': { type: 'string', default: '16' },
  'climate-only': { type: 'string', default: 'celeriac,xarray,xarray-bbox,loop' },
} as const;

export const CLIMATE_HELP = [
  '',
  '--suite climate (area average over daily 0.05° NetCDF4 grids; see docs/benchmarks.md):',
  '  --days N                  daily files (365)',
  '  --data-dir DIR            where the generated files are kept and reused (<tmp>/celeriac-bench-climate)',
  '  --climate-pool P          Celeriac worker pool: processes or threads (processes)',
  '  --climate-concurrency C   Celeriac -c (2)',
  '  --chunk-size N            files per chunk task (16)',
  '  --climate-only list       celeriac, xarray, xarray-bbox, loop (all)',
  '  --sample-ms MS            memory sampling interval (100)',
];

export interface ClimateFlags {
  days: string;
  'data-dir': string;
  'climate-pool': string;
  'climate-concurrency': string;
  'chunk-size': string;
  'climate-only': string;
  'sample-ms': string;
}

export interface ClimateEnv {
  python: string;
  tempDir: string;
  code: string;
}

interface Outcome {
  id: string;
  label: string;
  seconds: number;
  peakRssKiB: number;
  values: number[];
  note: string;
}

let worker: Proc | null = null;
let redis: PrivateRedis | null = null;

/** Stop what this suite started (main.ts calls it on exit and on Ctrl-C). */
export async function stopClimate(): Promise<void> {
  if (worker) await stop(worker);
  worker = null;
  await redis?.stop();
  redis = null;
}

function python(env: ClimateEnv, args: string[], input?: string): string {
  const run = spawnSync(env.python, [join(BENCH_DIR, 'climate_bench.py'), ...args], { cwd: BENCH_DIR, input, encoding: 'utf8', maxBuffer: 64 << 20 });
  if (run.status !== 0) throw new Error(`climate_bench.py ${args[0]}: exit ${run.status ?? run.signal}\n${run.stderr}`);
  return run.stdout;
}

async function startWorker(url: (db: number) => string, pool: string, c: number): Promise<Proc> {
  const args = ['-r', 'tsx/cjs', join(ROOT, 'workers/cli/main.ts'), 'worker', '-b', url(0), '--result-backend', url(1), '-P', pool, '-c', String(c), '-A', join(ROOT, 'workers/tasks/climate.ts'), '-l', 'info', '-n', 'bench-climate@%h', '--without-heartbeat'];
  const proc = start('celeriac-climate', process.execPath, args, { cwd: ROOT, env: cleanEnv() });
  const t0 = performance.now();
  while (!/ready\./.test(proc.output())) {
    if (proc.exited) throw new Error(`Celeriac worker exited:\n${proc.output()}`);
    if (performance.now() - t0 > 120_000) throw new Error(`Celeriac worker not ready after 120 s:\n${proc.output()}`);
    await sleep(50);
  }
  return proc;
}

async function runCeleriac(request: AreaRequest, url: (db: number) => string, flags: ClimateFlags): Promise<Outcome> {
  const pool = flags['climate-pool'];
  const c = positiveInt('--climate-concurrency', flags['climate-concurrency']);
  worker = await startWorker(url, pool, c);
  const app = new Celeriac({ brokerUrl: url(0), resultBackend: url(1) });
  let peak = 0;
  const sampleMs = positiveInt('--sample-ms', flags['sample-ms']);
  const sampler = setInterval(() => {
    peak = Math.max(peak, workerMemory(worker!.pid).reduce((s, p) => s + p.rssKiB, 0));
  }, sampleMs);
  try {
    // Warm-up, not timed (as Python's imports are not): one file per pool slot, so every pool
    // process has opened a file once.
    const tw = performance.now();
    const warm = await app.sendTask('climate.area_request', [{ ...request, end: new Date(Date.parse(request.begin) + (c - 1) * 86_400_000).toISOString().slice(0, 10), chunkSize: 1 }]);
    await warm.get({ timeout: 600 });
    const warmS = (performance.now() - tw) / 1000;
    const t0 = performance.now();
    const handle = await app.sendTask('climate.area_request', [request]);
    const result = (await handle.get({ timeout: 3600 })) as AreaValues;
    const seconds = (performance.now() - t0) / 1000;
    peak = Math.max(peak, workerMemory(worker.pid).reduce((s, p) => s + p.rssKiB, 0));
    const skipped = result.warnings.length;
    return { id: 'celeriac', label: `Celeriac -P ${pool} -c ${c} (chunks of ${request.chunkSize})`, seconds, peakRssKiB: peak, values: result.values.map((v) => v.value), note: `${skipped} warnings; warm-up request ${warmS.toFixed(1)} s (not timed)` };
  } finally {
    clearInterval(sampler);
    await app.close();
    await stop(worker);
    worker = null;
  }
}

function runPython(env: ClimateEnv, id: string, command: string, files: string[], geometry: AreaGeometry, subset: boolean, label: string): Outcome {
  const t0 = performance.now();
  const out = JSON.parse(python(env, [command], JSON.stringify({ files, variable: 'precipitation', geometry, subset })).trim().split('\n').pop()!) as { seconds: number; peak_rss_kib: number; values: number[] };
  const wall = (performance.now() - t0) / 1000;
  return { id, label, seconds: out.seconds, peakRssKiB: out.peak_rss_kib, values: out.values, note: `process wall ${wall.toFixed(1)} s with imports` };
}

function maxRelDiff(a: number[], b: number[]): number {
  if (a.length !== b.length) return Infinity;
  return a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i]) / Math.max(1e-12, Math.abs(b[i]))), 0);
}

export async function runClimate(flags: ClimateFlags, env: ClimateEnv): Promise<string> {
  const days = positiveInt('--days', flags.days);
  if (days > 365) throw new Error('--days: at most 365 (the days of 2021)');
  const only = new Set(flags['climate-only'].split(',').map((s) => s.trim()));
  // One folder for every --days: the first N days of 2021 (files are added, never rewritten).
  const folder = join(flags['data-dir'], 'africa-0.05deg-2021');
  const tGen = performance.now();
  const data = JSON.parse(python(env, ['generate', folder, String(days)]).trim().split('\n').pop()!) as { files: string[]; geometry: AreaGeometry };
  log(`climate: ${data.files.length} files ready in ${folder} (${((performance.now() - tGen) / 1000).toFixed(0)} s, not measured)`);
  const end = new Date(Date.UTC(2021, 0, days)).toISOString().slice(0, 10);
  const request: AreaRequest = { folder, variable: 'precipitation', geometry: data.geometry, operation: 5, begin: '2021-01-01', end, chunkSize: positiveInt('--chunk-size', flags['chunk-size']) };
  const outcomes: Outcome[] = [];
  const load0 = loadavg()[0];
  if (only.has('celeriac')) {
    redis = await PrivateRedis.start(join(env.tempDir, 'redis-climate'));
    const server = redis;
    outcomes.push(await runCeleriac(request, (db) => server.url(db), flags));
    await stopClimate();
  }
  if (only.has('xarray')) outcomes.push(runPython(env, 'xarray', 'xarray', data.files, data.geometry, false, 'xarray open_mfdataset + regionmask (full grid)'));
  if (only.has('xarray-bbox')) outcomes.push(runPython(env, 'xarray-bbox', 'xarray', data.files, data.geometry, true, 'xarray open_mfdataset + regionmask (bbox first)'));
  if (only.has('loop')) outcomes.push(runPython(env, 'loop', 'loop', data.files, data.geometry, false, 'netCDF4 + numpy loop (window, mask once)'));
  const reference = outcomes.find((o) => o.id === 'loop') ?? outcomes[0];
  const xarray = outcomes.find((o) => o.id === 'xarray');
  const celeriac = outcomes.find((o) => o.id === 'celeriac');
  const rows = outcomes.map((o) => [
    o.label,
    o.seconds.toFixed(2),
    celeriac ? (o.seconds / celeriac.seconds).toFixed(1) + 'x' : '-',
    xarray ? (xarray.seconds / o.seconds).toFixed(1) + 'x' : '-',
    (o.peakRssKiB / 1024).toFixed(0),
    String(o.values.length),
    maxRelDiff(o.values, reference.values).toExponential(1),
    o.note,
  ]);
  const header = ['contender', 'seconds', 'its time / Celeriac', 'xarray / its time (speed-up)', 'peak RSS MiB', 'values', `max rel diff vs ${reference.id}`, 'note'];
  return [
    '',
    `climate suite: ${data.files.length} daily 0.05° grids (1600 x 1500, NetCDF4 zlib, chunks 256x256), area average over a ~8 x 10° polygon`,
    `${env.code}; ${availableParallelism()} cores; load average ${load0.toFixed(1)} at start, ${loadavg()[0].toFixed(1)} at end`,
    '',
    `| ${header.join(' | ')} |`,
    `|${header.map(() => '---').join('|')}|`,
    ...rows.map((r) => `| ${r.join(' | ')} |`),
    '',
  ].join('\n');
}
