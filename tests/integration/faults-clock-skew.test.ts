// Fault suite: producers whose clocks are wrong by 30 s, on Redis and on RabbitMQ side by side.
// A Celery message carries absolute times (eta, expires) computed on the producer's clock, and
// Celery 5.7's worker has no skew handling for them (celery/worker/strategy.py converts the eta
// to a timestamp and calls it at that time; the only drift check is for event heartbeats). Celeriac
// does the same, which is what the README documents ("Clocks"):
//   producer 30 s ahead, countdown c:  eta = now + 30 + c, held (unacked, prefetch raised) and run
//                                      at that eta by the worker's clock, never before;
//   producer 30 s behind, countdown c: eta in the past, run at once;
//   producer 30 s behind, expires 10:  already expired on arrival, REVOKED, never run.
// (On RabbitMQ the expired ones still reach the worker: Celery's AMQP expiration is relative, 10 s.)
// Due tasks keep flowing while the early ones are held. Every id is counted through the ledger
// (tests/fixtures/tasks.ts fault.work); the producers are real Python Celery with app.now shifted.
// Redis dbs 119 (broker) and 120 (results and ledger); vhost faults-clock-skew.
import { testRedisUrl } from '../helpers/env';
import { runPyJson } from '../helpers/python';
import { startCeleriacWorker } from '../helpers/celeriacWorker';
import { redisClient, type Redis } from '../helpers/redis';
import { freshVhost } from '../helpers/rabbit';
import { type BrokerHandle, expectCleanLog, Ledger, metas, queueState, tally, waitFor } from '../helpers/faults';

const BROKER_DB = 119;
const RESULTS_DB = 120;
const SKEW_S = 30;
const AHEAD = 10; // tasks from the producer that is ahead
const BEHIND = 10; // countdown tasks from the producer that is behind
const EXPIRED = 4; // expires=10 s from the producer that is behind
const TASK_MS = 200;

let brokerRedis: Redis;
let results: Redis;

beforeAll(async () => {
  [brokerRedis, results] = [redisClient(BROKER_DB), redisClient(RESULTS_DB)];
  await Promise.all([brokerRedis.flushdb(), results.flushdb()]);
});

afterAll(async () => {
  await Promise.all([brokerRedis.quit(), results.quit()]);
});

interface SendSpec {
  countdown?: number;
  expires?: number;
}

/**
 * Real Python Celery whose clock is `skew` seconds off: app.now() (what send_task and as_task_v2
 * compute eta = now + countdown and expires = now + expires with, and the AMQP expiration from)
 * is shifted, nothing else. Returns each task id with time.time() (the true clock) before its send.
 */
async function skewedProducer(env: Record<string, string>, skew: number, specs: SendSpec[]): Promise<{ id: string; t: number }[]> {
  const script = `
import datetime, json, os, time
from pyapp import app
real_now = app.now
app.now = lambda: real_now() + datetime.timedelta(seconds=float(os.environ["SKEW"]))
out = []
with app.producer_or_acquire() as producer:
    for spec in json.loads(os.environ["SPECS"]):
        t = time.time()
        res = app.send_task("fault.work", args=[${TASK_MS}], producer=producer, **spec)
        out.append({"id": res.id, "t": t})
print(json.dumps(out))
`;
  return runPyJson<{ id: string; t: number }[]>(script, { env: { ...env, SKEW: String(skew), SPECS: JSON.stringify(specs) } });
}

interface Sent {
  id: string;
  /** Earliest moment the task may start (s since epoch, our clock), or null: at once. */
  etaS: number | null;
  kind: 'ahead' | 'behind' | 'expired';
}

async function scenario(broker: BrokerHandle, name: string): Promise<void> {
  const ledger = new Ledger(results, name);
  await ledger.clear();
  const worker = await startCeleriacWorker({
    brokerUrl: broker.url,
    backendUrl: testRedisUrl(RESULTS_DB),
    app: 'tests/fixtures/tasks.ts',
    concurrency: 2,
    env: ledger.env(testRedisUrl(RESULTS_DB)),
  });
  try {
    const pyEnv = { BROKER_URL: broker.url, RESULT_BACKEND: testRedisUrl(RESULTS_DB) };
    // countdown 1..3 s (Celery sets no eta at all for countdown 0).
    const countdowns = (n: number): SendSpec[] => Array.from({ length: n }, (_, i) => ({ countdown: 1 + (i % 3) }));
    // Sent in this order, so the held ones are in front of the others in the queue.
    const ahead = await skewedProducer(pyEnv, SKEW_S, countdowns(AHEAD));
    const behind = await skewedProducer(pyEnv, -SKEW_S, [...countdowns(BEHIND), ...Array.from({ length: EXPIRED }, () => ({ expires: 10 }))]);
    const sent: Sent[] = [
      ...ahead.map((r, i) => ({ id: r.id, etaS: r.t + SKEW_S + 1 + (i % 3), kind: 'ahead' as const })),
      ...behind.map((r, i) => ({ id: r.id, etaS: null, kind: i < BEHIND ? ('behind' as const) : ('expired' as const) })),
    ];
    const of = (kind: Sent['kind']): Sent[] => sent.filter((s) => s.kind === kind);

    // Behind: due already, run at once although AHEAD tasks are held (prefetch 2 x 4 = 8 < 10 held).
    await waitFor(async () => (await metas(results, of('behind').map((s) => s.id))).every((m) => m?.status === 'SUCCESS'), 10_000, 'the tasks from the late producer');
    await waitFor(async () => (await metas(results, of('expired').map((s) => s.id))).every((m) => m !== null), 5_000, 'the expired tasks to be discarded');
    const expired = await metas(results, of('expired').map((s) => s.id));
    expect(expired.map((m) => m?.status)).toEqual(of('expired').map(() => 'REVOKED'));
    // Ahead: all held by the worker, none run, none left in the queue.
    expect(await queueState(broker)).toEqual({ ready: 0, unacked: AHEAD });
    expect((await metas(results, of('ahead').map((s) => s.id))).every((m) => m === null)).toBe(true);

    const lastEta = Math.max(...of('ahead').map((s) => s.etaS!));
    await waitFor(async () => (await metas(results, of('ahead').map((s) => s.id))).every((m) => m?.status === 'SUCCESS'), (lastEta - Date.now() / 1000 + 10) * 1000, 'the tasks from the early producer');
    const docs = await metas(results, of('ahead').map((s) => s.id));
    of('ahead').forEach((s, i) => {
      const doneS = Date.parse(docs[i]!.date_done ?? '') / 1000;
      // Never before the eta (run TASK_MS, ms clock rounding aside), and not long after it.
      expect(doneS).toBeGreaterThanOrEqual(s.etaS! + TASK_MS / 1000 - 0.05);
      expect(doneS).toBeLessThan(s.etaS! + 5);
    });
    await waitFor(async () => (await queueState(broker)).unacked === 0, 5_000, 'every message acked');

    const t = tally(sent.map((s) => s.id), await ledger.entries());
    expect(t.strangers).toEqual([]);
    expect(t.duplicated).toEqual([]);
    expect(t.missing.sort()).toEqual(of('expired').map((s) => s.id).sort());
    for (const s of of('expired')) expect(t.byId.get(s.id)!.starts).toBe(0);
  } finally {
    await worker.stop();
  }
  expectCleanLog(worker.output());
}

it('ETA from a producer 30 s ahead runs at that eta (held meanwhile); 30 s behind runs at once, or is expired', async () => {
  const vhost = 'faults-clock-skew';
  // The 30 s wait dominates: both brokers at once.
  const outcomes = await Promise.allSettled([
    scenario({ kind: 'redis', url: testRedisUrl(BROKER_DB), client: brokerRedis }, 'skew-redis'),
    scenario({ kind: 'amqp', url: await freshVhost(vhost), vhost }, 'skew-amqp'),
  ]);
  // Both run to the end either way (no worker left behind); then the first failure, named.
  outcomes.forEach((o, i) => {
    if (o.status === 'rejected') throw new Error(`${i === 0 ? 'Redis' : 'RabbitMQ'}: ${(o.reason as Error).message}`, { cause: o.reason });
  });
}, 90_000);
