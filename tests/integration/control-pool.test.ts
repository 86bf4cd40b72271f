// The control commands that tune a running Celeriac worker, sent by real Python Celery's
// app.control: pool_grow / pool_shrink, time_limit and rate_limit, on Redis (dbs 16-17) and on
// RabbitMQ (vhost control-pool, results in Redis db 19); and the rate_limit task option on an
// in-process worker (db 18).
import os from 'node:os';
import { Celeriac, type AppLogger } from '../../workers/app/app';
import { Worker } from '../../workers/worker/worker';
import { testRedisUrl } from '../helpers/env';
import { pyClient } from '../helpers/python';
import { startCeleriacWorker } from '../helpers/celeriacWorker';
import type { ProcessHandle } from '../helpers/processes';
import { flushDb, redisClient } from '../helpers/redis';
import { freshVhost } from '../helpers/rabbit';
import { pyControl, runAll as pyRunAll, waitFor, type ControlCall, type Outcome } from '../helpers/control';

/** Each broker: Python's BROKER_URL / RESULT_BACKEND for the worker and the callers. */
const BROKERS: { broker: string; env: () => Promise<Record<string, string>> }[] = [
  {
    broker: 'Redis',
    env: async () => {
      await flushDb(16);
      await flushDb(17);
      return { BROKER_URL: testRedisUrl(16), RESULT_BACKEND: testRedisUrl(17) };
    },
  },
  {
    broker: 'RabbitMQ',
    env: async () => {
      await flushDb(19);
      return { BROKER_URL: await freshVhost('control-pool'), RESULT_BACKEND: testRedisUrl(19) };
    },
  },
];

describe.each(BROKERS)('tuning a running worker by remote control ($broker)', ({ broker, env: brokerEnv }) => {
  const hostname = `ctl-pool-${broker.toLowerCase()}-${process.pid}@${os.hostname()}`;
  let env: Record<string, string>;
  let worker: ProcessHandle;

  const control = (calls: ControlCall[], waitPing = false): Promise<unknown[]> =>
    pyControl(env, calls, { destination: [hostname], ...(waitPing ? { waitFor: [hostname] } : {}) });
  const runAll = (tasks: [string, unknown[]][]): Promise<{ elapsed: number; outcomes: Outcome[] }> => pyRunAll(env, tasks);
  const poolSize = async (): Promise<unknown> => {
    const [stats] = (await control([['inspect', 'stats', [], {}]])) as [Record<string, { pool: Record<string, unknown> }>];
    return stats[hostname]!.pool['max-concurrency'];
  };

  beforeAll(async () => {
    env = await brokerEnv();
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
    // Three active at once (above) is the proof of the grown pool; no duration is asserted.
    const { outcomes } = await done;
    expect(outcomes).toEqual([2, 2, 2].map((result) => ({ state: 'SUCCESS', result })));

    const [shrunk] = await control([['control', 'pool_shrink', [], { n: 2 }]]);
    expect(shrunk).toEqual([{ [hostname]: { ok: 'pool will shrink' } }]);
    expect(await poolSize()).toBe(1);
    // Never below one.
    await control([['control', 'pool_shrink', [], { n: 5 }]]);
    expect(await poolSize()).toBe(1);

    // Sleeps long enough that the one-active-one-reserved window outlasts an inspect round trip
    // on a loaded machine.
    const one = runAll([
      ['demo.sleep', [4]],
      ['demo.sleep', [4]],
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
