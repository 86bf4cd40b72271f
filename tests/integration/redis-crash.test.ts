// kill -9 of a worker holding acks_late messages: a second worker (short visibility_timeout)
// restores and finishes all of them; none is lost. Redis dbs 40-42.
import { testRedisUrl } from '../helpers/env';
import { pyClient } from '../helpers/python';
import { startCeleriacWorker } from '../helpers/celeriacWorker';
import { flushDb, redisClient, type Redis } from '../helpers/redis';

const BROKER = 40;
const RESULTS = 41;
const LEDGER = 42;
const N = 40;

const pyEnv = { BROKER_URL: testRedisUrl(BROKER), RESULT_BACKEND: testRedisUrl(RESULTS) };
const workerEnv = {
  CELERIAC_TEST_LEDGER_URL: testRedisUrl(LEDGER),
  CELERIAC_VISIBILITY_TIMEOUT: '2',
  CELERIAC_UNACKED_RESTORE_INTERVAL: '1',
};

let broker: Redis;
let results: Redis;
let ledger: Redis;

beforeAll(async () => {
  await Promise.all([flushDb(BROKER), flushDb(RESULTS), flushDb(LEDGER)]);
  [broker, results, ledger] = [redisClient(BROKER), redisClient(RESULTS), redisClient(LEDGER)];
});

afterAll(async () => {
  await Promise.all([broker.quit(), results.quit(), ledger.quit()]);
});

async function waitFor(cond: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

it('restores every message held by a killed worker and finishes them all', async () => {
  const common = { brokerUrl: testRedisUrl(BROKER), backendUrl: testRedisUrl(RESULTS), app: 'tests/fixtures/tasks.ts', env: workerEnv };
  const first = await startCeleriacWorker({ ...common, concurrency: 4 });
  const { ids } = await pyClient<{ ids: string[] }>(
    { op: 'send_many', task: 'test.slow_late', args: ['t', 1500], count: N },
    { env: pyEnv },
  );
  expect(ids).toHaveLength(N);

  // 4 running + 12 reserved (prefetch 4 x 4): all unacked, then the worker dies without a word.
  await waitFor(async () => (await broker.hlen('unacked')) >= 16, 10_000, 'the first worker to hold 16 messages');
  first.kill('SIGKILL');
  await first.exited;
  const heldByDead = await broker.hlen('unacked');
  expect(heldByDead).toBeGreaterThanOrEqual(16);

  const second = await startCeleriacWorker({ ...common, concurrency: 20 });
  await waitFor(async () => (await results.dbsize()) >= N, 40_000, 'all results');
  const metas = await Promise.all(ids.map(async (id) => JSON.parse((await results.get(`celery-task-meta-${id}`)) ?? '{}') as { status?: string }));
  expect(metas.filter((m) => m.status === 'SUCCESS')).toHaveLength(N);

  // Every task ran at least once; only the dead worker's in-flight ones may have run twice.
  const runs = await ledger.lrange('ledger', 0, -1);
  expect(runs.length).toBeGreaterThanOrEqual(N);
  expect(runs.length).toBeLessThanOrEqual(N + 4);
  await waitFor(async () => (await broker.hlen('unacked')) === 0, 5_000, 'unacked to drain');
  expect(await broker.llen('celery')).toBe(0);
  expect(second.output()).toMatch(/restored \d+ unacked message/);
  await second.stop();
});
