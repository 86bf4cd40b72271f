// Python Celery producer (celery/kombu 5.7, tests/interop/client.py) -> real Celeriac worker over a
// real redis-server -> Python AsyncResult: countdown and eta (held without blocking the worker),
// expires (REVOKED, never run), message priorities, retries (RETRY state) and custom PROGRESS
// states. Uses redis dbs 12 (broker) and 13 (results).
import { randomUUID } from 'node:crypto';
import { testRedisUrl } from '../helpers/env';
import { type ProcessHandle } from '../helpers/processes';
import { pyClient } from '../helpers/python';
import { startCeleriacWorker } from '../helpers/celeriacWorker';
import { flushDb, withRedis } from '../helpers/redis';
import type { GetReply, ResultReply, SendReply, WatchReply } from '../helpers/pyReplies';

const BROKER_DB = 12;
const BACKEND_DB = 13;

interface BatchItem<T> {
  t0: number;
  t1: number;
  out: T;
}

let worker: ProcessHandle;

function pyEnv(): Record<string, string> {
  return { BROKER_URL: testRedisUrl(BROKER_DB), RESULT_BACKEND: testRedisUrl(BACKEND_DB) };
}

function py<T>(command: object): Promise<T> {
  return pyClient<T>(command, { env: pyEnv() });
}

async function batch<T>(commands: object[]): Promise<BatchItem<T>[]> {
  return (await py<{ results: BatchItem<T>[] }>({ op: 'batch', commands })).results;
}

/** Python's isoformat() (microseconds, +00:00) as seconds since the epoch. */
function pyDateSeconds(iso: string): number {
  const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,6}))?\+00:00$/.exec(iso);
  if (!m) throw new Error(`not a UTC Python isoformat: ${iso}`);
  return Date.parse(`${m[1]}Z`) / 1000 + Number(`0.${m[2] ?? '0'}`);
}

async function dateDone(id: string): Promise<number> {
  const raw = await withRedis(BACKEND_DB, (r) => r.get(`celery-task-meta-${id}`));
  if (raw === null) throw new Error(`no celery-task-meta-${id}`);
  const doc = JSON.parse(raw) as { date_done: string | null };
  if (!doc.date_done) throw new Error(`celery-task-meta-${id} has no date_done: ${raw}`);
  return pyDateSeconds(doc.date_done);
}

/** Ids of `Task <name>[<id>] succeeded` lines in a worker's log, in log order. */
function succeededIds(output: string, name: string): string[] {
  const re = new RegExp(`Task ${name.replace(/\./g, '\\.')}\\[([0-9a-f-]{36})\\] succeeded`, 'g');
  return [...output.matchAll(re)].map((m) => m[1]!);
}

beforeAll(async () => {
  await flushDb(BROKER_DB);
  await flushDb(BACKEND_DB);
  worker = await startCeleriacWorker({
    brokerUrl: testRedisUrl(BROKER_DB),
    backendUrl: testRedisUrl(BACKEND_DB),
    concurrency: 4,
  });
});

afterAll(async () => {
  await worker?.stop();
});

describe('countdown and eta', () => {
  /**
   * Sends `late` (delayed by `delay`), then three quick tasks that each wait for their result, then
   * waits for `late`: all in one Python process, with Python's clock around every step.
   */
  async function delayedThenQuick(delayed: Record<string, unknown>): Promise<void> {
    const lateId = randomUUID();
    const items = await batch<SendReply | GetReply>([
      { op: 'send', task: 'demo.echo', args: ['late'], ...delayed, options: { ...(delayed.options as object), task_id: lateId } },
      { op: 'send', task: 'demo.add', args: [1, 2], wait: true, timeout: 10 },
      { op: 'send', task: 'demo.echo', args: ['quick'], wait: true, timeout: 10 },
      { op: 'send', task: 'demo.noop', wait: true, timeout: 10 },
      { op: 'get', id: lateId, timeout: 15 },
    ]);
    const [sendLate, add, echo, noop, lateGet] = items as [
      BatchItem<SendReply>, BatchItem<SendReply>, BatchItem<SendReply>, BatchItem<SendReply>, BatchItem<GetReply>,
    ];
    expect(sendLate.out.id).toBe(lateId);
    // The quick ones, sent after it, are not blocked behind the held task.
    expect(add.out).toMatchObject({ state: 'SUCCESS', result: 3 });
    expect(echo.out).toMatchObject({ state: 'SUCCESS', result: 'quick' });
    expect(noop.out).toMatchObject({ state: 'SUCCESS', result: null });
    expect(noop.t1 - sendLate.t0).toBeLessThan(1.5);

    expect(lateGet.out).toMatchObject({ state: 'SUCCESS', result: 'late', exc_type: null });
    const sentAt = sendLate.t0;
    expect(lateGet.out.t_ready - sentAt).toBeGreaterThanOrEqual(1.8);
    expect(lateGet.out.t_ready - sentAt).toBeLessThan(6);
    const lateDone = await dateDone(lateId);
    expect(lateDone - sentAt).toBeGreaterThanOrEqual(1.8);
    for (const quick of [add, echo, noop]) expect(await dateDone(quick.out.id)).toBeLessThan(lateDone);
  }

  it('countdown=2: the result lands >= 1.8 s after sending, and later tasks finish first', async () => {
    await delayedThenQuick({ options: { countdown: 2 } });
  });

  it('eta=now+2s (absolute time): same', async () => {
    // client.py's batch turns eta_in into options.eta = datetime.now(timezone.utc) + 2 s.
    await delayedThenQuick({ eta_in: 2 });
  });
});

describe('expires', () => {
  async function expectRevokedAndNotRun(id: string): Promise<void> {
    const got = await py<GetReply>({ op: 'get', id, timeout: 15 });
    expect(got).toMatchObject({
      state: 'REVOKED',
      exc_type: 'TaskRevokedError',
      exc_module: 'celery.exceptions',
      exc_args: ['expired'],
    });
    const meta = await py<ResultReply>({ op: 'result', id });
    expect(meta).toMatchObject({ state: 'REVOKED', ready: true, info: { exc_type: 'TaskRevokedError', exc_message: 'expired' } });
    // A task sent afterwards completes, and still nothing ran the expired one.
    expect(await py<SendReply>({ op: 'send', task: 'demo.add', args: [5, 5], wait: true, timeout: 10 })).toMatchObject({ result: 10 });
    await worker.waitForOutput(`Discarding revoked task: demo.echo[${id}]`);
    expect(worker.output()).not.toMatch(new RegExp(`Task demo\\.echo\\[${id}\\] succeeded`));
    expect((await py<{ state: string }>({ op: 'state', id })).state).toBe('REVOKED');
  }

  it('expires in the past: Python sees REVOKED (TaskRevokedError expired) and the task never runs', async () => {
    const past = new Date(Date.now() - 60_000).toISOString().replace('Z', '+00:00');
    const sent = await py<SendReply>({ op: 'send', task: 'demo.echo', args: ['too late'], options: { expires: past } });
    await expectRevokedAndNotRun(sent.id);
  });

  it('expires=1 with countdown=3: expired by the time the ETA comes, REVOKED and never run', async () => {
    const items = await batch<SendReply>([
      { op: 'send', task: 'demo.echo', args: ['expires before eta'], options: { expires: 1, countdown: 3 } },
    ]);
    const { id } = items[0]!.out;
    await expectRevokedAndNotRun(id);
    // Revoked when the ETA came (~3 s), not earlier: Celery checks expiry when the ETA fires.
    expect((await dateDone(id)) - items[0]!.t0).toBeGreaterThanOrEqual(2.8);
  });
});

describe('retries and custom states', () => {
  it('demo.retry(3) returns 4, and Python sees RETRY while it retries', async () => {
    const id = randomUUID();
    const [, watched] = (await batch<unknown>([
      { op: 'send', task: 'demo.retry', args: [3], options: { task_id: id } },
      { op: 'watch', id, timeout: 15, interval: 0.005 },
    ])) as [BatchItem<SendReply>, BatchItem<WatchReply>];
    expect(watched.out.state).toBe('SUCCESS');
    expect(watched.out.result).toBe(4);
    const states = watched.out.states.map((s) => s.state);
    expect(states).toContain('RETRY');
    expect(states[states.length - 1]).toBe('SUCCESS');
    expect(states.filter((s) => !['PENDING', 'RETRY', 'SUCCESS'].includes(s))).toEqual([]);
    expect((await py<GetReply>({ op: 'get', id })).result).toBe(4);
  });

  it('demo.progress(20): Python polls PROGRESS {current, total}, then get() returns 20', async () => {
    const id = randomUUID();
    const [, watched] = (await batch<unknown>([
      { op: 'send', task: 'demo.progress', args: [20], options: { task_id: id } },
      { op: 'watch', id, timeout: 15, interval: 0.01 },
    ])) as [BatchItem<SendReply>, BatchItem<WatchReply>];
    const progress = watched.out.states.filter((s) => s.state === 'PROGRESS');
    expect(progress.length).toBeGreaterThanOrEqual(3);
    const currents = progress.map((s) => (s.info as { current: number }).current);
    for (const s of progress) {
      expect(s.info).toEqual({ current: expect.any(Number), total: 20 });
    }
    expect(currents).toEqual([...currents].sort((a, b) => a - b));
    expect(Math.min(...currents)).toBeGreaterThanOrEqual(1);
    expect(Math.max(...currents)).toBeLessThanOrEqual(20);
    expect(watched.out).toMatchObject({ state: 'SUCCESS', result: 20 });
    const got = await py<GetReply>({ op: 'get', id });
    expect(got).toMatchObject({ state: 'SUCCESS', result: 20 });
  });
});

describe('priorities', () => {
  it('with prefetch 1, priority 0 messages are all served before priority 9 ones (kombu redis rule)', async () => {
    // kombu/transport/redis.py (5.7): _put() pushes to _q_for_pri(queue, pri), i.e. `queue` for
    // priority 0 and `queue\x06\x16<step>` for steps 3, 6, 9 (PRIORITY_STEPS = [0, 3, 6, 9], a
    // priority rounds down to its step); _brpop_start() lists the keys
    // `for pri in self.priority_steps`, so BRPOP serves step 0 first: on Redis a LOWER number is
    // served first, the reverse of AMQP. No worker consumes `prio` until the messages are queued.
    const queue = 'prio';
    const p9 = await py<{ ids: string[] }>({ op: 'send_many', task: 'demo.echo', args: ['p9'], options: { queue, priority: 9 }, count: 10 });
    const p0 = await py<{ ids: string[] }>({ op: 'send_many', task: 'demo.echo', args: ['p0'], options: { queue, priority: 0 }, count: 10 });
    await withRedis(BROKER_DB, async (r) => {
      expect(await r.llen(queue)).toBe(10);
      expect(await r.llen(`${queue}\x06\x169`)).toBe(10);
    });

    const prioWorker = await startCeleriacWorker({
      brokerUrl: testRedisUrl(BROKER_DB),
      backendUrl: testRedisUrl(BACKEND_DB),
      queues: [queue],
      concurrency: 1,
      extraArgs: ['--prefetch-multiplier', '1'],
    });
    try {
      const gets = await batch<GetReply>([...p0.ids, ...p9.ids].map((id) => ({ op: 'get', id, timeout: 20 })));
      expect(gets.map((g) => g.out.result)).toEqual([...Array(10).fill('p0'), ...Array(10).fill('p9')]);
    } finally {
      await prioWorker.stop();
    }
    // Completion order from the worker's log: all priority 0 (FIFO within a priority), then all 9.
    expect(succeededIds(prioWorker.output(), 'demo.echo')).toEqual([...p0.ids, ...p9.ids]);
    const done = await Promise.all([...p0.ids, ...p9.ids].map(dateDone));
    expect(Math.max(...done.slice(0, 10))).toBeLessThanOrEqual(Math.min(...done.slice(10)));
    await withRedis(BROKER_DB, async (r) => {
      expect(await r.llen(queue)).toBe(0);
      expect(await r.llen(`${queue}\x06\x169`)).toBe(0);
    });
  });
});
