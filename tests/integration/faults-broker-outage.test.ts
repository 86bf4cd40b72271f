// Fault suite: the broker goes away for 10 s in the middle of a run and comes back (same port,
// same data), on Redis and on RabbitMQ. Thousands of tasks are flowing (half acks_late); the
// worker notices once, reconnects by itself, and every task id finishes (ledger of
// tests/fixtures/tasks.ts fault.*). A task may finish twice only when its ack was lost with the
// connection (never more than the prefetch count).
// Redis: a redis-server of this file's own, stopped with SHUTDOWN SAVE (a Redis with persistence
// restarting) and started again on the same port. RabbitMQ: the run's node, rabbitmqctl
// stop_app / start_app (files run one at a time, see jest.config.js maxWorkers). Also here: a
// SIGTERM while Redis is down still ends the worker (warm shutdown does not wait for Redis).
// Redis db 121 (results and ledger; the Redis broker is the private server's db 0); vhost
// faults-outage.
import Redis from 'ioredis';
import { testRedisUrl } from '../helpers/env';
import { startCeleriacWorker } from '../helpers/celeriacWorker';
import { redisClient } from '../helpers/redis';
import { freshVhost, startBroker, stopBroker, brokerStopped } from '../helpers/rabbit';
import { startPrivateRedis, type PrivateRedis } from '../helpers/privateRedis';
import type { ProcessHandle } from '../helpers/processes';
import { type BrokerHandle, expectCleanLog, Ledger, queueState, sendTasks, sleep, statuses, tally, waitFor } from '../helpers/faults';

const RESULTS_DB = 121;
const N = 2_000;
const CONCURRENCY = 8;
const OUTAGE_MS = 10_000;

let results: Redis;
let privateRedis: PrivateRedis;
let privateBroker: Redis;

beforeAll(async () => {
  results = redisClient(RESULTS_DB);
  await results.flushdb();
  privateRedis = await startPrivateRedis('faults-broker-outage');
  // Reconnects by itself after the outage (ioredis defaults); only asked while the server is up.
  privateBroker = new Redis(privateRedis.url(0));
});

afterAll(async () => {
  if (brokerStopped()) await startBroker();
  await privateBroker.quit().catch(() => privateBroker.disconnect());
  await results.quit();
  await privateRedis?.stop();
});

const countMatches = (text: string, re: RegExp): number => text.split('\n').filter((l) => re.test(l)).length;

/**
 * N tasks (alternately fault.work and fault.work_late, 20 ms each) flow through a worker at
 * -c 8; the broker is down for 10 s once a sixth of them are done. Returns what the test checks.
 */
async function runThroughOutage(
  broker: BrokerHandle,
  name: string,
  outage: { stop(): Promise<void>; start(): Promise<void> },
  workerEnv: Record<string, string> = {},
): Promise<{ worker: ProcessHandle; ids: string[]; ledger: Ledger; doneAtStop: number; doneAtStart: number }> {
  const ledger = new Ledger(results, name);
  await ledger.clear();
  const worker = await startCeleriacWorker({
    brokerUrl: broker.url,
    backendUrl: testRedisUrl(RESULTS_DB),
    app: 'tests/fixtures/tasks.ts',
    concurrency: CONCURRENCY,
    env: { ...ledger.env(testRedisUrl(RESULTS_DB)), ...workerEnv },
  });
  const ids = await sendTasks(broker.url, (i) => (i % 2 ? 'fault.work' : 'fault.work_late'), Array.from({ length: N }, () => [20]));
  await waitFor(async () => (await ledger.count('done')) >= N / 6, 30_000, `${N / 6} tasks done`);
  await outage.stop();
  const doneAtStop = await ledger.count('done');
  await sleep(OUTAGE_MS);
  const doneAtStart = await ledger.count('done');
  await outage.start();
  // LLEN first: parsing thousands of entries on every poll would slow the run it watches.
  const allDone = async (): Promise<boolean> => (await results.llen(name)) >= 2 * N && tally(ids, await ledger.entries()).missing.length === 0;
  await waitFor(allDone, 60_000, `all ${N} tasks done`);
  return { worker, ids, ledger, doneAtStop, doneAtStart };
}

function expectAccounted(ids: string[], t: ReturnType<typeof tally>, doneAtStop: number, doneAtStart: number): void {
  expect(t.missing).toEqual([]);
  expect(t.strangers).toEqual([]);
  // Mid-run for real: thousands still to do when the broker left, and nothing could be fetched
  // while it was gone (the tasks already held ran out long before the 10 s were over).
  expect(doneAtStop).toBeLessThan(ids.length - 1_000);
  expect(doneAtStart - doneAtStop).toBeLessThanOrEqual(CONCURRENCY * 4 + CONCURRENCY);
  // Run twice: only a message whose ack was lost with the connection (acked after it finished, or
  // early-acked and run before the worker saw the connection drop) and redelivered. Those are
  // among the messages unacknowledged at that moment: never more than the prefetch (-c x 4).
  expect(t.duplicated.length).toBeLessThanOrEqual(CONCURRENCY * 4);
}

/** The Redis or the RabbitMQ run, with everything it asserts. */
async function outageOn(kind: 'redis' | 'amqp'): Promise<void> {
  const vhost = 'faults-outage';
  const broker: BrokerHandle =
    kind === 'redis' ? { kind, url: privateRedis.url(0), client: privateBroker } : { kind, url: await freshVhost(vhost), vhost };
  const run =
    kind === 'redis'
      ? // visibility_timeout 5 s: a claim whose reply was lost with the connection is restored soon.
        await runThroughOutage(broker, 'outage-redis', privateRedis, { CELERIAC_VISIBILITY_TIMEOUT: '5', CELERIAC_UNACKED_RESTORE_INTERVAL: '1' })
      : await runThroughOutage(broker, 'outage-amqp', { stop: stopBroker, start: startBroker });
  const { worker, ids } = run;
  try {
    await waitFor(async () => {
      const q = await queueState(broker);
      return q.ready === 0 && q.unacked === 0;
    }, 15_000, 'queue and unacked to drain');
    expect(await statuses(results, ids)).toEqual(ids.map(() => 'SUCCESS'));
  } finally {
    expect(await worker.stop()).toEqual({ code: 0, signal: null });
  }
  expectAccounted(ids, tally(ids, await run.ledger.entries()), run.doneAtStop, run.doneAtStart);
  const out = worker.output();
  // Told once, recovered once: no reconnect storm in the log, however long the retries took.
  const label = kind === 'redis' ? 'broker redis:' : 'amqp ';
  expect(countMatches(out, new RegExp(`${label}.*connection lost`))).toBe(1);
  expect(countMatches(out, new RegExp(`${label}.*reconnected`))).toBe(1);
  expect(countMatches(out, /cannot connect/)).toBeLessThanOrEqual(1);
  expectCleanLog(out);
}

it('Redis (a private redis-server) and RabbitMQ (stop_app) each down 10 s mid-run: the workers reconnect, every task finishes', async () => {
  // Side by side: the two 10 s outages (and RabbitMQ's reconnect backoff) overlap.
  const outcomes = await Promise.allSettled([outageOn('redis'), outageOn('amqp')]);
  outcomes.forEach((o, i) => {
    if (o.status === 'rejected') throw new Error(`${i === 0 ? 'Redis' : 'RabbitMQ'}: ${(o.reason as Error).message}`, { cause: o.reason });
  });
}, 120_000);

it('a SIGTERM while Redis is down still ends the worker within seconds (exit 0)', async () => {
  const worker = await startCeleriacWorker({ brokerUrl: privateRedis.url(1), backendUrl: privateRedis.url(2) });
  await privateRedis.stop();
  try {
    await worker.waitForOutput(/connection lost/);
    const t0 = Date.now();
    worker.kill('SIGTERM');
    const exit = await Promise.race([worker.exited, new Promise<null>((r) => setTimeout(() => r(null), 20_000).unref())]);
    expect(exit).toEqual({ code: 0, signal: null });
    expect(Date.now() - t0).toBeLessThan(20_000);
    expect(worker.output()).toMatch(/Warm shutdown/);
  } finally {
    await privateRedis.start();
  }
}, 60_000);
