// Fault suite: a -P threads / -P processes pool child dies (process.exit, as an OOM kill looks to
// the pool) in the middle of its task while the other children are busy too, on Redis and on
// RabbitMQ. Every task id is accounted for (ledger of tests/fixtures/tasks.ts fault.work_or_die*):
//   plain task:                          FAILURE WorkerLostError, never run again (Celery's default);
//   acks_late + reject_on_worker_lost:   message requeued, runs again to SUCCESS;
//   the tasks running beside it:         unaffected, SUCCESS once; the worker goes on.
// Redis dbs 117 (broker) and 118 (results and ledger); vhosts faults-pool-*.
import { testRedisUrl } from '../helpers/env';
import { startCeleriacWorker } from '../helpers/celeriacWorker';
import { type BrokerKind, faultDbs, expectCleanLog, Ledger, metas, queueState, sendTasks, tally, waitFor } from '../helpers/faults';

const BROKER_DB = 117;
const RESULTS_DB = 118;
const N = 24;
const CONCURRENCY = 4;
const TASK_MS = 300;

const { results: resultsDb, openBroker } = faultDbs(BROKER_DB, RESULTS_DB);

// Task i: even = acks_late + reject_on_worker_lost, odd = plain; i % 8 < 2 dies half-way.
const lateTask = (i: number): boolean => i % 2 === 0;
const dies = (i: number): boolean => i % 8 < 2;

const CASES: { pool: 'threads' | 'processes'; kind: BrokerKind }[] = [
  { pool: 'threads', kind: 'redis' },
  { pool: 'threads', kind: 'amqp' },
  { pool: 'processes', kind: 'redis' },
  { pool: 'processes', kind: 'amqp' },
];

describe.each(CASES)('-P $pool on $kind: a child exits under its task', ({ pool, kind }) => {
  it('WorkerLostError for plain tasks, requeue for reject_on_worker_lost, the others untouched', async () => {
    const name = `faults-pool-${pool}-${kind}`;
    const broker = await openBroker(kind, name);
    const ledger = new Ledger(resultsDb(), name);
    await ledger.clear();
    const worker = await startCeleriacWorker({
      brokerUrl: broker.url,
      backendUrl: testRedisUrl(RESULTS_DB),
      app: 'tests/fixtures/tasks.ts',
      concurrency: CONCURRENCY,
      extraArgs: ['-P', pool],
      env: ledger.env(testRedisUrl(RESULTS_DB)),
    });
    const ids = await sendTasks(
      broker.url,
      (i) => (lateTask(i) ? 'fault.work_or_die_late' : 'fault.work_or_die'),
      Array.from({ length: N }, (_, i) => [TASK_MS, dies(i)]),
    );
    try {
      await waitFor(async () => (await metas(resultsDb(), ids)).every((m) => m !== null && m.status !== 'STARTED'), 60_000, 'a result for every task');
      await waitFor(async () => {
        const q = await queueState(broker);
        return q.ready === 0 && q.unacked === 0;
      }, 10_000, 'every message acknowledged');
    } finally {
      expect(await worker.stop()).toEqual({ code: 0, signal: null });
    }

    const t = tally(ids, await ledger.entries());
    const docs = await metas(resultsDb(), ids);
    expect(t.strangers).toEqual([]);
    expect(t.duplicated).toEqual([]);
    ids.forEach((id, i) => {
      const row = t.byId.get(id)!;
      const doc = docs[i]!;
      if (!dies(i)) {
        expect({ i, status: doc.status, starts: row.starts, dones: row.dones }).toEqual({ i, status: 'SUCCESS', starts: 1, dones: 1 });
      } else if (lateTask(i)) {
        // Requeued by reject_on_worker_lost, ran again (the crash happens on the first run only).
        expect({ i, status: doc.status, starts: row.starts, dones: row.dones }).toEqual({ i, status: 'SUCCESS', starts: 2, dones: 1 });
      } else {
        expect({ i, status: doc.status, starts: row.starts, dones: row.dones }).toEqual({ i, status: 'FAILURE', starts: 1, dones: 0 });
        expect(doc.result).toMatchObject({ exc_type: 'WorkerLostError' });
      }
    });
    const out = worker.output();
    expect(out.split('\n').filter((l) => /Worker exited prematurely/.test(l)).length).toBeGreaterThanOrEqual(N / 4);
    expect(out.split('\n').filter((l) => /message requeued \(reject_on_worker_lost\)/.test(l))).toHaveLength(N / 8);
    expectCleanLog(out);
  }, 90_000);
});
