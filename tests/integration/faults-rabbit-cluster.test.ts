// Fault suite, RabbitMQ cluster: three nodes of this file's own (tests/helpers/rabbitCluster.ts;
// three because a quorum queue needs a majority of its members) and a worker on Celery's
// failover list `amqp://n1//;amqp://n2//;amqp://n3//`, consuming the quorum queue `celery`.
// 2,000 acks_late tasks flow; the node the worker is connected to is stopped (stop_app) mid-run.
// The worker moves to the next node, re-declares, resumes; every task id ends SUCCESS, tasks run
// twice only within the README's bound (the prefetch), and Flower (kombu on the same list, failing
// over itself) shows the worker from its events and its inspect replies on its new node.
// Results and the ledger: a private redis-server.
import Redis from 'ioredis';
import { startCeleriacWorker } from '../helpers/celeriacWorker';
import { startPrivateRedis, type PrivateRedis } from '../helpers/privateRedis';
import { startRabbitCluster, type RabbitCluster } from '../helpers/rabbitCluster';
import { startFlower, waitFor as flowerWaitFor } from '../helpers/flower';
import { expectCleanLog, Ledger, sendTasks, statuses, tally, waitFor } from '../helpers/faults';

const N = 2_000;
const CONCURRENCY = 10;
const PREFETCH = CONCURRENCY * 4;
const TASK_MS = 60;

let cluster: RabbitCluster;
let redis: PrivateRedis;
let ledgerClient: Redis;
let results: Redis;

beforeAll(async () => {
  [cluster, redis] = await Promise.all([startRabbitCluster('faults-rabbit-cluster'), startPrivateRedis('faults-rabbit-cluster-redis')]);
  ledgerClient = new Redis(redis.url(0));
  results = new Redis(redis.url(1));
}, 240_000);

afterAll(async () => {
  ledgerClient?.disconnect();
  results?.disconnect();
  await Promise.all([cluster?.stop(), redis?.stop()]);
}, 60_000);

it("stop the worker's node mid-run: it fails over to the next node of the list, every acks_late task on the quorum queue ends SUCCESS", async () => {
  const ledger = new Ledger(ledgerClient, 'cluster');
  const worker = await startCeleriacWorker({
    brokerUrl: cluster.url(),
    backendUrl: redis.url(1),
    app: 'tests/fixtures/tasks.ts',
    concurrency: CONCURRENCY,
    hostname: 'cluster-ha@%h',
    env: { ...ledger.env(redis.url(0)), CELERIAC_CREATE_MISSING_QUEUE_TYPE: 'quorum' },
  });
  try {
    // Declared by the worker through node 1: a quorum queue with a member on every node.
    const [celery] = (await cluster.queues(1)).filter((q) => q.name === 'celery');
    expect(celery?.type).toBe('quorum');
    expect(celery?.members).toHaveLength(3);
    const ids = await sendTasks(cluster.url(), 'fault.work_late', Array.from({ length: N }, () => [TASK_MS]));
    await waitFor(async () => (await ledger.count('done')) >= N / 10, 60_000, `${N / 10} tasks done`);
    await cluster.stopApp(0); // the worker's node: first of the list
    const doneAtStop = await ledger.count('done');
    expect(doneAtStop).toBeLessThan(N - 500); // mid-run for real

    await waitFor(async () => (await ledgerClient.llen('cluster')) >= 2 * N && tally(ids, await ledger.entries()).missing.length === 0, 180_000, `all ${N} tasks done`);
    await waitFor(async () => {
      const q = (await cluster.queues(1)).find((x) => x.name === 'celery');
      return q !== undefined && q.messages_ready === 0 && q.messages_unacknowledged === 0;
    }, 60_000, 'the quorum queue to drain');
    expect(await statuses(results, ids)).toEqual(ids.map(() => 'SUCCESS'));

    const t = tally(ids, await ledger.entries());
    expect(t.missing).toEqual([]);
    expect(t.strangers).toEqual([]);
    expect(t.duplicated.length).toBeLessThanOrEqual(PREFETCH);
    process.stdout.write(`rabbit cluster failover: ${t.duplicated.length} of ${N} tasks ran twice (bound ${PREFETCH}); ${doneAtStop} done at the stop\n`);

    // Flower on the same failover list (kombu skips the stopped node by itself): its workers page
    // is built from the worker's events (online) and from inspect broadcasts (refresh=1), both of
    // which reach the worker on its new node.
    const flower = await startFlower({ brokerUrl: cluster.url() });
    try {
      const name = await flowerWaitFor('the worker online in Flower', async () =>
        Object.entries(await flower.get<Record<string, boolean>>('/api/workers?status=1')).find(([n, online]) => n.startsWith('cluster-ha@') && online)?.[0],
      );
      const info = await flowerWaitFor('inspect replies in Flower', async () => {
        const w = (await flower.get<Record<string, { stats?: { broker?: Record<string, unknown> }; active_queues?: { name: string }[] }>>(`/api/workers?refresh=1&workername=${name}`))[name];
        return w?.stats?.broker && w.active_queues ? w : undefined;
      });
      // stats.broker as kombu reports it after a failover: the node connected to now (Flower drops
      // `alternates`, which Celery sends unmasked; Celeriac masks them).
      expect(info.stats!.broker).toMatchObject({ transport: 'amqp', hostname: '127.0.0.1', failover_strategy: 'round-robin' });
      expect([cluster.nodes[1]!.port, cluster.nodes[2]!.port]).toContain(info.stats!.broker!.port);
      expect(info.active_queues!.map((q) => q.name)).toEqual(['celery']);
    } finally {
      await flower.process.stop();
    }

    const out = worker.output();
    expect(out).toMatch(new RegExp(`amqp amqp://guest:\\*\\*@127.0.0.1:${cluster.nodes[0]!.port}//: connection lost`));
    expect(out).toMatch(new RegExp(`amqp amqp://guest:\\*\\*@127.0.0.1:(${cluster.nodes[1]!.port}|${cluster.nodes[2]!.port})//: reconnected \\(failover from`));
    expectCleanLog(out);
  } finally {
    expect(await worker.stop()).toEqual({ code: 0, signal: null });
  }
}, 300_000);
