// Fault suite: kill -9 of a worker in the middle of a batch, on Redis and on RabbitMQ, with
// acks_late on and off, every task id counted through the ledger (tests/fixtures/tasks.ts fault.*).
//   acks_late on:  nothing is lost. What ran when the worker died runs again on a second worker;
//                  a task may finish twice only if it finished just before the kill and its ack
//                  had not reached the broker (at most -c of them).
//   acks_late off: the messages acknowledged before they ran (the tasks running at the kill, at
//                  most -c) are lost, as with Celery (README, "What a crash can lose"); everything
//                  else (reserved, not started) comes back and runs exactly once.
// Redis: a second worker restores the dead one's unacked messages after visibility_timeout (2 s
// here); RabbitMQ: the dead connection's unacked messages return at once.
// Redis dbs 113 (broker) and 114 (results and ledger); vhosts faults-kill9-*.
import { testRedisUrl } from '../helpers/env';
import { startCeleriacWorker } from '../helpers/celeriacWorker';
import { type BrokerKind, faultDbs, expectCleanLog, Ledger, queueState, sendTasks, statuses, tally, waitFor } from '../helpers/faults';

const BROKER_DB = 113;
const RESULTS_DB = 114;
const N = 32;
const CONCURRENCY = 4;
const TASK_MS = 500;

const { results: resultsDb, openBroker } = faultDbs(BROKER_DB, RESULTS_DB);

const CASES: { kind: BrokerKind; late: boolean }[] = [
  { kind: 'redis', late: true },
  { kind: 'redis', late: false },
  { kind: 'amqp', late: true },
  { kind: 'amqp', late: false },
];

describe.each(CASES)('kill -9 mid-batch on $kind, acks_late=$late', ({ kind, late }) => {
  it(late ? 'loses nothing: what ran at the kill runs again elsewhere' : 'loses only the tasks running at the kill (acked before they ran)', async () => {
    const name = `faults-kill9-${kind}-${late ? 'late' : 'early'}`;
    const broker = await openBroker(kind, name);
    const ledger = new Ledger(resultsDb(), name);
    await ledger.clear();
    const common = {
      brokerUrl: broker.url,
      backendUrl: testRedisUrl(RESULTS_DB),
      app: 'tests/fixtures/tasks.ts',
      // Redis: the second worker restores what the dead one held once 2 s have passed.
      env: { ...ledger.env(testRedisUrl(RESULTS_DB)), CELERIAC_VISIBILITY_TIMEOUT: '2', CELERIAC_UNACKED_RESTORE_INTERVAL: '1' },
    };
    const first = await startCeleriacWorker({ ...common, concurrency: CONCURRENCY });
    const ids = await sendTasks(broker.url, late ? 'fault.work_late' : 'fault.work', Array.from({ length: N }, () => [TASK_MS]));

    // Prefetch 4 x 4: the worker holds more than it runs (reserved messages are at stake too).
    await waitFor(async () => (await queueState(broker)).unacked >= 3 * CONCURRENCY, 15_000, 'the worker to hold its prefetch');
    // Mid-batch: the first -c tasks finished, the next -c are running, more are reserved.
    await waitFor(async () => {
      const t = tally(ids, await ledger.entries());
      const running = [...t.byId.values()].filter((r) => r.starts > r.dones).length;
      return N - t.missing.length >= CONCURRENCY && running === CONCURRENCY;
    }, 15_000, 'a second batch to be running');
    first.kill('SIGKILL');
    await first.exited;

    const atKill = tally(ids, await ledger.entries());
    const runningAtKill = ids.filter((id) => atKill.byId.get(id)!.starts > atKill.byId.get(id)!.dones);
    const doneByFirst = ids.filter((id) => atKill.byId.get(id)!.dones > 0);
    expect(runningAtKill.length).toBeGreaterThanOrEqual(1);
    expect(runningAtKill.length).toBeLessThanOrEqual(CONCURRENCY);

    const second = await startCeleriacWorker({ ...common, concurrency: 2 * CONCURRENCY });
    try {
      // Everything that can come back has: all ids done except those allowed to be lost.
      const mayBeLost = new Set(late ? [] : runningAtKill);
      await waitFor(async () => tally(ids, await ledger.entries()).missing.every((id) => mayBeLost.has(id)), 30_000, 'every recoverable task to finish');
      await waitFor(async () => {
        const q = await queueState(broker);
        return q.ready === 0 && q.unacked === 0;
      }, 10_000, 'the queue to drain');
    } finally {
      await second.stop();
    }

    const end = tally(ids, await ledger.entries());
    expect(end.strangers).toEqual([]);
    if (broker.kind === 'redis') expect(second.output()).toMatch(/restored \d+ unacked message/);
    const states = await statuses(resultsDb(), ids);
    if (late) {
      expect(end.missing).toEqual([]);
      expect(states.filter((s) => s === 'SUCCESS')).toHaveLength(N);
      // The tasks killed mid-run were redelivered and run again, to the end, by the second worker.
      for (const id of runningAtKill) {
        expect(end.byId.get(id)).toMatchObject({ starts: 2, dones: 1, donePids: [second.pid] });
      }
      // A second completion only for a task done by the first worker whose ack never landed.
      expect(end.duplicated.length).toBeLessThanOrEqual(CONCURRENCY);
      for (const id of end.duplicated) {
        expect(doneByFirst).toContain(id);
        expect(end.byId.get(id)!.donePids).toEqual([first.pid, second.pid]);
      }
    } else {
      // Lost: acked, started, killed. At least one (the README's warning is real), at most -c,
      // and only tasks that were running; they have no result (PENDING forever, as in Celery).
      expect(end.missing.length).toBeGreaterThanOrEqual(1);
      expect(end.missing.length).toBeLessThanOrEqual(CONCURRENCY);
      for (const id of end.missing) expect(runningAtKill).toContain(id);
      expect(end.missing.map((id) => states[ids.indexOf(id)])).toEqual(end.missing.map(() => null));
      // Everything else finished exactly once: reserved messages were not lost with the worker,
      // and early-acked tasks that had finished never run twice.
      expect(end.duplicated).toEqual([]);
      expect(states.filter((s) => s === 'SUCCESS')).toHaveLength(N - end.missing.length);
    }
    expectCleanLog(first.output());
    expectCleanLog(second.output());
  }, 60_000);
});
