// --autoscale on a real worker (processes pool, Redis dbs 106-107), watched and steered with real
// Python Celery's inspect/control: it grows towards max under a backlog within about a second,
// shrinks to min after the keepalive (2 s here), and the autoscale command changes the range live.
import os from 'node:os';
import { testRedisUrl } from '../helpers/env';
import { startCeleriacWorker } from '../helpers/celeriacWorker';
import type { ProcessHandle } from '../helpers/processes';
import { flushDb } from '../helpers/redis';
import { pyControl, runAll, waitFor } from '../helpers/control';

interface Stats {
  pool: { 'max-concurrency': number; processes: number[] };
  autoscaler: { max: number; min: number; current: number; qty: number };
  prefetch_count: number;
}

const hostname = `autoscale-${process.pid}@${os.hostname()}`;
const env = { BROKER_URL: testRedisUrl(106), RESULT_BACKEND: testRedisUrl(107) };
let worker: ProcessHandle;

async function stats(): Promise<Stats> {
  const [reply] = (await pyControl(env, [['inspect', 'stats', [], {}]], { destination: [hostname] })) as Record<string, Stats>[];
  return reply![hostname]!;
}

beforeAll(async () => {
  await flushDb(106);
  await flushDb(107);
  worker = await startCeleriacWorker({
    brokerUrl: env.BROKER_URL,
    backendUrl: env.RESULT_BACKEND,
    hostname,
    extraArgs: ['-P', 'processes', '--autoscale', '4,1', '--prefetch-multiplier', '4'],
    env: { CELERIAC_AUTOSCALE_KEEPALIVE: '2' },
  });
  await pyControl(env, [], { waitFor: [hostname] });
}, 60_000);

afterAll(async () => {
  await worker?.stop();
});

it('starts at min, grows to max under a backlog, shrinks back to min when idle', async () => {
  const before = await stats();
  expect(before.autoscaler).toMatchObject({ max: 4, min: 1, current: 1 });
  expect(before.pool['max-concurrency']).toBe(1);
  expect(before.pool.processes).toHaveLength(1);
  expect(before.prefetch_count).toBe(4);

  // Eight 2-second tasks: one slot would need 16 s, four need about 4 s.
  const run = runAll(env, Array.from({ length: 8 }, () => ['demo.sleep', [2]] as [string, unknown[]]));
  await waitFor('the pool to grow to 4', async () => (await stats()).autoscaler.current === 4, 8_000);
  const grown = await stats();
  expect(grown.pool['max-concurrency']).toBe(4);
  expect(grown.pool.processes).toHaveLength(4);
  expect(grown.prefetch_count).toBe(16); // prefetch follows the pool size
  const { elapsed, outcomes } = await run;
  expect(outcomes.every((o) => o.state === 'SUCCESS')).toBe(true);
  expect(elapsed).toBeLessThan(12);

  await waitFor('the pool to shrink to 1', async () => (await stats()).autoscaler.current === 1, 15_000);
  const shrunk = await stats();
  expect(shrunk.pool['max-concurrency']).toBe(1);
  await waitFor('retired children to leave', async () => (await stats()).pool.processes.length === 1, 10_000);
  await worker.waitForOutput(/autoscaler: Scaling down \d processes\./);
}, 60_000);

it('the autoscale command changes the range live; pool_grow is refused as Celery refuses it', async () => {
  const [scaled, grow] = (await pyControl(env, [
    ['control', 'autoscale', [6, 2], {}],
    ['control', 'pool_grow', [1], {}],
  ], { destination: [hostname] })) as Record<string, unknown>[][];
  expect(scaled).toEqual([{ [hostname]: { ok: 'autoscale now max=6 min=2' } }]);
  expect(grow).toEqual([{ [hostname]: { error: 'pool_grow is not supported with autoscale. Adjust autoscale range instead.' } }]);
  const after = await stats();
  expect(after.autoscaler).toMatchObject({ max: 6, min: 2, current: 2 });
  expect(after.pool['max-concurrency']).toBe(2);
}, 30_000);
