// Celeriac's TypeScript producer (workers/app/app.ts) over a real redis-server: to a real Python
// Celery 5.7 worker (queue `py`) read back with Celeriac's AsyncResult, and to a real Celeriac
// worker (TS all the way, and the `celeriac call` CLI). Uses redis dbs 14 (broker) and 15 (results).
import { testRedisUrl } from '../helpers/env';
import { type ProcessHandle } from '../helpers/processes';
import { pyClient } from '../helpers/python';
import { progressSeen } from '../helpers/progress';
import { startPythonWorker } from '../helpers/pyworker';
import { celeriacCli, startCeleriacWorker } from '../helpers/celeriacWorker';
import { flushDb, withRedis } from '../helpers/redis';
import { Celeriac } from '../../workers/app/app';
import { RemoteTaskError } from '../../workers/producer/asyncResult';

const BROKER_DB = 14;
const BACKEND_DB = 15;
const PY_QUEUE = 'py';

let worker: ProcessHandle;
let pyWorker: ProcessHandle;
let app: Celeriac;

/** Python's isoformat() (microseconds, +00:00) as milliseconds since the epoch. */
function pyDateMs(iso: string): number {
  const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,6}))?\+00:00$/.exec(iso);
  if (!m) throw new Error(`not a UTC Python isoformat: ${iso}`);
  return Date.parse(`${m[1]}Z`) + Number(`0.${m[2] ?? '0'}`) * 1000;
}

async function rawMeta(id: string): Promise<Record<string, unknown>> {
  const raw = await withRedis(BACKEND_DB, (r) => r.get(`celery-task-meta-${id}`));
  if (raw === null) throw new Error(`no celery-task-meta-${id}`);
  return JSON.parse(raw) as Record<string, unknown>;
}


async function caught(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection');
}

const NESTED = {
  list: [1, 2.5, -3, null, true, false, { inner: ['a', { deeper: [] }] }],
  dict: { empty: {}, text: 'héllo wörld — 😀🚀 👨‍👩‍👧 中文 日本語 한국어' },
  'clé-キー': 'valeur',
};

beforeAll(async () => {
  await flushDb(BROKER_DB);
  await flushDb(BACKEND_DB);
  const brokerUrl = testRedisUrl(BROKER_DB);
  const backendUrl = testRedisUrl(BACKEND_DB);
  [worker, pyWorker] = await Promise.all([
    startCeleriacWorker({ brokerUrl, backendUrl, concurrency: 4 }),
    startPythonWorker({ brokerUrl, backendUrl, queues: [PY_QUEUE] }),
  ]);
  app = new Celeriac({ brokerUrl, resultBackend: backendUrl });
});

afterAll(async () => {
  await app?.close();
  await Promise.all([worker?.stop(), pyWorker?.stop()]);
});

describe('Celeriac producer -> Python Celery worker -> Celeriac AsyncResult', () => {
  it("py.add(2, 3) == 5, and kwargs py.add(x=2, y=40) == 42", async () => {
    const res = await app.sendTask<number>('py.add', [2, 3], {}, { queue: PY_QUEUE });
    expect(await res.get({ timeout: 20 })).toBe(5);
    expect(await res.state()).toBe('SUCCESS');
    expect(await res.info()).toBe(5);
    const kw = await app.sendTask<number>('py.add', [], { x: 2, y: 40 }, { queue: PY_QUEUE });
    expect(await kw.get({ timeout: 20 })).toBe(42);
    await pyWorker.waitForOutput(new RegExp(`Task py\\.add\\[${res.id}\\] succeeded`));
  });

  it('py.echo round-trips a nested, unicode payload', async () => {
    const res = await app.sendTask('py.echo', [NESTED], {}, { queue: PY_QUEUE });
    expect(await res.get({ timeout: 20 })).toEqual(NESTED);
  });

  it("py.fail('boom'): get() throws RemoteTaskError ValueError('boom')", async () => {
    const res = await app.sendTask('py.fail', ['boom'], {}, { queue: PY_QUEUE });
    const err = await caught(res.get({ timeout: 20 }));
    expect(err).toBeInstanceOf(RemoteTaskError);
    const remote = err as RemoteTaskError;
    expect(remote.name).toBe('ValueError');
    expect(remote.pyType).toBe('ValueError');
    expect(remote.pyModule).toBe('builtins');
    expect(remote.message).toBe('boom');
    expect(remote.taskId).toBe(res.id);
    expect(remote.remoteTraceback).toMatch(/ValueError: boom/);
    expect(await res.state()).toBe('FAILURE');
  });

  it('py.progress: state() shows PROGRESS {current, total} while it runs, then get() returns steps', async () => {
    const res = await app.sendTask<number>('py.progress', [20], { delay: 0.05 }, { queue: PY_QUEUE });
    const seen = (await progressSeen(res)) as { current: number; total: number }[];
    expect(seen.length).toBeGreaterThanOrEqual(3);
    for (const info of seen) {
      expect(info).toEqual({ current: expect.any(Number), total: 20 });
      expect(info.current).toBeGreaterThanOrEqual(1);
      expect(info.current).toBeLessThanOrEqual(20);
    }
    expect(await res.get({ timeout: 20 })).toBe(20);
  });

  it('countdown=2 from TS: the Python worker runs it no earlier than ~2 s later', async () => {
    const sentAt = Date.now();
    const res = await app.sendTask('py.echo', ['delayed'], {}, { queue: PY_QUEUE, countdown: 2 });
    expect(await res.get({ timeout: 20 })).toBe('delayed');
    expect(Date.now() - sentAt).toBeGreaterThanOrEqual(1800);
    const meta = await rawMeta(res.id);
    expect(pyDateMs(meta.date_done as string) - sentAt).toBeGreaterThanOrEqual(1800);
    await pyWorker.waitForOutput(new RegExp(`Task py\\.echo\\[${res.id}\\] received`));
  });

  it('serializer msgpack from TS: the Python worker decodes it', async () => {
    const add = await app.sendTask<number>('py.add', [20, 22], {}, { queue: PY_QUEUE, serializer: 'msgpack' });
    expect(await add.get({ timeout: 20 })).toBe(42);
    const echo = await app.sendTask('py.echo', [NESTED], {}, { queue: PY_QUEUE, serializer: 'msgpack' });
    expect(await echo.get({ timeout: 20 })).toEqual(NESTED);
    await withRedis(BROKER_DB, async (r) => {
      expect(await r.llen(PY_QUEUE)).toBe(0);
    });
  });

  it('the results Python stores are readable by Python too', async () => {
    const res = await app.sendTask<number>('py.add', [7, 8], {}, { queue: PY_QUEUE });
    expect(await res.get({ timeout: 20 })).toBe(15);
    const py = await pyClient<{ state: string; result: unknown }>(
      { op: 'result', id: res.id },
      { env: { BROKER_URL: testRedisUrl(BROKER_DB), RESULT_BACKEND: testRedisUrl(BACKEND_DB) } },
    );
    expect(py).toMatchObject({ state: 'SUCCESS', result: 15 });
  });
});

describe('Celeriac producer -> Celeriac worker', () => {
  it('demo.add via app.sendTask == 5; demo.fail throws RemoteTaskError ValueError', async () => {
    const res = await app.sendTask<number>('demo.add', [2, 3]);
    expect(await res.get({ timeout: 20 })).toBe(5);
    expect(await res.state()).toBe('SUCCESS');
    await worker.waitForOutput(new RegExp(`Task demo\\.add\\[${res.id}\\] succeeded`));

    const failed = await app.sendTask('demo.fail', ['kaput']);
    const err = await caught(failed.get({ timeout: 20 }));
    expect(err).toBeInstanceOf(RemoteTaskError);
    expect((err as RemoteTaskError).name).toBe('ValueError');
    expect((err as RemoteTaskError).message).toBe('kaput');
  });

  it('`celeriac call demo.add 2 3 --wait` prints the task id and 5', async () => {
    const out = await celeriacCli([
      'call', 'demo.add', '2', '3',
      '-b', testRedisUrl(BROKER_DB),
      '--result-backend', testRedisUrl(BACKEND_DB),
      '--wait',
    ]);
    expect(out.code).toBe(0);
    const lines = out.stdout.trim().split('\n');
    expect(lines).toHaveLength(2);
    const [id, value] = lines as [string, string];
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expect(value).toBe('5');
    expect(await rawMeta(id)).toMatchObject({ status: 'SUCCESS', result: 5, task_id: id });
    await worker.waitForOutput(new RegExp(`Task demo\\.add\\[${id}\\] succeeded`));
  });
});
