/**
 * The mongodb result backend (workers/backends/mongodb.ts) against real Python Celery 5.7 on the
 * run's FerretDB: a Celeriac worker and a Python worker share one broker (Redis, then RabbitMQ)
 * and one mongodb:// backend. Python reads what Celeriac wrote (get, state, info, exceptions,
 * GroupResult.restore, chords whose celery.chord_unlock runs on either side) and the reverse; the
 * documents each side writes have the same fields and BSON types; the first SUCCESS stays;
 * celery.backend_cleanup deletes by date_done; results wait out a Mongo that is down at start.
 */
import { MongoClient } from 'mongodb';
import { testMongoUrl, testRedisUrl, testTmpDir } from '../helpers/env';
import { freshVhost, testAmqpUrl } from '../helpers/rabbit';
import { startProcess, type ProcessHandle } from '../helpers/processes';
import { pyClient, runPyJson } from '../helpers/python';
import { startPythonWorker } from '../helpers/pyworker';
import { startCeleriacWorker } from '../helpers/celeriacWorker';
import { flushDb } from '../helpers/redis';
import { freePort } from '../setup/redisServer';
import { MONGO_SERVER_BIN } from '../setup/mongoServer';
import { Celeriac, chord, GroupResult } from '../../workers';
import { MongoBackend, type TaskMetaDocument } from '../../workers/backends/mongodb';
import { buildMeta } from '../../workers/backends/meta';

jest.setTimeout(120_000);

const PY_QUEUE = 'py';

async function withDb<T>(url: string, fn: (db: import('mongodb').Db) => Promise<T>): Promise<T> {
  const client = await MongoClient.connect(url);
  try {
    return await fn(client.db());
  } finally {
    await client.close();
  }
}

const rawDoc = (url: string, id: string): Promise<TaskMetaDocument | null> =>
  withDb(url, (db) => db.collection<TaskMetaDocument>('celery_taskmeta').findOne({ _id: id }));

/** Field name -> BSON-ish type, to compare what each side writes. */
function shape(doc: Record<string, unknown>): Record<string, string> {
  return Object.fromEntries(Object.entries(doc).map(([k, v]) => [k, v instanceof Date ? 'date' : v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v]));
}

describe.each([
  ['redis', () => Promise.resolve(testRedisUrl(70))],
  ['amqp', () => freshVhost('mongo-backend').then(() => testAmqpUrl('mongo-backend'))],
])('on the %s broker', (kind, brokerFor) => {
  const backendUrl = testMongoUrl(`backend_${kind}`);
  let brokerUrl: string;
  let app: Celeriac;
  const workers: ProcessHandle[] = [];
  const pyEnv = (): Record<string, string> => ({ BROKER_URL: brokerUrl, RESULT_BACKEND: backendUrl });

  beforeAll(async () => {
    brokerUrl = await brokerFor();
    if (kind === 'redis') await flushDb(70);
    await withDb(backendUrl, (db) => db.dropDatabase());
    workers.push(
      ...(await Promise.all([
        startCeleriacWorker({ brokerUrl, backendUrl, concurrency: 4 }),
        startPythonWorker({ brokerUrl, backendUrl, queues: [PY_QUEUE] }),
      ])),
    );
    app = new Celeriac({ brokerUrl, resultBackend: backendUrl });
  });

  afterAll(async () => {
    await app?.close();
    await Promise.all(workers.map((w) => w.stop()));
  });

  test('Python reads what Celeriac wrote (get, state, info, exception), and the documents look like Python\'s', async () => {
    const ours = await pyClient<{ id: string; state: string; result: unknown }>({ op: 'send', task: 'demo.add', args: [2, 3], wait: true }, { env: pyEnv() });
    expect(ours).toMatchObject({ state: 'SUCCESS', result: 5 });
    const theirs = await pyClient<{ id: string; state: string; result: unknown }>({ op: 'send', task: 'py.add', args: [2, 3], options: { queue: PY_QUEUE }, wait: true }, { env: pyEnv() });
    expect(theirs).toMatchObject({ state: 'SUCCESS', result: 5 });
    const [a, b] = await Promise.all([rawDoc(backendUrl, ours.id), rawDoc(backendUrl, theirs.id)]);
    expect(a).toEqual({ _id: ours.id, status: 'SUCCESS', result: '5', traceback: null, children: [], date_done: expect.any(Date) });
    expect(shape(a as unknown as Record<string, unknown>)).toEqual(shape(b as unknown as Record<string, unknown>));

    const failed = await pyClient<{ exc_type: string; exc_message: string; state: string }>({ op: 'send', task: 'demo.fail', args: ['no good'], wait: true }, { env: pyEnv() });
    expect(failed).toMatchObject({ state: 'FAILURE', exc_type: 'ValueError', exc_message: 'no good' });

    const progress = await pyClient<{ id: string }>({ op: 'send', task: 'demo.progress', args: [30] }, { env: pyEnv() });
    const watched = await pyClient<{ states: { state: string; info: unknown }[]; state: string; result: unknown }>({ op: 'watch', id: progress.id, timeout: 30 }, { env: pyEnv() });
    expect(watched.states.some((s) => s.state === 'PROGRESS' && (s.info as { total: number }).total === 30)).toBe(true);
    expect(watched).toMatchObject({ state: 'SUCCESS', result: 30 });
  });

  test('Celeriac reads what Python wrote (get, failure)', async () => {
    const ok = await app.sendTask<number>('py.add', [20, 22], {}, { queue: PY_QUEUE });
    expect(await ok.get({ timeout: 30 })).toBe(42);
    const bad = await app.sendTask('py.fail', ['boom'], {}, { queue: PY_QUEUE });
    await expect(bad.get({ timeout: 30 })).rejects.toThrow(/boom/);
  });

  test('GroupResult saved by Python is restored by Celeriac, and the other way', async () => {
    const saved = await runPyJson<{ id: string; ids: string[] }>(
      `import json
from celery import group
from pyapp import app
g = group([app.signature('demo.add', (i, i)) for i in range(3)]).apply_async()
g.save()
print(json.dumps({'id': g.id, 'ids': [r.id for r in g.results]}))`,
      { env: pyEnv() },
    );
    const backend = (await app.backend())!;
    const restored = await GroupResult.restore(saved.id, backend);
    expect(restored?.results.map((r) => r.id)).toEqual(saved.ids);
    expect(await restored!.get({ timeout: 30 })).toEqual([0, 2, 4]);

    const sent = await Promise.all([1, 2, 3].map((i) => app.sendTask<number>('py.add', [i, 10], {}, { queue: PY_QUEUE })));
    const ours = new GroupResult(`group-${kind}-${Date.now()}`, sent);
    await ours.save(backend);
    const back = await runPyJson<{ ids: string[]; values: number[] }>(
      `import json
from celery.result import GroupResult
from pyapp import app
# On this backend Celery's restore gives the list of AsyncResults (its _restore_group), not a GroupResult.
members = GroupResult.restore(${JSON.stringify(ours.id)}, app=app)
print(json.dumps({'ids': [r.id for r in members], 'values': [r.get(timeout=30) for r in members]}))`,
      { env: pyEnv() },
    );
    expect(back).toEqual({ ids: sent.map((r) => r.id), values: [11, 12, 13] });
    const groupDoc = await withDb(backendUrl, (db) => db.collection('celery_groupmeta').findOne({ _id: ours.id as never }));
    // Python's json.dumps spacing, as Celery's _save_group writes it.
    expect(groupDoc).toMatchObject({ result: `["${sent.map((r) => r.id).join('", "')}"]` });
    expect(groupDoc!.date_done).toBeInstanceOf(Date);
  });

  test('chords: Python header on Celeriac with chord_unlock on Python, and Celeriac chord_unlock over Python header tasks', async () => {
    const pySide = await runPyJson<number>(
      `import json
from celery import chord
from pyapp import app
r = chord([app.signature('demo.add', (i, i)) for i in range(4)], app.signature('py.tsum', queue='py'))()
print(json.dumps(r.get(timeout=60)))`,
      { env: pyEnv(), timeoutMs: 90_000 },
    );
    expect(pySide).toBe(12);

    const header = [1, 2, 3].map((i) => app.signature('py.add', [i, i], {}, { queue: PY_QUEUE }));
    const result = await chord(header, app.signature('demo.echo')).applyAsync();
    // celery.chord_unlock goes to the body's queue (celery), where only Celeriac listens.
    expect(await result.get({ timeout: 60 })).toEqual([2, 4, 6]);
  });
});

describe('backend behaviour on FerretDB', () => {
  const url = testMongoUrl('backend_rules');
  let backend: MongoBackend;

  beforeAll(async () => {
    await withDb(url, (db) => db.dropDatabase());
    backend = new MongoBackend({ url, expires: 3600 });
    await backend.connect();
  });
  afterAll(() => backend.close());

  test('the first SUCCESS is never overwritten, other states are', async () => {
    await backend.store(buildMeta('t-1', 'STARTED', { pid: 1 }));
    await backend.store(buildMeta('t-1', 'SUCCESS', 'first'));
    await backend.store(buildMeta('t-1', 'FAILURE', { exc_type: 'ValueError', exc_message: ['late'], exc_module: 'builtins' }));
    await backend.store(buildMeta('t-1', 'SUCCESS', 'second'));
    const doc = await rawDoc(url, 't-1');
    expect(doc).toMatchObject({ status: 'SUCCESS', result: '"first"' });
    expect((await backend.get('t-1'))?.result).toBe('first');
  });

  test('first writes are inserts; a document another worker wrote is replaced (SUCCESS kept); one task twice in a batch keeps its order', async () => {
    const other = new MongoBackend({ url });
    await other.connect();
    try {
      // Another worker's STARTED, then this backend's SUCCESS (its insert meets the document).
      await other.store(buildMeta('t-2', 'STARTED', { pid: 2 }));
      await backend.store(buildMeta('t-2', 'SUCCESS', 'done here'));
      expect(await rawDoc(url, 't-2')).toMatchObject({ status: 'SUCCESS', result: '"done here"' });
      // Another worker's SUCCESS stays when this backend stores a SUCCESS of its own.
      await other.store(buildMeta('t-3', 'SUCCESS', 'theirs'));
      await backend.store(buildMeta('t-3', 'SUCCESS', 'ours'));
      expect(await rawDoc(url, 't-3')).toMatchObject({ status: 'SUCCESS', result: '"theirs"' });
      // Same tick, one batch: PROGRESS then SUCCESS of one task, and a plain first write beside them.
      await Promise.all([
        backend.store(buildMeta('t-4', 'PROGRESS', { done: 1 })),
        backend.store(buildMeta('t-5', 'SUCCESS', 5)),
        backend.store(buildMeta('t-4', 'SUCCESS', 4)),
      ]);
      expect(await rawDoc(url, 't-4')).toMatchObject({ status: 'SUCCESS', result: '4' });
      expect(await rawDoc(url, 't-5')).toMatchObject({ status: 'SUCCESS', result: '5' });
    } finally {
      await other.close();
    }
  });

  test('a document the server refuses fails alone, as a TypeError (the worker stores EncodeError), its batch neighbours are written', async () => {
    // FerretDB refuses nested arrays (e.g. a chord body's args with result_extended).
    const nested = backend.store(buildMeta('t-nested', 'SUCCESS', 1, { extended: true, request: { task: 'x', args: [[1, 2]] } }));
    const plain = backend.store(buildMeta('t-plain', 'SUCCESS', [[1, 2]]));
    await expect(nested).rejects.toThrow(TypeError);
    await plain;
    expect(await backend.get('t-plain')).toMatchObject({ status: 'SUCCESS', result: [[1, 2]] });
  });

  test('mongodb_backend_settings pick the database and collections', async () => {
    const custom = new MongoBackend({ url, settings: { database: 'backend_custom', taskmeta_collection: 'metas', groupmeta_collection: 'groups' } });
    await custom.connect();
    try {
      await custom.store(buildMeta('t-custom', 'SUCCESS', [1, 'two']));
      await custom.saveGroup('g-custom', ['t-custom']);
      const doc = await withDb(testMongoUrl('backend_custom'), (db) => db.collection('metas').findOne({ _id: 't-custom' as never }));
      expect(doc).toMatchObject({ status: 'SUCCESS', result: '[1, "two"]' });
      expect(await custom.restoreGroup('g-custom')).toMatchObject({ id: 'g-custom', taskIds: ['t-custom'] });
    } finally {
      await custom.close();
    }
  });

  test('celery.backend_cleanup sent by Python deletes task and group documents done before now - result_expires', async () => {
    const brokerUrl = testRedisUrl(71);
    await flushDb(71);
    const cleanupUrl = testMongoUrl('backend_cleanup');
    await withDb(cleanupUrl, async (db) => {
      await db.dropDatabase();
      const old = new Date(Date.now() - 2 * 86_400_000);
      await db.collection('celery_taskmeta').insertMany([
        { _id: 'old' as never, status: 'SUCCESS', result: '1', traceback: null, children: [], date_done: old },
        { _id: 'new' as never, status: 'SUCCESS', result: '1', traceback: null, children: [], date_done: new Date() },
        { _id: 'running' as never, status: 'STARTED', result: '{}', traceback: null, children: [], date_done: null },
      ]);
      await db.collection('celery_groupmeta').insertOne({ _id: 'old-group' as never, result: '[]', date_done: old });
    });
    const worker = await startCeleriacWorker({ brokerUrl, backendUrl: cleanupUrl, concurrency: 1 });
    try {
      const sent = await pyClient<{ state: string }>({ op: 'send', task: 'celery.backend_cleanup', wait: true, timeout: 30 }, { env: { BROKER_URL: brokerUrl, RESULT_BACKEND: cleanupUrl } });
      expect(sent.state).toBe('SUCCESS');
      const left = await withDb(cleanupUrl, async (db) => ({
        tasks: (await db.collection('celery_taskmeta').find({}, { projection: { _id: 1 } }).toArray()).map((d) => String(d._id)).sort(),
        groups: await db.collection('celery_groupmeta').countDocuments(),
      }));
      expect(left.groups).toBe(0);
      expect(left.tasks).toEqual(expect.arrayContaining(['new', 'running']));
      expect(left.tasks).not.toContain('old');
    } finally {
      await worker.stop();
    }
  });

  test('result_extended: the same fields as Python writes (name, args, kwargs, worker, retries, queue)', async () => {
    const brokerUrl = testRedisUrl(73);
    await flushDb(73);
    const extUrl = testMongoUrl('backend_extended');
    await withDb(extUrl, (db) => db.dropDatabase());
    const both = await Promise.all([
      startCeleriacWorker({ brokerUrl, backendUrl: extUrl, concurrency: 1, env: { CELERIAC_RESULT_EXTENDED: 'true' } }),
      startPythonWorker({ brokerUrl, backendUrl: extUrl, queues: [PY_QUEUE], extraEnv: { RESULT_EXTENDED: '1' } }),
    ]);
    try {
      const env = { BROKER_URL: brokerUrl, RESULT_BACKEND: extUrl, RESULT_EXTENDED: '1' };
      const ours = await pyClient<{ id: string; result: unknown }>({ op: 'send', task: 'demo.add', args: [2, 3], wait: true }, { env });
      const theirs = await pyClient<{ id: string; result: unknown }>({ op: 'send', task: 'py.add', args: [2, 3], options: { queue: PY_QUEUE }, wait: true }, { env });
      const [a, b] = await Promise.all([rawDoc(extUrl, ours.id), rawDoc(extUrl, theirs.id)]);
      expect(a).toMatchObject({ status: 'SUCCESS', result: '5', name: 'demo.add', args: [2, 3], kwargs: {}, retries: 0, queue: 'celery', worker: expect.stringMatching(/^celeriac/) });
      expect(b).toMatchObject({ status: 'SUCCESS', result: '5', name: 'py.add', args: [2, 3], kwargs: {}, retries: 0, queue: PY_QUEUE });
      expect(shape(a as unknown as Record<string, unknown>)).toEqual(shape(b as unknown as Record<string, unknown>));
    } finally {
      await Promise.all(both.map((w) => w.stop()));
    }
  });

  test('MongoDB down at start: the worker runs tasks, their results are written once Mongo answers', async () => {
    const brokerUrl = testRedisUrl(72);
    await flushDb(72);
    const port = await freePort();
    const lateUrl = `mongodb://127.0.0.1:${port}/late_backend`;
    const worker = await startCeleriacWorker({ brokerUrl, backendUrl: lateUrl, concurrency: 2 });
    let server: ProcessHandle | null = null;
    try {
      const sent = await pyClient<{ ids: string[] }>({ op: 'send_list', task: 'demo.add', args_list: [[1, 1], [2, 2], [3, 3]] }, { env: { BROKER_URL: brokerUrl } });
      // The tasks run (and are acked) while nothing listens on the port.
      await worker.waitForOutput(/(succeeded[\s\S]*){3}/, 30_000);
      expect(worker.output()).toMatch(/unreachable/);
      server = startProcess(MONGO_SERVER_BIN, ['-port', String(port), '-dir', testTmpDir('mongo-late-backend')], { readyPattern: /^ready /m });
      await server.waitReady();
      const got = await pyClient<{ results: { out: { result: unknown } }[] }>({ op: 'batch', commands: sent.ids.map((id) => ({ op: 'get', id, timeout: 60 })) }, { env: { BROKER_URL: brokerUrl, RESULT_BACKEND: lateUrl }, timeoutMs: 120_000 });
      expect(got.results.map((r) => r.out.result)).toEqual([2, 4, 6]);
    } finally {
      await worker.stop();
      await server?.stop();
    }
  });
});
