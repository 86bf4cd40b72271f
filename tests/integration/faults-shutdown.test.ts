// Fault suite: SIGTERM under load, on Redis and on RabbitMQ, every task id counted through the
// ledger (tests/fixtures/tasks.ts fault.*; half the tasks acks_late, half acked early).
//   warm (one SIGTERM):  the running tasks finish, nothing new starts, reserved messages go back
//                        to the queue, exit 0; a second worker then runs the rest: every id once.
//   cold (a second SIGTERM): exit at once (code 1, as Celery's cold shutdown); the running
//                        acks_late tasks go back to the queue and run again elsewhere, the running
//                        early-acked ones are lost (acked before they ran, as with kill -9).
// Redis dbs 115 (broker) and 116 (results and ledger); vhosts faults-shutdown-*.
import { testRedisUrl } from '../helpers/env';
import { startCeleriacWorker } from '../helpers/celeriacWorker';
import { type BrokerKind, faultDbs, expectCleanLog, Ledger, queueState, sendTasks, statuses, tally, waitFor } from '../helpers/faults';

const BROKER_DB = 115;
const RESULTS_DB = 116;
const N = 40;
const CONCURRENCY = 4;

const { results: resultsDb, openBroker } = faultDbs(BROKER_DB, RESULTS_DB);

/** A worker at -c 4 with N tasks (even index acks_late) of `ms` each, once `firstDone` finished and 4 are running. */
async function loaded(kind: BrokerKind, name: string, ms: number, firstDone: number) {
  const broker = await openBroker(kind, name);
  const ledger = new Ledger(resultsDb(), name);
  await ledger.clear();
  const common = {
    brokerUrl: broker.url,
    backendUrl: testRedisUrl(RESULTS_DB),
    app: 'tests/fixtures/tasks.ts',
    env: ledger.env(testRedisUrl(RESULTS_DB)),
  };
  const worker = await startCeleriacWorker({ ...common, concurrency: CONCURRENCY });
  const ids = await sendTasks(broker.url, (i) => (i % 2 ? 'fault.work' : 'fault.work_late'), Array.from({ length: N }, () => [ms]));
  await waitFor(async () => {
    const t = tally(ids, await ledger.entries());
    return N - t.missing.length >= firstDone && [...t.byId.values()].filter((r) => r.starts > r.dones).length === CONCURRENCY;
  }, 15_000, `${CONCURRENCY} tasks running after ${firstDone} done`);
  return { broker, ledger, common, worker, ids };
}

const isLate = (ids: string[], id: string): boolean => ids.indexOf(id) % 2 === 0;

describe.each(['redis', 'amqp'] as const)('SIGTERM under load on %s', (kind) => {
  it('warm: running tasks finish, reserved ones go back, exit 0; a second worker runs the rest, each once', async () => {
    const { broker, ledger, common, worker, ids } = await loaded(kind, `faults-shutdown-warm-${kind}`, 800, CONCURRENCY);
    const atSignal = tally(ids, await ledger.entries());
    const running = ids.filter((id) => atSignal.byId.get(id)!.starts > atSignal.byId.get(id)!.dones);
    const signalled = Date.now();
    worker.kill('SIGTERM');
    const exit = await worker.exited;
    const took = Date.now() - signalled;
    expect(exit).toEqual({ code: 0, signal: null });
    expect(took).toBeGreaterThan(100); // it waited for the running tasks (800 ms, just started)...
    expect(took).toBeLessThan(8_000); // ...and nothing else
    expect(worker.output()).toMatch(/Warm shutdown \(SIGTERM\)/);

    const atExit = tally(ids, await ledger.entries());
    // Each task it started, it finished (acks_late or not); the tasks running at the signal are among them.
    for (const [, r] of atExit.byId) expect(r.starts).toBe(r.dones);
    for (const id of running) expect(atExit.byId.get(id)!.dones).toBe(1);
    // The rest is back in the queue, nothing left unacknowledged.
    const finished = N - atExit.missing.length;
    expect(await queueState(broker)).toEqual({ ready: N - finished, unacked: 0 });
    expect(N - finished).toBeGreaterThan(N / 2);
    if (broker.kind === 'redis') expect(await broker.client.zcard('unacked_index')).toBe(0);

    const second = await startCeleriacWorker({ ...common, concurrency: N }); // drains at once
    try {
      await waitFor(async () => tally(ids, await ledger.entries()).missing.length === 0, 20_000, 'the second worker to run the rest');
    } finally {
      await second.stop();
    }
    const end = tally(ids, await ledger.entries());
    expect(end.missing).toEqual([]);
    expect(end.duplicated).toEqual([]);
    expect(end.strangers).toEqual([]);
    expect(await statuses(resultsDb(), ids)).toEqual(ids.map(() => 'SUCCESS'));
    expectCleanLog(worker.output());
  }, 60_000);

  it('cold (second SIGTERM): exits at once; running acks_late tasks come back, running early-acked ones are lost', async () => {
    const { broker, ledger, common, worker, ids } = await loaded(kind, `faults-shutdown-cold-${kind}`, 3_000, 0);
    const signalled = Date.now();
    worker.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 300));
    worker.kill('SIGTERM');
    const exit = await Promise.race([worker.exited, new Promise<null>((r) => setTimeout(() => r(null), 5_000).unref())]);
    const took = Date.now() - signalled;
    if (!exit) await worker.stop(1_000);
    expect(exit).toEqual({ code: 1, signal: null }); // Celery's EX_FAILURE after a cold shutdown
    expect(took).toBeLessThan(3_000); // well before the running 3 s tasks could end
    expect(worker.output()).toMatch(/Cold shutdown \(SIGTERM\)/);

    const atExit = tally(ids, await ledger.entries());
    const aborted = ids.filter((id) => atExit.byId.get(id)!.starts > atExit.byId.get(id)!.dones);
    expect(aborted).toHaveLength(CONCURRENCY);
    await waitFor(async () => (await queueState(broker)).unacked === 0, 5_000, 'nothing left unacknowledged');
    if (broker.kind === 'redis') {
      // Everything unfinished is back except the early-acked tasks it was running; the aborted
      // acks_late ones are marked redelivered (as are the reserved ones it gave back).
      const back = (await broker.client.lrange('celery', 0, -1)).map((raw) => JSON.parse(raw) as { headers: { id: string }; properties: { delivery_info: { redelivered?: boolean } } });
      const expected = atExit.missing.filter((id) => !aborted.includes(id) || isLate(ids, id));
      expect(back.map((e) => e.headers.id).sort()).toEqual(expected.sort());
      const redelivered = back.filter((e) => e.properties.delivery_info.redelivered === true).map((e) => e.headers.id);
      expect(redelivered).toEqual(expect.arrayContaining(aborted.filter((id) => isLate(ids, id))));
    }

    const second = await startCeleriacWorker({ ...common, concurrency: N }); // drains at once
    const lost = aborted.filter((id) => !isLate(ids, id));
    try {
      await waitFor(async () => tally(ids, await ledger.entries()).missing.every((id) => lost.includes(id)), 30_000, 'the second worker to run the rest');
      await waitFor(async () => {
        const q = await queueState(broker);
        return q.ready === 0 && q.unacked === 0;
      }, 10_000, 'the queue to drain');
    } finally {
      await second.stop();
    }
    const end = tally(ids, await ledger.entries());
    expect(end.missing.sort()).toEqual([...lost].sort());
    expect(end.duplicated).toEqual([]);
    for (const id of aborted.filter((a) => isLate(ids, a))) expect(end.byId.get(id)).toMatchObject({ starts: 2, dones: 1, donePids: [second.pid] });
    expectCleanLog(worker.output());
  }, 60_000);
});
