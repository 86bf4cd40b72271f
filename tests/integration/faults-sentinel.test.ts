// Fault suite, Redis Sentinel: a master, a replica and three Sentinels of this file's own
// (tests/helpers/sentinel.ts). Python Celery publishes 2,000 acks_late tasks on the sentinel://
// URL; a Celeriac worker on the same URL (broker and result backend) is running them when the
// master is killed (SIGKILL). Sentinel promotes the replica; the worker follows by itself and
// every task ends SUCCESS, none lost. Tasks run twice only within the README's bound (the
// messages the worker held at the switch, at most its prefetch). Afterwards Python reads every
// state through its own SentinelBackend, `inspect ping` reaches the worker over the new master and
// a Python event receiver there sees its heartbeats.
// Ledger (every run of every task id): a private redis-server, untouched by the failover.
import { startCeleriacWorker } from '../helpers/celeriacWorker';
import { startPrivateRedis, type PrivateRedis } from '../helpers/privateRedis';
import { startSentinelTopology, type SentinelTopology } from '../helpers/sentinel';
import { runPyJson } from '../helpers/python';
import { expectHeartbeat } from '../helpers/eventsReceiver';
import { expectCleanLog, Ledger, statuses, tally, waitFor } from '../helpers/faults';
import Redis from 'ioredis';

const N = 2_000;
const CONCURRENCY = 10;
const PREFETCH = CONCURRENCY * 4;
const TASK_MS = 40;

let topo: SentinelTopology;
let ledgerRedis: PrivateRedis;
let ledgerClient: Redis;

beforeAll(async () => {
  [topo, ledgerRedis] = await Promise.all([startSentinelTopology('faults-sentinel'), startPrivateRedis('faults-sentinel-ledger')]);
  ledgerClient = new Redis(ledgerRedis.url(0));
}, 60_000);

afterAll(async () => {
  ledgerClient?.disconnect();
  await Promise.all([topo?.stop(), ledgerRedis?.stop()]);
});

/** Python Celery on the sentinel:// URLs with kombu's and Celery's transport options. */
function py(script: string, env: Record<string, string> = {}): Promise<unknown> {
  const setup = `
import json, os
from celery import Celery
opts = json.loads(os.environ['SENTINEL_OPTS'])
app = Celery(broker=os.environ['BROKER'], backend=os.environ['BACKEND'])
app.conf.broker_transport_options = opts
app.conf.result_backend_transport_options = opts
`;
  return runPyJson(setup + script, {
    env: { BROKER: topo.url(0), BACKEND: topo.url(1), SENTINEL_OPTS: JSON.stringify(topo.transportOptions), ...env },
    timeoutMs: 60_000,
  });
}

it('kill the master mid-run: Sentinel promotes the replica, the worker follows, all 2,000 acks_late tasks end SUCCESS', async () => {
  const ledger = new Ledger(ledgerClient, 'sentinel');
  // All 2,000 queued first (Python on the sentinel:// URL), then the worker starts on them.
  const ids = (await py(`
with app.producer_or_acquire() as producer:
  ids = [app.send_task('fault.work_late', args=[${TASK_MS}], producer=producer).id for _ in range(${N})]
print(json.dumps(ids))
`)) as string[];
  expect(ids).toHaveLength(N);
  const worker = await startCeleriacWorker({
    brokerUrl: topo.url(0),
    backendUrl: topo.url(1),
    app: 'tests/fixtures/tasks.ts',
    concurrency: CONCURRENCY,
    hostname: 'sentinel-ha@%h',
    env: {
      ...ledger.env(ledgerRedis.url(0)),
      CELERIAC_MASTER_NAME: topo.masterName,
      CELERIAC_SENTINEL_KWARGS: JSON.stringify(topo.transportOptions.sentinel_kwargs),
      CELERIAC_RESULT_BACKEND_TRANSPORT_OPTIONS: JSON.stringify(topo.transportOptions),
      // An ack the old master confirmed but never shipped to the replica leaves the message in
      // `unacked` on the new one: restored (and run again) after this long.
      CELERIAC_VISIBILITY_TIMEOUT: '10',
      CELERIAC_UNACKED_RESTORE_INTERVAL: '1',
    },
  });
  try {
    await waitFor(async () => (await ledger.count('done')) >= N / 10, 60_000, `${N / 10} tasks done`);
    // No WAIT before the kill: the worker's last claims, acks and results may not have reached
    // the replica (asynchronous replication), which is what the README's bound is about. The
    // producer's messages went out seconds earlier and are there.
    const doneAtKill = await ledger.count('done');
    const newMasterPort = await topo.killMaster();
    expect(doneAtKill).toBeLessThan(N - 1_000); // mid-run for real

    const newMaster = topo.client(newMasterPort);
    await waitFor(async () => (await ledgerClient.llen('sentinel')) >= 2 * N && tally(ids, await ledger.entries()).missing.length === 0, 120_000, `all ${N} tasks done`);
    // Drained: nothing waiting, nothing unacked left to restore (no run still to come).
    await waitFor(async () => (await newMaster.llen('celery')) === 0 && (await newMaster.hlen('unacked')) === 0, 60_000, 'queue and unacked to drain on the new master');
    const results = topo.client(newMasterPort, 1);
    expect(await statuses(results, ids)).toEqual(ids.map(() => 'SUCCESS'));

    const t = tally(ids, await ledger.entries());
    expect(t.missing).toEqual([]);
    expect(t.strangers).toEqual([]);
    expect(t.duplicated.length).toBeLessThanOrEqual(PREFETCH);
    process.stdout.write(`sentinel failover: ${t.duplicated.length} of ${N} tasks ran twice (bound ${PREFETCH}); ${doneAtKill} done at the kill\n`);

    // Python reads the results through its SentinelBackend, and reaches the worker's mailbox
    // (pidbox over Redis pub/sub) on the new master.
    const seen = (await py(`
ids = json.loads(os.environ['IDS'])
states = [app.AsyncResult(i).state for i in ids]
pong = app.control.inspect(timeout=3).ping() or {}
stats = app.control.inspect(timeout=3).stats() or {}
broker = next((s['broker'] for n, s in stats.items() if n.startswith('sentinel-ha@')), None)
print(json.dumps({'success': states.count('SUCCESS'), 'pong': sorted(pong), 'broker': broker}))
`,
      { IDS: JSON.stringify(ids) },
    )) as { success: number; pong: string[]; broker: { transport: string; alternates: string[] } | null };
    expect(seen.success).toBe(N);
    expect(seen.pong.some((n) => n.startsWith('sentinel-ha@'))).toBe(true);
    // inspect stats: kombu's broker info, the Sentinel list as alternates with the password masked.
    expect(seen.broker?.transport).toBe('sentinel');
    expect(seen.broker?.alternates).toEqual(topo.url(0).split(';').map((u) => u.replace(`:${topo.password}@`, ':**@')));
    // Events too: a Python receiver subscribed on the new master sees the worker's heartbeats.
    await expectHeartbeat(topo.url(0), 'sentinel-ha@', { BROKER_TRANSPORT_OPTIONS: JSON.stringify(topo.transportOptions) });

    const out = worker.output();
    expect(out).toMatch(/broker sentinel:.*connection lost/);
    expect(out).toMatch(/broker sentinel:.*reconnected/);
    expect(out).not.toMatch(/data-pw|sentinel-pw/); // passwords masked in every line
    expectCleanLog(out);
  } finally {
    expect(await worker.stop()).toEqual({ code: 0, signal: null });
  }
}, 240_000);
