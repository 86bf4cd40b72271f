// Fault suite: the result backend (Redis, a redis-server of this file's own) is unreachable for
// 10 s while the broker (RabbitMQ) is fine. Tasks keep running meanwhile (their results wait in
// the worker and are written with backoff once Redis is back: workers/backends/redis/pendingWrites.ts),
// the worker stays responsive (remote control answers), and afterwards every task id has run
// once and has its SUCCESS result. Vhost faults-backend-outage; Redis db 122 (ledger); the
// results live in the private server's db 0.
import os from 'node:os';
import Redis from 'ioredis';
import { testRedisUrl } from '../helpers/env';
import { startCeleriacWorker } from '../helpers/celeriacWorker';
import { redisClient } from '../helpers/redis';
import { freshVhost } from '../helpers/rabbit';
import { pyControl } from '../helpers/control';
import { startPrivateRedis, type PrivateRedis } from '../helpers/privateRedis';
import { expectCleanLog, Ledger, queueState, sendTasks, sleep, statuses, tally, waitFor } from '../helpers/faults';

const LEDGER_DB = 122;
const CONCURRENCY = 4;
const OUTAGE_MS = 10_000;

let ledgerClient: Redis;
let resultsServer: PrivateRedis;

beforeAll(async () => {
  ledgerClient = redisClient(LEDGER_DB);
  await ledgerClient.flushdb();
  resultsServer = await startPrivateRedis('faults-backend-outage');
});

afterAll(async () => {
  await ledgerClient.quit();
  await resultsServer?.stop();
});

it('Redis results down for 10 s (broker RabbitMQ): tasks keep running, results are written once it is back', async () => {
  const vhost = 'faults-backend-outage';
  const brokerUrl = await freshVhost(vhost);
  const ledger = new Ledger(ledgerClient, 'backend-outage');
  const hostname = `backend-outage-${process.pid}@${os.hostname()}`;
  const worker = await startCeleriacWorker({
    brokerUrl,
    backendUrl: resultsServer.url(0),
    hostname,
    app: 'tests/fixtures/tasks.ts',
    concurrency: CONCURRENCY,
    env: ledger.env(testRedisUrl(LEDGER_DB)),
  });
  const results = new Redis(resultsServer.url(0));
  let exit: Awaited<typeof worker.exited>;
  try {
    const kinds = (i: number): string => (i % 2 ? 'fault.work' : 'fault.work_late');
    const before = await sendTasks(brokerUrl, kinds, Array.from({ length: 20 }, () => [50]));
    await waitFor(async () => (await statuses(results, before)).every((s) => s === 'SUCCESS'), 15_000, 'results before the outage');

    await resultsServer.stop();
    const stoppedAt = Date.now();
    await worker.waitForOutput(/result backend redis:.*connection lost/);
    const during = await sendTasks(brokerUrl, kinds, Array.from({ length: 60 }, () => [50]));
    // 60 x 50 ms at -c 4 is < 1 s of work: with result writes holding the slots, only the first
    // 4 would run before Redis is back.
    await waitFor(async () => tally(during, await ledger.entries()).missing.length === 0, OUTAGE_MS - 2_000, 'tasks to run while the results are unreachable');
    // Not wedged: the worker answers remote control while its results wait.
    const [pong] = (await pyControl({ BROKER_URL: brokerUrl, RESULT_BACKEND: '' }, [['inspect', 'ping', [], {}]], { destination: [hostname], timeout: 3 })) as Record<string, unknown>[];
    expect(pong).toEqual({ [hostname]: { ok: 'pong' } });
    // Their results are not lost either: none is in Redis yet, they wait in the worker.
    expect(worker.output()).toMatch(/result backend unreachable: result writes waiting in memory, retried with backoff/);
    await sleep(Math.max(0, stoppedAt + OUTAGE_MS - Date.now()));
    await resultsServer.start();

    await waitFor(async () => (await statuses(results, during)).every((s) => s === 'SUCCESS'), 20_000, 'every result written after the outage');
    const after = await sendTasks(brokerUrl, kinds, Array.from({ length: 20 }, () => [50]));
    await waitFor(async () => (await statuses(results, after)).every((s) => s === 'SUCCESS'), 15_000, 'results after the outage');
    await waitFor(async () => (await queueState({ kind: 'amqp', url: brokerUrl, vhost })).unacked === 0, 10_000, 'every message acked');

    const ids = [...before, ...during, ...after];
    const t = tally(ids, await ledger.entries());
    expect(t.missing).toEqual([]);
    expect(t.duplicated).toEqual([]);
    expect(t.strangers).toEqual([]);
  } finally {
    results.disconnect();
    exit = await worker.stop();
  }
  expect(exit).toEqual({ code: 0, signal: null });
  const out = worker.output();
  expect(out).toMatch(/result backend answers again: \d+ waiting result write\(s\) done/);
  expect(out.split('\n').filter((l) => /result backend redis:.*reconnected/.test(l))).toHaveLength(1);
  expect(out).not.toMatch(/could not be completed/);
  expectCleanLog(out);
}, 90_000);
