/**
 * `npx tsx scripts/bench/curation.ts [--files N] [--concurrency C] [--data-dir DIR]`: files
 * curated per second and MB/s written into a zarr store, on the same files and store layout, in
 * the same run:
 *   - Celeriac: `climate.curate` on a worker `-P processes -c C` (h5wasm read, zarrita write);
 *   - Python: cBottle's `process` task (xarray `open_dataset().load()`, zarr-python write at the
 *     time index) on `celery worker -P prefork -c C`.
 * Each contender gets its own fresh store (made by `initStore`), a warm worker (one untimed file
 * per slot first), and its N tasks sent at once over a private Redis; the time runs from the
 * first send to the last chunk file appearing. Files: daily, 24 hourly steps of a 181x360 float32
 * `2t` (6.3 MB each), generated once by curation_bench.py into --data-dir and reused.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import { Celeriac, loadConfig } from '../../workers';
import { curationSettings, initStore, readIndex, updateIndex, writeIndex, type CurationSettings } from '../../workers/curation';
import { BENCH_DIR, ROOT, cleanEnv, log, machineBusy, positiveInt, sleep, start, stop, type Proc } from './common';
import { PrivateRedis } from './privateRedis';

const { values: flags } = parseArgs({
  options: {
    files: { type: 'string', default: '24' },
    concurrency: { type: 'string', default: '2' },
    'data-dir': { type: 'string', default: join(tmpdir(), 'celeriac-bench-curation') },
  },
});
const FILES = positiveInt('--files', flags.files);
const C = positiveInt('--concurrency', flags.concurrency);
const DATA = flags['data-dir'];
const SRC = join(DATA, 'src');
const PY = join(ROOT, '.venv-interop', 'bin');

function env(store: string, broker: string): NodeJS.ProcessEnv {
  return {
    ...cleanEnv(),
    APP_ENV: 'development',
    CELERY_BROKER_URL: broker,
    CELERIAC_LOG_LEVEL: 'warning',
    CELERIAC_CURATION_INDEX: join(DATA, 'index.csv'),
    CELERIAC_CURATION_REGRID_OUTPUT: SRC, // the generated files stand for the regridded ones
    CELERIAC_CURATION_ZARR: store,
    CELERIAC_CURATION_VARIABLES: '2t',
    CELERIAC_CURATION_GRID: '181x360',
    CELERIAC_CURATION_TIME_START: '2020-01-01T00:00:00Z',
    CELERIAC_CURATION_TIME_END: '2021-12-31T23:00:00Z',
    CELERIAC_CURATION_TIME_STEP_MINUTES: '60',
    CELERIAC_CURATION_TIME_CHUNK: '24',
    BENCH_STORE: store,
    BENCH_TIME_START: '2020-01-01T00:00:00Z',
    BENCH_STEP_MINUTES: '60',
  };
}

function chunks(store: string): number {
  const dir = join(store, '2t', 'c');
  return existsSync(dir) ? readdirSync(dir).filter((n) => /^\d+$/.test(n)).length : 0;
}

interface Outcome {
  name: string;
  seconds: number;
}

async function contender(name: string, broker: string, store: string, worker: (e: NodeJS.ProcessEnv) => Proc, task: string, files: string[], warmup: string[]): Promise<Outcome> {
  rmSync(store, { recursive: true, force: true });
  const e = env(store, broker);
  await initStore(curationSettings(loadConfig({ env: e as Record<string, string> })));
  const proc = worker(e);
  try {
    const app = new Celeriac({ brokerUrl: broker, resultBackend: null });
    // Warm-up: one file per slot (modules loaded, libraries compiled in every pool process), untimed.
    for (const f of warmup) await app.sendTask(task, [f]);
    await waitChunks(proc, name, store, warmup.length);
    const t0 = performance.now();
    for (const f of files) await app.sendTask(task, [f]);
    await app.close();
    await waitChunks(proc, name, store, warmup.length + files.length);
    return { name, seconds: (performance.now() - t0) / 1000 };
  } finally {
    await stop(proc);
  }
}

async function waitChunks(proc: Proc, name: string, store: string, n: number): Promise<void> {
  const t0 = performance.now();
  while (chunks(store) < n) {
    if (proc.exited) throw new Error(`${name} worker exited:\n${proc.output()}`);
    if (performance.now() - t0 > 600_000) throw new Error(`${name}: ${chunks(store)}/${n} chunks after 10 min`);
    await sleep(20);
  }
}

async function main(): Promise<void> {
  log(`generating ${FILES} files into ${SRC} (kept for the next run)`);
  const gen = spawnSync(join(PY, 'python'), [join(BENCH_DIR, 'curation_bench.py'), 'generate', SRC, String(FILES + C)], { stdio: 'inherit' });
  if (gen.status !== 0) throw new Error('curation_bench.py generate failed');
  const settings: CurationSettings = curationSettings(loadConfig({ env: env(join(DATA, 'x.zarr'), '') as Record<string, string> }));
  const index = await updateIndex(SRC, [], settings.filePattern);
  await writeIndex(settings.index, index.rows);
  const all = (await readIndex(settings.index)).map((r) => r.file);
  const [files, warmup] = [all.slice(0, FILES), all.slice(FILES, FILES + C)];
  const redis = await PrivateRedis.start(join(DATA, 'redis'));
  const bytesPerFile = 24 * 181 * 360 * 4;
  const results: Outcome[] = [];
  try {
    log(`machine busy: ${machineBusy().toFixed(2)} (load per core)`);
    results.push(
      await contender('celeriac -P processes', redis.url(0), join(DATA, 'celeriac.zarr'), (e) =>
        start('celeriac', process.execPath, ['-r', 'tsx/cjs', join(ROOT, 'workers', 'cli', 'main.ts'), 'worker', '-A', 'workers/tasks/curation.ts', '-P', 'processes', '-c', String(C), '--result-backend', ''], { env: e }),
        'climate.curate', files, warmup),
    );
    results.push(
      await contender('python celery prefork', redis.url(1), join(DATA, 'python.zarr'), (e) =>
        start('celery', join(PY, 'celery'), ['-A', 'curation_bench', 'worker', '-P', 'prefork', '-c', String(C), '-l', 'warning', '--without-gossip', '--without-mingle', '--without-heartbeat'], { cwd: BENCH_DIR, env: e }),
        'bench.curate', files, warmup),
    );
  } finally {
    await redis.stop();
  }
  // Same metadata (made by initStore), same codec chain: the chunk files must be byte-identical.
  const differing = readdirSync(join(DATA, 'celeriac.zarr', '2t', 'c')).filter(
    (c) => !readFileSync(join(DATA, 'celeriac.zarr', '2t', 'c', c, '0', '0')).equals(readFileSync(join(DATA, 'python.zarr', '2t', 'c', c, '0', '0'))),
  );
  log(differing.length === 0 ? 'chunk files of both stores are byte-identical' : `chunks that differ between the stores: ${differing.join(', ')}`);
  log(`${FILES} files, ${(bytesPerFile / 1e6).toFixed(2)} MB each, -c ${C}`);
  for (const r of results) log(`${r.name.padEnd(24)} ${r.seconds.toFixed(2)} s  ${(FILES / r.seconds).toFixed(2)} files/s  ${((FILES * bytesPerFile) / 1e6 / r.seconds).toFixed(1)} MB/s`);
  if (results.length === 2) log(`celeriac / python: ${(results[1].seconds / results[0].seconds).toFixed(2)}x`);
}

main().catch((error: Error) => {
  process.stderr.write(`${error.stack ?? error.message}\n`);
  process.exit(1);
});
