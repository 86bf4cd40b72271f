// The threads and processes pools on a real worker process over Redis (dbs 100-105): CPU-bound
// tasks run off the event loop (control replies keep flowing), a hard time limit and revoke
// --terminate really stop a spinning task, children are recycled after max-tasks-per-child, and a
// child that dies under a task gives WorkerLostError (or, with acks_late + reject_on_worker_lost,
// its message back).
import os from 'node:os';
import path from 'node:path';
import { Celeriac } from '../../workers/app/app';
import { testRedisUrl, testTmpDir } from '../helpers/env';
import { startCeleriacWorker } from '../helpers/celeriacWorker';
import type { ProcessHandle } from '../helpers/processes';
import { flushDb } from '../helpers/redis';
import { pyControl } from '../helpers/control';
import { lines, startReceiver } from '../helpers/eventsReceiver';

const POOLS = [
  { pool: 'threads', broker: 100, results: 101 },
  { pool: 'processes', broker: 102, results: 103 },
] as const;

interface PoolStats {
  pool: { implementation: string; 'max-concurrency': number; processes: number[] };
}

describe.each(POOLS)('-P $pool', ({ pool, broker, results }) => {
  const hostname = `pool-${pool}-${process.pid}@${os.hostname()}`;
  const env = { BROKER_URL: testRedisUrl(broker), RESULT_BACKEND: testRedisUrl(results) };
  let worker: ProcessHandle;
  let app: Celeriac;
  const dir = testTmpDir(`pools-${pool}`);

  beforeAll(async () => {
    await flushDb(broker);
    await flushDb(results);
    worker = await startCeleriacWorker({
      brokerUrl: env.BROKER_URL,
      backendUrl: env.RESULT_BACKEND,
      hostname,
      concurrency: 2,
      app: 'tests/fixtures/poolTasks.ts',
      extraArgs: ['-P', pool, '--max-tasks-per-child', '3'],
    });
    app = new Celeriac({ brokerUrl: env.BROKER_URL, resultBackend: env.RESULT_BACKEND });
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    await worker?.stop();
  });

  const send = (name: string, args: unknown[], opts: { timeLimit?: [number | null, number | null] } = {}) =>
    app.sendTask(name, args, {}, opts);

  it('reports its pool in inspect stats', async () => {
    const [stats] = (await pyControl(env, [['inspect', 'stats', [], {}]], { destination: [hostname], waitFor: [hostname] })) as Record<string, PoolStats>[];
    const info = stats![hostname]!.pool;
    expect(info.implementation).toBe(pool === 'threads' ? 'celeriac:ThreadPool' : 'celeriac:ProcessPool');
    expect(info['max-concurrency']).toBe(2);
    expect(info.processes).toHaveLength(2);
    if (pool === 'processes') expect(info.processes).not.toContain(worker.pid);
    else expect(info.processes).toEqual([worker.pid, worker.pid]);
  });

  it('keeps heartbeats and control replies flowing while both slots spin; a hard time limit kills a spinner', async () => {
    const receiver = await startReceiver(env.BROKER_URL, hostname, { CAPTURE_SECONDS: '40' });
    try {
      const from = Date.now() / 1000;
      const stuck = await send('pool.spin', [60], { timeLimit: [5, null] });
      const busy = await send('pool.spin', [5]);
      await new Promise((r) => setTimeout(r, 300));
      const [pong] = (await pyControl(env, [['inspect', 'ping', [], {}]], { destination: [hostname] })) as Record<string, unknown>[];
      expect(pong![hostname]).toEqual({ ok: 'pong' });
      // Answered while the 5 s spinner still ran (an order, not a duration).
      expect(await busy.state()).not.toBe('SUCCESS');
      await expect(busy.get({ timeout: 20 })).resolves.toBe(5);
      await expect(stuck.get({ timeout: 20 })).rejects.toMatchObject({ name: 'TimeLimitExceeded' });
      const to = Date.now() / 1000;
      // Every 2 s while both slots spun for 5 s: an event loop blocked by the tasks would send none.
      const beats = lines(receiver).filter(
        (l) => l.event.type === 'worker-heartbeat' && l.event.hostname === hostname && Number(l.event.timestamp) > from + 0.5 && Number(l.event.timestamp) < to,
      );
      expect(beats.length).toBeGreaterThanOrEqual(2);
      expect(beats.every((l) => l.state.workers[hostname]?.alive)).toBe(true);
    } finally {
      receiver.kill();
    }
    // The killed child is replaced: the worker still runs tasks on both slots.
    const after = await Promise.all([send('pool.spin', [0.1]), send('pool.spin', [0.1])]);
    for (const r of after) await expect(r.get({ timeout: 20 })).resolves.toBe(0.1);
  }, 60_000);

  it('revoke --terminate stops a spinning task: REVOKED, and the pool goes on', async () => {
    const spinner = await send('pool.spin', [60]);
    await new Promise((r) => setTimeout(r, 800));
    const [reply] = (await pyControl(env, [['control', 'revoke', [spinner.id], { terminate: true }]], { destination: [hostname] })) as Record<string, unknown>[][];
    expect(reply).toEqual([{ [hostname]: { ok: `terminate: ${spinner.id}` } }]); // Celery's reply to a terminate
    await expect(spinner.get({ timeout: 20 })).rejects.toMatchObject({ name: 'TaskRevokedError' });
    expect(await spinner.state()).toBe('REVOKED');
    await expect((await send('pool.spin', [0.1])).get({ timeout: 20 })).resolves.toBe(0.1);
  }, 60_000);

  it('a task awaiting an abortable Node API fails with the abort reason (SoftTimeLimitExceeded), not AbortError', async () => {
    const r = await send('pool.abortable_sleep', [30], { timeLimit: [null, 1] });
    await expect(r.get({ timeout: 20 })).rejects.toMatchObject({ name: 'SoftTimeLimitExceeded' });
    expect(await r.state()).toBe('FAILURE');
  }, 30_000);

  it('the soft time limit aborts the task signal inside the child', async () => {
    const r = await send('pool.soft', [4], { timeLimit: [null, 1] });
    await expect(r.get({ timeout: 20 })).resolves.toBe('caught SoftTimeLimitExceeded');
  }, 30_000);

  it('replaces a child after --max-tasks-per-child 3 tasks', async () => {
    const seen: string[] = [];
    // One at a time, so the children take turns predictably: 12 tasks over 2 slots need at least 4 children.
    for (let i = 0; i < 12; i++) {
      const who = (await (await send('pool.whoami', [])).get({ timeout: 20 })) as { pid: number; thread: number };
      seen.push(`${who.pid}/${who.thread}`);
    }
    const counts = new Map<string, number>();
    for (const id of seen) counts.set(id, (counts.get(id) ?? 0) + 1);
    expect(Math.max(...counts.values())).toBeLessThanOrEqual(3);
    expect(counts.size).toBeGreaterThanOrEqual(4);
    if (pool === 'processes') expect(seen.every((id) => !id.startsWith(`${worker.pid}/`))).toBe(true);
  }, 60_000);

  it('replace() from inside a child sends the replacement under the same id', async () => {
    const r = await send('pool.replace_by_add', [41]);
    await expect(r.get({ timeout: 20 })).resolves.toBe(42);
  }, 30_000);

  it('a child dying under a task fails it with WorkerLostError; the worker lives on', async () => {
    const r = await send('pool.crash', []);
    await expect(r.get({ timeout: 20 })).rejects.toMatchObject({ name: 'WorkerLostError' });
    await expect((await send('pool.spin', [0.1])).get({ timeout: 20 })).resolves.toBe(0.1);
    expect(process.kill(worker.pid, 0)).toBe(true); // still alive
  }, 30_000);

  it('acks_late + reject_on_worker_lost: the message goes back and runs again', async () => {
    const marker = path.join(dir, `crash-once-${Date.now()}`);
    const r = await send('pool.crash_once', [marker]);
    await expect(r.get({ timeout: 30 }).catch((e: Error) => { console.log(worker.output().slice(-3000)); throw e; })).resolves.toBe('survived');
  }, 45_000);
});

describe('a task pinned to the processes pool on an async worker, with --max-memory-per-child', () => {
  const hostname = `pool-pinned-${process.pid}@${os.hostname()}`;
  const env = { BROKER_URL: testRedisUrl(104), RESULT_BACKEND: testRedisUrl(105) };
  let worker: ProcessHandle;
  let app: Celeriac;

  beforeAll(async () => {
    await flushDb(104);
    await flushDb(105);
    // 1 KiB: every child is over it after its first task, so each task gets a fresh process.
    worker = await startCeleriacWorker({
      brokerUrl: env.BROKER_URL,
      backendUrl: env.RESULT_BACKEND,
      hostname,
      concurrency: 1,
      app: 'tests/fixtures/poolTasks.ts',
      extraArgs: ['-P', 'async', '--max-memory-per-child', '1'],
    });
    app = new Celeriac({ brokerUrl: env.BROKER_URL, resultBackend: env.RESULT_BACKEND });
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    await worker?.stop();
  });

  it('runs the pinned task in a child process, replaced after each task; other tasks stay on the event loop', async () => {
    const pids: number[] = [];
    for (let i = 0; i < 3; i++) {
      const who = (await (await app.sendTask('pool.pinned_whoami', [])).get({ timeout: 20 })) as { pid: number };
      pids.push(who.pid);
    }
    expect(pids).not.toContain(worker.pid);
    expect(new Set(pids).size).toBe(3);
    const main = (await (await app.sendTask('pool.whoami', [])).get({ timeout: 20 })) as { pid: number };
    expect(main.pid).toBe(worker.pid);
    await worker.waitForOutput(/max_memory_per_child 1: replaced/);
  }, 60_000);

  it('on the event loop, a task awaiting an abortable Node API ends REVOKED on revoke --terminate and SoftTimeLimitExceeded on its soft limit', async () => {
    const sleeper = await app.sendTask('pool.abortable_sleep', [60]);
    await worker.waitForOutput(new RegExp(`pool\\.abortable_sleep\\[${sleeper.id}\\] received`), 20_000);
    await new Promise((r) => setTimeout(r, 300)); // received, then running: alone on -c 1
    const [reply] = (await pyControl(env, [['control', 'revoke', [sleeper.id], { terminate: true }]], { destination: [hostname] })) as Record<string, unknown>[][];
    expect(reply).toEqual([{ [hostname]: { ok: `terminate: ${sleeper.id}` } }]);
    await expect(sleeper.get({ timeout: 20 })).rejects.toMatchObject({ name: 'TaskRevokedError' });
    expect(await sleeper.state()).toBe('REVOKED');
    const limited = await app.sendTask('pool.abortable_sleep', [30], {}, { timeLimit: [null, 1] });
    await expect(limited.get({ timeout: 20 })).rejects.toMatchObject({ name: 'SoftTimeLimitExceeded' });
  }, 60_000);
});
