// Interop over a real RabbitMQ (tests/setup/rabbitServer.ts) with real Python Celery 5.7:
//   Python producer -> Celeriac worker -> Python AsyncResult, results over rpc:// (the caller's
//   reply queue) and over Redis (AMQP broker, Redis backend);
//   Celeriac's TypeScript producer -> Python Celery worker (rpc://), and -> Celeriac worker.
// One Celeriac worker per describe, each on a vhost of its own (amqp-interop-*); Redis db 37.
import { randomUUID } from 'node:crypto';
import { testRedisUrl } from '../helpers/env';
import { type ProcessHandle } from '../helpers/processes';
import { pyClient } from '../helpers/python';
import { progressSeen } from '../helpers/progress';
import { startPythonWorker } from '../helpers/pyworker';
import { startCeleriacWorker } from '../helpers/celeriacWorker';
import { flushDb, withRedis } from '../helpers/redis';
import { freshVhost, listQueues, queueArguments, type QueueInfo } from '../helpers/rabbit';
import { Celeriac } from '../../workers/app/app';
import { RemoteTaskError } from '../../workers/producer/asyncResult';
import type { GetReply, SendReply, WatchReply } from '../helpers/pyReplies';

const RESULTS_DB = 37;

interface BatchItem<T> {
  t0: number;
  t1: number;
  out: T;
}

async function caught(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection');
}

/**
 * A Python client bound to one broker/backend. With rpc:// a result travels to the reply queue
 * of the process that SENT the task, so send and get must happen in one client.py run: `batch`.
 */
function pythonSide(env: () => Record<string, string>) {
  const py = <T>(command: object): Promise<T> => pyClient<T>(command, { env: env() });
  return {
    py,
    async batch<T>(commands: object[]): Promise<BatchItem<T>[]> {
      return (await py<{ results: BatchItem<T>[] }>({ op: 'batch', commands })).results;
    },
    sendAndWait(task: string, args: unknown[], kwargs: Record<string, unknown> = {}, options: Record<string, unknown> = {}): Promise<SendReply> {
      return py<SendReply>({ op: 'send', task, args, kwargs, options, wait: true, timeout: 20 });
    },
    /** send + get (with propagate) in one process: the exception .get() raised. */
    async sendAndGet(task: string, args: unknown[], options: Record<string, unknown> = {}): Promise<GetReply> {
      const id = randomUUID();
      const items = await this.batch<SendReply | GetReply>([
        { op: 'send', task, args, options: { ...options, task_id: id } },
        { op: 'get', id, timeout: 20 },
      ]);
      return items[1]!.out as GetReply;
    },
    /** send + poll state/info until ready, in one process. */
    async sendAndWatch(task: string, args: unknown[], interval = 0.01): Promise<WatchReply> {
      const id = randomUUID();
      const items = await this.batch<SendReply | WatchReply>([
        { op: 'send', task, args, options: { task_id: id } },
        { op: 'watch', id, timeout: 20, interval },
      ]);
      return items[1]!.out as WatchReply;
    },
  };
}

function expectProgress(watched: WatchReply, steps: number): void {
  const progress = watched.states.filter((s) => s.state === 'PROGRESS');
  expect(progress.length).toBeGreaterThanOrEqual(3);
  for (const s of progress) expect(s.info).toEqual({ current: expect.any(Number), total: steps });
  const currents = progress.map((s) => (s.info as { current: number }).current);
  expect(currents).toEqual([...currents].sort((a, b) => a - b));
  expect(Math.min(...currents)).toBeGreaterThanOrEqual(1);
  expect(Math.max(...currents)).toBeLessThanOrEqual(steps);
  const states = watched.states.map((s) => s.state);
  expect(states.filter((s) => !['PENDING', 'PROGRESS', 'SUCCESS'].includes(s))).toEqual([]);
  expect(watched).toMatchObject({ state: 'SUCCESS', result: steps });
}

function expectBoom(got: GetReply): void {
  expect(got).toMatchObject({
    state: 'FAILURE',
    exc_type: 'ValueError',
    exc_module: 'builtins',
    exc_message: 'boom',
    exc_args: ['boom'],
  });
  expect(got.exc_mro).toContain('builtins.ValueError');
}

describe('Python producer -> Celeriac worker -> Python AsyncResult, rpc:// results', () => {
  const VHOST = 'amqp-interop-rpc';
  let url = '';
  let worker: ProcessHandle;
  const side = pythonSide(() => ({ BROKER_URL: url, RESULT_BACKEND: 'rpc://' }));

  beforeAll(async () => {
    url = await freshVhost(VHOST);
    worker = await startCeleriacWorker({ brokerUrl: url, backendUrl: 'rpc://', concurrency: 4 });
  });

  afterAll(async () => {
    await worker?.stop();
  });

  it('args and kwargs: demo.add(2, 3), demo.add(x=2, y=3), demo.add(40, y=2)', async () => {
    expect(await side.sendAndWait('demo.add', [2, 3])).toMatchObject({ state: 'SUCCESS', result: 5, exc_type: null });
    expect(await side.sendAndWait('demo.add', [], { x: 2, y: 3 })).toMatchObject({ state: 'SUCCESS', result: 5 });
    expect(await side.sendAndWait('demo.add', [40], { y: 2 })).toMatchObject({ state: 'SUCCESS', result: 42 });
  });

  it('nested JSON and unicode round-trip exactly', async () => {
    const value = {
      outer: [
        { inner: { n: null, t: true, f: false, pi: 3.14159, neg: -0.5, big: 12345678901234 } },
        [1, [2, { deep: ['x', { deeper: [null, false, 2.5] }] }]],
        { empty_dict: {}, empty_list: [], zero: 0, empty_str: '' },
      ],
      accents: 'héllo wörld — ñ ç à é ü ß',
      emoji: '😀🚀 👨‍👩‍👧 🏳️‍🌈',
      'clé-😀-キー': ['中文字符 日本語 한국어', '\u0000 nul \t tab \n newline "q" \\ bs'],
    };
    const reply = await side.sendAndWait('demo.echo', [value]);
    expect(reply.state).toBe('SUCCESS');
    expect(reply.result).toEqual(value);
  });

  it('serializer=msgpack: the task runs and the payload round-trips', async () => {
    const payload = { list: [1, 2.5, null, true, false], text: 'héllo 😀 中文', nested: { a: [{ b: 'c' }] } };
    expect(await side.sendAndWait('demo.add', [], { x: 20, y: 22 }, { serializer: 'msgpack' })).toMatchObject({ state: 'SUCCESS', result: 42 });
    const echo = await side.sendAndWait('demo.echo', [payload], {}, { serializer: 'msgpack' });
    expect(echo.state).toBe('SUCCESS');
    expect(echo.result).toEqual(payload);
  });

  it('countdown=2: the result lands >= 1.8 s after sending, and later tasks are not blocked', async () => {
    const lateId = randomUUID();
    const items = await side.batch<SendReply | GetReply>([
      { op: 'send', task: 'demo.echo', args: ['late'], options: { countdown: 2, task_id: lateId } },
      { op: 'send', task: 'demo.add', args: [1, 2], wait: true, timeout: 10 },
      { op: 'send', task: 'demo.echo', args: ['quick'], wait: true, timeout: 10 },
      { op: 'get', id: lateId, timeout: 15 },
    ]);
    const [sendLate, add, echo, lateGet] = items as [BatchItem<SendReply>, BatchItem<SendReply>, BatchItem<SendReply>, BatchItem<GetReply>];
    expect(sendLate.out.id).toBe(lateId);
    expect(add.out).toMatchObject({ state: 'SUCCESS', result: 3 });
    expect(echo.out).toMatchObject({ state: 'SUCCESS', result: 'quick' });
    expect(echo.t1 - sendLate.t0).toBeLessThan(1.5);
    expect(lateGet.out).toMatchObject({ state: 'SUCCESS', result: 'late', exc_type: null });
    expect(lateGet.out.t_ready - sendLate.t0).toBeGreaterThanOrEqual(1.8);
    expect(lateGet.out.t_ready - sendLate.t0).toBeLessThan(6);
  });

  it('expires in the past: REVOKED (TaskRevokedError expired), never run', async () => {
    const past = new Date(Date.now() - 60_000).toISOString().replace('Z', '+00:00');
    const got = await side.sendAndGet('demo.echo', ['too late'], { expires: past });
    expect(got).toMatchObject({
      state: 'REVOKED',
      exc_type: 'TaskRevokedError',
      exc_module: 'celery.exceptions',
      exc_args: ['expired'],
    });
    await worker.waitForOutput(new RegExp(`Discarding revoked task: demo\\.echo\\[${got.id}\\]`));
    expect(worker.output()).not.toMatch(new RegExp(`Task demo\\.echo\\[${got.id}\\] succeeded`));
  });

  it('demo.retry(3) returns 4, with RETRY states seen on the way', async () => {
    const watched = await side.sendAndWatch('demo.retry', [3], 0.005);
    expect(watched).toMatchObject({ state: 'SUCCESS', result: 4 });
    const states = watched.states.map((s) => s.state);
    expect(states.filter((s) => !['PENDING', 'RETRY', 'SUCCESS'].includes(s))).toEqual([]);
    expect(states[states.length - 1]).toBe('SUCCESS');
    expect(worker.output()).toMatch(new RegExp(`Task demo\\.retry\\[${watched.id}\\] retry:`));
  });

  it('demo.progress(20): Python polls PROGRESS {current, total} through AsyncResult.state/info', async () => {
    expectProgress(await side.sendAndWatch('demo.progress', [20]), 20);
  });

  it("demo.fail('boom'): Python's .get() raises builtins.ValueError('boom')", async () => {
    expectBoom(await side.sendAndGet('demo.fail', ['boom']));
  });

  it('an unknown task: FAILURE with celery.exceptions.NotRegistered', async () => {
    const got = await side.sendAndGet('demo.does_not_exist', [1]);
    expect(got).toMatchObject({
      state: 'FAILURE',
      exc_type: 'NotRegistered',
      exc_module: 'celery.exceptions',
      exc_args: ['demo.does_not_exist'],
      exc_message: "'demo.does_not_exist'",
    });
    expect(got.exc_mro).toContain('builtins.KeyError');
    await worker.waitForOutput(/Received unregistered task of type 'demo\.does_not_exist'/);
  });

  it('`celery` is left empty, with the worker as its one consumer', async () => {
    // (Reply queues of the client.py runs that only polled state — basic.get, never a consumer —
    // stay behind: that is Python's rpc client, auto_delete needs a consumer to have come and gone.)
    const celery = (await listQueues(VHOST)).find((q) => q.name === 'celery');
    expect(celery).toMatchObject({ messages: 0, messages_unacknowledged: 0, consumers: 1 });
  });
});

describe('Python producer -> Celeriac worker over AMQP, Redis results', () => {
  const VHOST = 'amqp-interop-redis';
  let url = '';
  let worker: ProcessHandle;
  const side = pythonSide(() => ({ BROKER_URL: url, RESULT_BACKEND: testRedisUrl(RESULTS_DB) }));

  beforeAll(async () => {
    await flushDb(RESULTS_DB);
    url = await freshVhost(VHOST);
    worker = await startCeleriacWorker({ brokerUrl: url, backendUrl: testRedisUrl(RESULTS_DB), concurrency: 4 });
  });

  afterAll(async () => {
    await worker?.stop();
  });

  it('demo.add(2, 3) == 5, stored as celery-task-meta-<id>, readable from another process', async () => {
    const reply = await side.sendAndWait('demo.add', [2, 3]);
    expect(reply).toMatchObject({ state: 'SUCCESS', result: 5 });
    const doc = await withRedis(RESULTS_DB, (r) => r.get(`celery-task-meta-${reply.id}`));
    expect(JSON.parse(doc ?? '{}')).toMatchObject({ status: 'SUCCESS', result: 5, task_id: reply.id });
    // Unlike rpc://, a Redis result is readable by any process.
    expect(await side.py<GetReply>({ op: 'get', id: reply.id })).toMatchObject({ state: 'SUCCESS', result: 5 });
  });

  it("demo.fail('boom'): builtins.ValueError('boom')", async () => {
    const sent = await side.py<SendReply>({ op: 'send', task: 'demo.fail', args: ['boom'] });
    expectBoom(await side.py<GetReply>({ op: 'get', id: sent.id, timeout: 20 }));
  });

  it('demo.progress(20): PROGRESS {current, total} while it runs, then 20', async () => {
    expectProgress(await side.sendAndWatch('demo.progress', [20]), 20);
  });
});

describe('Celeriac TypeScript producer over AMQP with rpc:// results', () => {
  const VHOST = 'amqp-interop-ts';
  const PY_QUEUE = 'py';
  let url = '';
  let pyWorker: ProcessHandle;
  let worker: ProcessHandle;
  let app: Celeriac;

  beforeAll(async () => {
    url = await freshVhost(VHOST);
    [pyWorker, worker] = await Promise.all([
      startPythonWorker({ brokerUrl: url, backendUrl: 'rpc://', queues: [PY_QUEUE] }),
      startCeleriacWorker({ brokerUrl: url, backendUrl: 'rpc://', concurrency: 4 }),
    ]);
    app = new Celeriac({ brokerUrl: url, resultBackend: 'rpc://' });
  });

  afterAll(async () => {
    await app?.close();
    // A Python worker on amqp takes up to ~10 s to see SIGTERM (see rabbit-infra.test.ts): no
    // need to wait for a graceful exit here.
    await Promise.all([worker?.stop(), pyWorker?.stop(3_000)]);
  });

  it('-> Python worker: py.add(2, 3) == 5', async () => {
    const res = await app.sendTask<number>('py.add', [2, 3], {}, { queue: PY_QUEUE });
    expect(await res.get({ timeout: 20 })).toBe(5);
    expect(await res.state()).toBe('SUCCESS');
    const kw = await app.sendTask<number>('py.add', [], { x: 2, y: 40 }, { queue: PY_QUEUE });
    expect(await kw.get({ timeout: 20 })).toBe(42);
    await pyWorker.waitForOutput(new RegExp(`Task py\\.add\\[${res.id}\\] succeeded`));
  });

  it("-> Python worker: py.fail('boom') throws RemoteTaskError ValueError('boom')", async () => {
    const res = await app.sendTask('py.fail', ['boom'], {}, { queue: PY_QUEUE });
    const err = await caught(res.get({ timeout: 20 }));
    expect(err).toBeInstanceOf(RemoteTaskError);
    const remote = err as RemoteTaskError;
    expect(remote.name).toBe('ValueError');
    expect(remote.pyModule).toBe('builtins');
    expect(remote.message).toBe('boom');
    expect(remote.taskId).toBe(res.id);
    expect(remote.remoteTraceback).toMatch(/ValueError: boom/);
    expect(await res.state()).toBe('FAILURE');
  });

  it('-> Python worker: py.progress states arrive on the reply queue, then the result', async () => {
    const res = await app.sendTask<number>('py.progress', [10], { delay: 0.05 }, { queue: PY_QUEUE });
    const seen = await progressSeen(res);
    expect(seen.length).toBeGreaterThanOrEqual(3);
    for (const info of seen) expect(info).toEqual({ current: expect.any(Number), total: 10 });
    expect(await res.get({ timeout: 20 })).toBe(10);
  });

  it('-> Celeriac worker: demo.add(2, 3) == 5 and demo.fail raises RemoteTaskError ValueError', async () => {
    const res = await app.sendTask<number>('demo.add', [2, 3]);
    expect(await res.get({ timeout: 20 })).toBe(5);
    const failed = await app.sendTask('demo.fail', ['boom']);
    const err = await caught(failed.get({ timeout: 20 }));
    expect(err).toBeInstanceOf(RemoteTaskError);
    expect((err as RemoteTaskError).name).toBe('ValueError');
    expect((err as RemoteTaskError).message).toBe('boom');
    await worker.waitForOutput(new RegExp(`Task demo\\.add\\[${res.id}\\] succeeded`));
  });

  it('-> both at once: results for either worker come back on the one reply queue', async () => {
    const results = await Promise.all([
      ...[1, 2, 3, 4, 5].map((i) => app.sendTask<number>('py.add', [i, i], {}, { queue: PY_QUEUE })),
      ...[1, 2, 3, 4, 5].map((i) => app.sendTask<number>('demo.add', [i, 100])),
    ]);
    const values = await Promise.all(results.map((r) => r.get({ timeout: 20 })));
    expect(values).toEqual([2, 4, 6, 8, 10, 101, 102, 103, 104, 105]);
    // One reply queue for the app (Celery's oid): durable, auto_delete, no x-arguments needed.
    const replyQueues = (await listQueues(VHOST)).filter((q) => /^[0-9a-f-]{36}$/.test(q.name));
    expect(replyQueues).toHaveLength(1);
    const tsReply = replyQueues[0]!;
    expect(tsReply).toMatchObject({ durable: true, auto_delete: true, exclusive: false, consumers: 1 });

    // Declared as Python's rpc:// client declares its own: same flags, same x-arguments.
    const sent = await pyClient<SendReply>(
      { op: 'send', task: 'py.add', args: [1, 1], options: { queue: PY_QUEUE } },
      { env: { BROKER_URL: url, RESULT_BACKEND: 'rpc://' } },
    );
    const pyReply = (await listQueues(VHOST)).find((q) => /^[0-9a-f-]{36}$/.test(q.name) && q.name !== tsReply.name);
    if (!pyReply) throw new Error(`no reply queue of the Python client (task ${sent.id})`);
    const pick = (q: QueueInfo) => ({ durable: q.durable, auto_delete: q.auto_delete, exclusive: q.exclusive });
    expect(pick(tsReply)).toEqual(pick(pyReply));
    const args = await queueArguments(VHOST);
    expect(args[tsReply.name]).toEqual(args[pyReply.name]);
    expect(args[pyReply.name]).toEqual({ 'x-expires': 86_400_000 }); // result_expires, 1 day
  });
});
