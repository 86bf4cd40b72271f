// The package as a user gets it: `npm pack` (its prepack builds dist/), the tarball installed into a
// fresh project (from the local npm cache where it can), then in that project:
// - tsc on a strictly typed producer and task module (tests/fixtures/package-consumer): the public
//   API types known tasks end to end, and each @ts-expect-error there must still be an error;
// - the installed `celeriac` bin serves that task module from Redis: the .ts module (through tsx),
//   then the compiled one in a `-P processes` pool, whose children run compiled code without tsx;
// - Python Celery and the compiled producer call it.
import { execFile } from 'node:child_process';
import { copyFileSync, existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { PROJECT_ROOT, testRedisUrl, testTmpDir } from '../helpers/env';
import { flushDb } from '../helpers/redis';
import { runPyJson } from '../helpers/python';
import { startProcess, type ProcessHandle } from '../helpers/processes';

const run = promisify(execFile);
const FIXTURES = path.join(PROJECT_ROOT, 'tests', 'fixtures', 'package-consumer');
const BROKER_DB = 96;
const BACKEND_DB = 97;
const broker = testRedisUrl(BROKER_DB);
const backend = testRedisUrl(BACKEND_DB);
const project = testTmpDir('package-consumer');
const versionOf = (pkg: string): string => (JSON.parse(readFileSync(path.join(PROJECT_ROOT, 'node_modules', pkg, 'package.json'), 'utf8')) as { version: string }).version;

/** The same TypeScript and Node types as this repo, so npm finds them in its cache. */
const TOOLS = [`typescript@${versionOf('typescript')}`, `@types/node@${versionOf('@types/node')}`];

async function sh(cmd: string, args: string[], cwd: string): Promise<string> {
  try {
    return (await run(cmd, args, { cwd, timeout: 480_000, maxBuffer: 32 * 1024 * 1024, env: { ...process.env, npm_config_audit: 'false', npm_config_fund: 'false' } })).stdout;
  } catch (err) {
    const e = err as Error & { stdout?: string; stderr?: string };
    throw new Error(`${cmd} ${args.join(' ')} failed in ${cwd}: ${e.message}\n${e.stdout ?? ''}\n${e.stderr ?? ''}`, { cause: err });
  }
}

function startInstalledWorker(queue: string, args: string[]): ProcessHandle {
  const bin = path.join(project, 'node_modules', '.bin', 'celeriac');
  return startProcess(bin, ['worker', '-b', broker, '--result-backend', backend, '-Q', queue, '-n', `${queue}@%h`, ...args], {
    cwd: project,
    env: { APP_ENV: 'development', CELERIAC_LOG_LEVEL: 'info', NODE_OPTIONS: '' },
    readyPattern: /ready\./,
    timeoutMs: 60_000,
  });
}

interface ProducerOutput {
  sum: number;
  chainSum: number;
  pair: [number, number];
  label: string;
  otherId: string;
  runtime: { entry: string; tsx: boolean; esm: string; hostname: string };
  loose: string;
}

async function runProducer(queue: string, worker: ProcessHandle): Promise<ProducerOutput> {
  try {
    const { stdout } = await run(process.execPath, [path.join(project, 'dist', 'producer.js')], {
      cwd: project,
      timeout: 180_000,
      env: { ...process.env, NODE_OPTIONS: '', BROKER_URL: broker, RESULT_BACKEND: backend, QUEUE: queue },
    });
    return JSON.parse(stdout.trim().split('\n').pop()!) as ProducerOutput;
  } catch (err) {
    throw new Error(`the producer failed: ${(err as Error).message}\nworker output:\n${worker.output().slice(-4000)}`, { cause: err });
  }
}

let tarball: string;

beforeAll(async () => {
  await flushDb(BROKER_DB);
  await flushDb(BACKEND_DB);
  const packDir = testTmpDir('package-tarball');
  await sh('npm', ['pack', '--pack-destination', packDir], PROJECT_ROOT);
  const [file] = readdirSync(packDir).filter((f) => f.endsWith('.tgz'));
  if (!file) throw new Error(`npm pack wrote no tarball in ${packDir}`);
  tarball = path.join(packDir, file);
  writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'celeriac-consumer', version: '1.0.0', private: true }, null, 2));
  for (const f of ['tasks.ts', 'producer.ts', 'tsconfig.json']) copyFileSync(path.join(FIXTURES, f), path.join(project, f));
  await sh('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', tarball, ...TOOLS], project);
}, 600_000);

it('the tarball holds compiled JS, declarations and source maps, and no tests or TypeScript sources', async () => {
  const listing = await sh('tar', ['-tzf', tarball], PROJECT_ROOT);
  const files = listing.split('\n').filter(Boolean);
  for (const f of ['package/dist/workers/index.js', 'package/dist/workers/index.d.ts', 'package/dist/workers/index.js.map', 'package/dist/workers/producer/index.d.ts', 'package/dist/scripts/celeriac.js', 'package/dist/workers/pool/child.js', 'package/dist/workers/backends/redis/storeResult.lua', 'package/bin/celeriac.js', 'package/CHANGELOG.md']) {
    expect(files).toContain(f);
  }
  expect(files.filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))).toEqual([]);
  expect(files.filter((f) => f.includes('/tests/'))).toEqual([]);
});

it('a strictly typed producer and task module compile against the installed package', async () => {
  // tsc with emit reports the same diagnostics as --noEmit, and its output is what the next tests run.
  await sh(process.execPath, [path.join(project, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', '.'], project);
  expect(existsSync(path.join(project, 'dist', 'producer.js'))).toBe(true);
  expect(existsSync(path.join(project, 'dist', 'tasks.js'))).toBe(true);
}, 180_000);

it('ES module projects import it by name too, and paths past `exports` stay private', async () => {
  const esm = `import { Celeriac, chain } from 'celeriac'; import { GroupResult } from 'celeriac/producer';
    console.log(JSON.stringify([typeof Celeriac, typeof chain, typeof GroupResult]));`;
  expect(JSON.parse(await sh(process.execPath, ['--input-type=module', '-e', esm], project))).toEqual(['function', 'function', 'function']);
  const deep = `try { require('celeriac/dist/workers/app/app'); console.log('resolved'); } catch (e) { console.log(e.code); }`;
  expect((await sh(process.execPath, ['-e', deep], project)).trim()).toBe('ERR_PACKAGE_PATH_NOT_EXPORTED');
});

it('the installed bin serves a .ts task module: Python Celery and the typed producer get its results', async () => {
  const worker = startInstalledWorker('consumer-ts', ['-A', './tasks.ts']);
  await worker.waitReady();
  try {
    expect(worker.output()).toMatch(/consumer\.add, consumer\.label, consumer\.runtime/);
    expect(worker.output()).toMatch(/demo\.add/); // the package's own default task module, compiled
    const py = await runPyJson<{ args: number; kwargs: number; demo: number }>(
      `
import json
from celery import Celery
app = Celery('p', broker='${broker}', backend='${backend}')
q = {'queue': 'consumer-ts'}
print(json.dumps({
  'args': app.send_task('consumer.add', args=(20, 22), **q).get(timeout=60),
  'kwargs': app.send_task('consumer.add', kwargs={'x': 1, 'y': 2}, **q).get(timeout=60),
  'demo': app.send_task('demo.add', args=(2, 3), **q).get(timeout=60),
}))
`,
      { timeoutMs: 120_000 },
    );
    expect(py).toEqual({ args: 42, kwargs: 3, demo: 5 });

    const out = await runProducer('consumer-ts', worker);
    expect(out).toMatchObject({ sum: 5, chainSum: 112, pair: [3, 7], label: 'sum=10+12', loose: 'consumer.add' });
    // The worker's own process runs the compiled bin; tsx is loaded there for tasks.ts only.
    expect(out.runtime.entry).toMatch(/node_modules[\\/](\.bin[\\/]celeriac|celeriac[\\/]bin[\\/]celeriac\.js)$/);
    expect(out.runtime.tsx).toBe(true);
    expect(out.runtime.esm).toBe('function');
  } finally {
    await worker.stop();
  }
}, 300_000);

it('with the compiled task module, -P processes children run the package\'s compiled child.js without tsx', async () => {
  const worker = startInstalledWorker('consumer-js', ['-A', './dist/tasks.js', '-P', 'processes', '-c', '1']);
  await worker.waitReady();
  try {
    const out = await runProducer('consumer-js', worker);
    expect(out).toMatchObject({ sum: 5, chainSum: 112, pair: [3, 7], label: 'sum=10+12' });
    expect(out.runtime.entry).toBe(path.join(project, 'node_modules', 'celeriac', 'dist', 'workers', 'pool', 'child.js'));
    expect(out.runtime.tsx).toBe(false);
    expect(out.runtime.esm).toBe('function');
  } finally {
    await worker.stop();
  }
}, 300_000);
