// Signals and pidfiles of a real Celeriac worker process (tests/fixtures/tasks.ts, ledger in a
// redis db): SIGTERM = warm shutdown (the running acks_late task finishes, reserved messages go
// back to the queue), a second SIGTERM = cold shutdown (exit now, the running acks_late message
// goes back too), --pidfile refuses a live pid and replaces a stale one.
// Redis dbs 34-36 (the brief asked for 76-79, but the run's redis-server has 64 dbs).
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { PROJECT_ROOT, testRedisUrl, testTmpDir } from '../helpers/env';
import { pyClient } from '../helpers/python';
import { startCeleriacWorker } from '../helpers/celeriacWorker';
import { startProcess } from '../helpers/processes';
import { flushDb, redisClient, type Redis } from '../helpers/redis';

const BROKER = 34;
const RESULTS = 35;
const LEDGER = 36;

const pyEnv = { BROKER_URL: testRedisUrl(BROKER), RESULT_BACKEND: testRedisUrl(RESULTS) };
const common = {
  brokerUrl: testRedisUrl(BROKER),
  backendUrl: testRedisUrl(RESULTS),
  app: 'tests/fixtures/tasks.ts',
  env: { CELERIAC_TEST_LEDGER_URL: testRedisUrl(LEDGER) },
};

interface Envelope {
  headers: { id?: string };
  properties: { delivery_info: { redelivered?: boolean } };
}

let broker: Redis;
let results: Redis;
let ledger: Redis;

beforeAll(() => {
  [broker, results, ledger] = [redisClient(BROKER), redisClient(RESULTS), redisClient(LEDGER)];
});

beforeEach(async () => {
  await Promise.all([broker.flushdb(), results.flushdb(), ledger.flushdb()]);
});

afterAll(async () => {
  await Promise.all([broker.quit(), results.quit(), ledger.quit()]);
  await Promise.all([flushDb(BROKER), flushDb(RESULTS), flushDb(LEDGER)]);
});

async function waitFor(cond: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** Sends test.slow_late(tag_i, ms) for each tag, in order; returns the task ids. */
async function sendSlow(tags: string[], ms: number): Promise<string[]> {
  const out = await pyClient<{ results: { out: { id: string } }[] }>(
    { op: 'batch', commands: tags.map((tag) => ({ op: 'send', task: 'test.slow_late', args: [tag, ms] })) },
    { env: pyEnv },
  );
  return out.results.map((r) => r.out.id);
}

async function status(id: string): Promise<string | undefined> {
  const raw = await results.get(`celery-task-meta-${id}`);
  return raw ? (JSON.parse(raw) as { status: string }).status : undefined;
}

async function queued(): Promise<Envelope[]> {
  return (await broker.lrange('celery', 0, -1)).map((s) => JSON.parse(s) as Envelope);
}

/** Resolves once the worker has claimed `held` messages and logged the start of the first task. */
async function waitRunning(output: () => string, held: number): Promise<void> {
  await waitFor(async () => (await broker.hlen('unacked')) === held && /Task test\.slow_late\[/.test(output()), 10_000, `${held} held messages`);
}

it('warm shutdown (SIGTERM): finishes the running acks_late task, gives reserved ones back, exits 0', async () => {
  const ids = await sendSlow(['w0', 'w1', 'w2', 'w3', 'w4'], 2000);
  // concurrency 1 x prefetch multiplier 4: one running, three reserved, one left in the queue.
  const worker = await startCeleriacWorker({ ...common, concurrency: 1 });
  await waitRunning(() => worker.output(), 4);
  const signalled = Date.now();
  worker.kill('SIGTERM');
  const exit = await worker.exited;
  const took = Date.now() - signalled;

  expect(exit).toEqual({ code: 0, signal: null });
  expect(took).toBeGreaterThan(1000); // it waited for the running task (2 s, started just before)
  const ran = await ledger.lrange('ledger', 0, -1);
  expect(ran).toHaveLength(1);
  const tag = ran[0]!.split(':')[0]!;
  const ranId = ids[Number(tag.slice(1))]!;
  expect(await status(ranId)).toBe('SUCCESS');

  const back = await queued();
  expect(back.map((e) => e.headers.id).sort()).toEqual(ids.filter((id) => id !== ranId).sort());
  expect(await broker.hlen('unacked')).toBe(0);
  expect(await broker.zcard('unacked_index')).toBe(0);
  expect(worker.output()).toMatch(/Warm shutdown \(SIGTERM\)/);
});

it('cold shutdown (second SIGTERM): exits at once and the running acks_late message is redelivered', async () => {
  const ids = await sendSlow(['c0', 'c1', 'c2'], 6000);
  const worker = await startCeleriacWorker({ ...common, concurrency: 1 });
  await waitRunning(() => worker.output(), 3);
  const signalled = Date.now();
  worker.kill('SIGTERM');
  await new Promise((r) => setTimeout(r, 300));
  worker.kill('SIGTERM');
  const timeout = new Promise<null>((r) => setTimeout(() => r(null), 4_000).unref());
  const exit = await Promise.race([worker.exited, timeout]);
  const took = Date.now() - signalled;
  if (!exit) await worker.stop(10_000);

  expect(exit).not.toBeNull(); // exited by itself, well before the 6 s task would have finished
  expect(exit?.signal).toBeNull();
  expect(took).toBeLessThan(4_000);
  expect(worker.output()).toMatch(/Cold shutdown \(SIGTERM\)/);
  expect(await ledger.llen('ledger')).toBe(0);

  // Nothing lost: all three are back in the queue, the one that was running marked redelivered.
  const back = await queued();
  expect(back.map((e) => e.headers.id).sort()).toEqual([...ids].sort());
  expect(back.some((e) => e.properties.delivery_info.redelivered === true)).toBe(true);
  expect(await broker.hlen('unacked')).toBe(0);
}, 30_000);

it('--pidfile: refuses to start over a live worker, replaces a stale pidfile, removes it at exit', async () => {
  const dir = testTmpDir('worker-pidfile');
  const pidfile = path.join(dir, 'celeriac.pid');
  const first = await startCeleriacWorker({ ...common, extraArgs: ['--pidfile', pidfile] });
  expect(fs.readFileSync(pidfile, 'utf8').trim()).toBe(String(first.pid));

  const cli = path.join(PROJECT_ROOT, 'workers', 'cli', 'main.ts');
  const second = startProcess(
    process.execPath,
    ['-r', 'tsx/cjs', cli, 'worker', '-b', common.brokerUrl, '--result-backend', common.backendUrl, '--pidfile', pidfile],
    { cwd: PROJECT_ROOT, env: { APP_ENV: 'development', CELERIAC_LOG_LEVEL: 'info' } },
  );
  const timeout = new Promise<null>((r) => setTimeout(() => r(null), 15_000).unref());
  const refused = await Promise.race([second.exited, timeout]);
  if (!refused) await second.stop(2_000);
  expect(refused?.code).not.toBe(0);
  expect(refused?.code).not.toBeNull();
  expect(second.output()).toContain(pidfile);
  expect(second.output()).not.toMatch(/ready\./);
  expect(fs.readFileSync(pidfile, 'utf8').trim()).toBe(String(first.pid));
  expect(await first.stop()).toEqual({ code: 0, signal: null });
  expect(fs.existsSync(pidfile)).toBe(false);

  // A pidfile left by a process that is gone (a finished child's pid) does not block a start.
  const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  fs.writeFileSync(pidfile, `${dead.stdout}\n`);
  const third = await startCeleriacWorker({ ...common, extraArgs: ['--pidfile', pidfile] });
  expect(fs.readFileSync(pidfile, 'utf8').trim()).toBe(String(third.pid));
  expect(await third.stop()).toEqual({ code: 0, signal: null });
  expect(fs.existsSync(pidfile)).toBe(false);
});
