// The control commands that tune a running Celeriac worker, sent by real Python Celery's
// app.control: pool_grow / pool_shrink, time_limit and rate_limit (Redis, dbs 16-17); and the
// rate_limit task option on an in-process worker (db 18).
import os from 'node:os';
import { Celeriac, type AppLogger } from '../../workers/app/app';
import { Worker } from '../../workers/worker/worker';
import { testRedisUrl } from '../helpers/env';
import { pyClient, runPyJson } from '../helpers/python';
import { startCeleriacWorker } from '../helpers/celeriacWorker';
import type { ProcessHandle } from '../helpers/processes';
import { flushDb, redisClient } from '../helpers/redis';

const BROKER_DB = 16;
const BACKEND_DB = 17;

/**
 * Runs app.control.<method>(*args, **kwargs, destination=[DEST], reply=True, timeout=2), or with
 * INSPECT app.control.inspect(...).<method>(), for each of CALLS and prints the replies in order.
 * With WAIT_PING it first pings until the node answers.
 */
const CONTROL = `
import json, os, time
from pyapp import app
dest = os.environ["DEST"]
if os.environ.get("WAIT_PING"):
    deadline = time.time() + 20
    while time.time() < deadline:
        if app.control.inspect(destination=[dest], timeout=0.5).ping():
            break
out = []
for kind, method, args, kwargs in json.loads(os.environ["CALLS"]):
    if kind == "inspect":
        out.append(getattr(app.control.inspect(destination=[dest], timeout=2), method)())
    else:
        out.append(getattr(app.control, method)(*args, destination=[dest], reply=True, timeout=2, **kwargs))
print(json.dumps(out, default=repr))
`;

type Call = ['inspect' | 'control', string, unknown[], Record<string, unknown>];

/** Sends the tasks, waits for all results; prints each outcome and the seconds from first send to last result. */
const RUN_ALL = `
import json, os, time
from pyapp import app
tasks = json.loads(os.environ["TASKS"])
t0 = time.time()
results = [app.send_task(name, args=args) for name, args in tasks]
out = []
for r in results:
    try:
        out.append({"state": "SUCCESS", "result": r.get(timeout=30)})
    except Exception as exc:
        out.append({"state": r.state, "exc_type": type(exc).__name__})
print(json.dumps({"elapsed": time.time() - t0, "outcomes": out}))
`;

interface Outcome {
  state: string;
  result?: unknown;
  exc_type?: string;
}

async function waitFor(what: string, fn: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe('tuning a running worker by remote control (Redis)', () => {
  const hostname = `ctl-pool-${process.pid}@${os.hostname()}`;
  let env: Record<string, string>;
  let worker: ProcessHandle;

  const control = (calls: Call[], waitPing = false): Promise<unknown[]> =>
    runPyJson<unknown[]>(CONTROL, { env: { ...env, DEST: hostname, CALLS: JSON.stringify(calls), ...(waitPing ? { WAIT_PING: '1' } : {}) }, timeoutMs: 40_000 });
  const runAll = (tasks: [string, unknown[]][]): Promise<{ elapsed: number; outcomes: Outcome[] }> =>
    runPyJson(RUN_ALL, { env: { ...env, TASKS: JSON.stringify(tasks) }, timeoutMs: 60_000 });
  const poolSize = async (): Promise<unknown> => {
    const [stats] = (await control([['inspect', 'stats', [], {}]])) as [Record<string, { pool: Record<string, unknown> }>];
    return stats[hostname]!.pool['max-concurrency'];
  };

  beforeAll(async () => {
    await flushDb(BROKER_DB);
    await flushDb(BACKEND_DB);
    env = { BROKER_URL: testRedisUrl(BROKER_DB), RESULT_BACKEND: testRedisUrl(BACKEND_DB) };
    worker = await startCeleriacWorker({ brokerUrl: env.BROKER_URL!, backendUrl: env.RESULT_BACKEND, hostname, concurrency: 1 });
  });

  afterAll(async () => {
    await worker?.stop().catch(() => undefined);
  });

  it('pool_grow 2 makes room for three tasks at once; pool_shrink 2 goes back to one', async () => {
    const [grown] = await control([['control', 'pool_grow', [], { n: 2 }]], true);
    expect(grown).toEqual([{ [hostname]: { ok: 'pool will grow' } }]);
    expect(await poolSize()).toBe(3);

    const done = runAll([
      ['demo.sleep', [2]],
      ['demo.sleep', [2]],
      ['demo.sleep', [2]],
    ]);
    await waitFor('three active', async () => {
      const [active] = (await control([['inspect', 'active', [], {}]])) as [Record<string, unknown[]> | null];
      return active?.[hostname]?.length === 3;
    });
    const { elapsed, outcomes } = await done;
    expect(outcomes).toEqual([2, 2, 2].map((result) => ({ state: 'SUCCESS', result })));
    expect(elapsed).toBeLessThan(5.5); // one at a time would take 6 s

    const [shrunk] = await control([['control', 'pool_shrink', [], { n: 2 }]]);
    expect(shrunk).toEqual([{ [hostname]: { ok: 'pool will shrink' } }]);
    expect(await poolSize()).toBe(1);
    // Never below one.
    await control([['control', 'pool_shrink', [], { n: 5 }]]);
    expect(await poolSize()).toBe(1);

    const one = runAll([
      ['demo.sleep', [1.5]],
      ['demo.sleep', [1.5]],
    ]);
    await waitFor('one active, one reserved', async () => {
      const [active, reserved] = (await control([
        ['inspect', 'active', [], {}],
        ['inspect', 'reserved', [], {}],
      ])) as [Record<string, unknown[]> | null, Record<string, unknown[]> | null];
      return active?.[hostname]?.length === 1 && reserved?.[hostname]?.length === 1;
    });
    expect((await one).outcomes.every((o) => o.state === 'SUCCESS')).toBe(true);
  });

  it('time_limit sets the limits of later tasks by name; unknown names are refused', async () => {
    const replies = await control([
      ['control', 'time_limit', ['demo.sleep'], { soft: 0.3, hard: 0.5 }],
      ['control', 'time_limit', ['demo.nope'], { soft: 1, hard: 2 }],
    ]);
    expect(replies).toEqual([[{ [hostname]: { ok: 'time limits set successfully' } }], [{ [hostname]: { error: 'unknown task' } }]]);
    // demo.sleep gives up when its signal aborts: the soft limit ends it first, as in Celery.
    expect((await runAll([['demo.sleep', [2]]])).outcomes).toEqual([{ state: 'FAILURE', exc_type: 'SoftTimeLimitExceeded' }]);

    await control([['control', 'time_limit', ['demo.sleep'], { hard: 0.5 }]]);
    const hard = await runAll([['demo.sleep', [2]]]);
    expect(hard.outcomes).toEqual([{ state: 'FAILURE', exc_type: 'TimeLimitExceeded' }]);
    expect(hard.elapsed).toBeLessThan(1.9);

    // No limits again.
    await control([['control', 'time_limit', ['demo.sleep'], {}]]);
    expect((await runAll([['demo.sleep', [0.8]]])).outcomes).toEqual([{ state: 'SUCCESS', result: 0.8 }]);
  });

  it('rate_limit delays tasks over the rate (none dropped or failed) and leaves other tasks alone', async () => {
    const replies = await control([
      ['control', 'rate_limit', ['demo.add', '2/s'], {}],
      ['control', 'rate_limit', ['demo.nope', '2/s'], {}],
      ['control', 'rate_limit', ['demo.add', 'fast'], {}],
    ]);
    expect(replies).toEqual([
      [{ [hostname]: { ok: 'new rate limit set successfully' } }],
      [{ [hostname]: { error: 'unknown task' } }],
      [{ [hostname]: { error: expect.stringContaining('Invalid rate limit string') } }],
    ]);

    const limited = await runAll(Array.from({ length: 6 }, (_, i): [string, unknown[]] => ['demo.add', [i, 1]]));
    expect(limited.outcomes).toEqual([1, 2, 3, 4, 5, 6].map((result) => ({ state: 'SUCCESS', result })));
    // One token at once, then one each 0.5 s: the sixth starts 2.5 s after the first.
    expect(limited.elapsed).toBeGreaterThanOrEqual(2.2);

    // While demo.add tasks wait for tokens, other tasks run at once.
    let mixedDone = false;
    const mixed = runAll(Array.from({ length: 6 }, (_, i): [string, unknown[]] => ['demo.add', [i, 10]])).finally(() => (mixedDone = true));
    const echo = await pyClient<{ result: unknown; state: string }>({ op: 'send', task: 'demo.echo', args: ['hi'], wait: true, timeout: 10 }, { env });
    expect(echo).toMatchObject({ state: 'SUCCESS', result: 'hi' });
    expect(mixedDone).toBe(false);
    expect((await mixed).outcomes.every((o) => o.state === 'SUCCESS')).toBe(true);

    const [off] = await control([['control', 'rate_limit', ['demo.add', null], {}]]);
    expect(off).toEqual([{ [hostname]: { ok: 'rate limit disabled successfully' } }]);
    const free = await runAll(Array.from({ length: 6 }, (_, i): [string, unknown[]] => ['demo.add', [i, 2]]));
    expect(free.outcomes.every((o) => o.state === 'SUCCESS')).toBe(true);
    expect(free.elapsed).toBeLessThan(2);
  });
});

describe('the rate_limit task option (in process)', () => {
  const DB = 18;
  it('spaces the runs of a limited task, never blocks others, and a revoked waiting task is discarded', async () => {
    await flushDb(DB);
    const logs: string[] = [];
    const logger: AppLogger = { info: (m) => logs.push(m), warn: (m) => logs.push(m), error: (m) => logs.push(m), debug: () => undefined };
    const urls = { brokerUrl: testRedisUrl(DB), resultBackend: testRedisUrl(DB) };
    const app = new Celeriac({ ...urls, logger });
    const starts: number[] = [];
    app.task('t.limited', (i: number) => (starts.push(Date.now()), i), { rate_limit: '4/s' });
    app.task('t.free', () => Date.now());
    // prefetch 1 × 1: the tasks waiting for tokens must not hold the only prefetch slot.
    const worker = new Worker(app, { hostname: 'rate@host', queues: ['celery'], concurrency: 1, prefetchMultiplier: 1, accept: ['json'] });
    await worker.start();
    const producer = new Celeriac(urls);
    const results = redisClient(DB);
    try {
      const limited = await Promise.all(Array.from({ length: 6 }, (_, i) => producer.sendTask('t.limited', [i])));
      const doomed = await producer.sendTask('t.limited', [99]);
      const free = await producer.sendTask('t.free');
      const freeAt = (await free.get({ timeout: 10 })) as number;
      worker.revoke([doomed.id]);
      expect(await Promise.all(limited.map((r) => r.get({ timeout: 10 })))).toEqual([0, 1, 2, 3, 4, 5]);
      expect(freeAt).toBeLessThan(starts[5]!);
      for (let i = 1; i < starts.length; i++) expect(starts[i]! - starts[i - 1]!).toBeGreaterThanOrEqual(200);
      const raw = await results.get(`celery-task-meta-${doomed.id}`);
      expect(raw && (JSON.parse(raw) as { status: string }).status).toBe('REVOKED');
      expect(starts).toHaveLength(6);
    } finally {
      await worker.shutdown('warm');
      await worker.close();
      await producer.close();
      await results.quit();
    }
  });
});
