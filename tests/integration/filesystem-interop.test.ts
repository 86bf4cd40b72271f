// FilesystemTransport and FileBackend against real Python Celery/kombu 5.7 (no mocks): Python
// producer -> Celeriac consumer, Celeriac producer -> kombu consumer and Celery worker, and the
// file result backend in both directions. No redis is used.
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { testTmpDir } from '../helpers/env';
import { runPyJson } from '../helpers/python';
import { startPythonWorker } from '../helpers/pyworker';
import type { BrokerMessage, Delivery } from '../../workers/transports/transport';
import { FilesystemTransport } from '../../workers/transports/filesystem';
import { FileBackend } from '../../workers/backends/file';
import type { ResultMeta } from '../../workers/backends/backend';

jest.setTimeout(60_000);

interface Folders {
  root: string;
  toNode: string; // Python's data_folder_out, our data_folder_in
  toPy: string; // our data_folder_out, Python's data_folder_in
  control: string;
}

function folders(name: string): Folders {
  const root = testTmpDir(name);
  const f = { root, toNode: path.join(root, 'to-node'), toPy: path.join(root, 'to-py'), control: path.join(root, 'control') };
  for (const dir of [f.toNode, f.toPy, f.control]) fs.mkdirSync(dir);
  return f;
}

/** broker_transport_options for the Python side of `f` (kombu's option names). */
function pyOptions(f: Folders): string {
  return JSON.stringify({ data_folder_in: f.toPy, data_folder_out: f.toNode, control_folder: f.control, polling_interval: 0.1 });
}

const open: FilesystemTransport[] = [];
const warnings: string[] = [];

async function celeriac(f: Folders): Promise<FilesystemTransport> {
  const t = new FilesystemTransport({
    dataFolderIn: f.toNode, dataFolderOut: f.toPy, controlFolder: f.control, pollInterval: 20,
    logger: { warn: (m) => warnings.push(m) },
  });
  open.push(t);
  await t.connect();
  return t;
}

afterEach(async () => {
  while (open.length) await open.pop()!.close();
});

async function until(pred: () => boolean, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A Celery protocol v2 task message, built by hand the way celery.app.amqp.as_task_v2 does. */
function celeryTask(id: string, task: string, args: unknown[], kwargs: Record<string, unknown> = {}): BrokerMessage {
  return {
    body: Buffer.from(JSON.stringify([args, kwargs, { callbacks: null, errbacks: null, chain: null, chord: null }])),
    contentType: 'application/json',
    contentEncoding: 'utf-8',
    headers: {
      lang: 'py', task, id, shadow: null, eta: null, expires: null, group: null, group_index: null,
      retries: 0, timelimit: [null, null], root_id: id, parent_id: null,
      argsrepr: JSON.stringify(args), kwargsrepr: JSON.stringify(kwargs), origin: 'celeriac@test', ignore_result: false,
    },
    properties: { correlation_id: id, reply_to: '', delivery_mode: 2, priority: 0 },
  };
}

describe('Python producer -> FilesystemTransport', () => {
  it('receives send_task() messages for the default queue and for queue="other"', async () => {
    const f = folders('fs-py-producer');
    const ids = await runPyJson<string[]>(`
import json, os
from celery import Celery
app = Celery('producer', broker='filesystem://')
app.conf.broker_transport_options = json.loads(os.environ['FS_OPTS'])
a = app.send_task('demo.add', (2, 3))
b = app.send_task('demo.add', (2, 3), queue='other')
print(json.dumps([a.id, b.id]))
`, { env: { FS_OPTS: pyOptions(f) } });

    // kombu wrote '<ms>_<uuid>.<queue>.msg' files and the exchange tables.
    expect(fs.readdirSync(f.toNode).map((n) => n.replace(/^\d+_[0-9a-f-]+\./, '')).sort()).toEqual(['celery.msg', 'other.msg']);
    expect(JSON.parse(fs.readFileSync(path.join(f.control, 'celery.exchange'), 'utf8'))).toEqual([['celery', '', 'celery']]);

    const t = await celeriac(f);
    const got: Delivery[] = [];
    await t.consume(['celery', 'other'], (d) => got.push(d));
    await until(() => got.length === 2);
    got.sort((x, y) => x.queue.localeCompare(y.queue));
    // Celery sends to a direct exchange as anon-exchange '' + routing_key=queue (celery/app/amqp.py).
    expect(got.map((d) => [d.queue, d.exchange, d.routingKey])).toEqual([['celery', '', 'celery'], ['other', '', 'other']]);
    for (const [i, d] of got.entries()) {
      expect(d.message.headers).toMatchObject({ task: 'demo.add', id: ids[i], lang: 'py' });
      expect(d.message.contentType).toBe('application/json');
      const body = JSON.parse(d.message.body.toString('utf8'));
      expect(body).toEqual([[2, 3], {}, { callbacks: null, errbacks: null, chain: null, chord: null }]);
      await t.ack(d);
    }
    expect(fs.readdirSync(f.toNode)).toEqual(['.celeriac']);

    // The binding Python declared routes our own publish to exchange 'celery' without a declare.
    await t.publish({ message: celeryTask(randomUUID(), 'demo.add', [1, 1]), exchange: 'other', routingKey: 'other' });
    expect(fs.readdirSync(f.toPy).filter((n) => n.endsWith('.other.msg'))).toHaveLength(1);
  });
});

describe('FilesystemTransport -> Python', () => {
  it('a kombu consumer receives our Celery v2 messages in publish order with intact headers and body', async () => {
    const f = folders('fs-kombu-consumer');
    const t = await celeriac(f);
    await t.declareQueue({ name: 'celery', exchange: 'celery', exchangeType: 'direct', routingKey: 'celery' });
    const ids = [randomUUID(), randomUUID(), randomUUID()];
    for (const [i, id] of ids.entries()) {
      await t.publish({ message: celeryTask(id, 'demo.add', [i, 10], { k: 'v' }), exchange: 'celery', routingKey: 'celery' });
    }
    interface Got { headers: Record<string, unknown>; payload: unknown; content_type: string; content_encoding: string; delivery_info: Record<string, unknown>; correlation_id: string }
    const got = await runPyJson<Got[]>(`
import json, os
from kombu import Connection
out = []
with Connection('filesystem://', transport_options=json.loads(os.environ['FS_OPTS'])) as conn:
    q = conn.SimpleQueue('celery')
    for _ in range(3):
        m = q.get(timeout=5)
        out.append({'headers': m.headers, 'payload': m.decode(), 'content_type': m.content_type,
                    'content_encoding': m.content_encoding, 'delivery_info': m.delivery_info,
                    'correlation_id': m.properties.get('correlation_id')})
        m.ack()
    q.close()
print(json.dumps(out))
`, { env: { FS_OPTS: pyOptions(f) } });
    expect(got.map((g) => g.headers.id)).toEqual(ids);
    for (const [i, g] of got.entries()) {
      expect(g.headers).toMatchObject({ task: 'demo.add', lang: 'py', root_id: ids[i], timelimit: [null, null], retries: 0 });
      expect(g.payload).toEqual([[i, 10], { k: 'v' }, { callbacks: null, errbacks: null, chain: null, chord: null }]);
      expect(g).toMatchObject({ content_type: 'application/json', content_encoding: 'utf-8', correlation_id: ids[i] });
      expect(g.delivery_info).toMatchObject({ exchange: 'celery', routing_key: 'celery' });
    }
  });

  it('kombu on the same folder never sees messages Celeriac has claimed (nor the .celeriac area)', async () => {
    const f = folders('fs-shared-folder');
    const shared = { ...f, toPy: f.toNode }; // one folder for both directions, as Celery users set it up
    const t = await celeriac(shared);
    await t.publish({ message: celeryTask('first', 'demo.add', [1, 1]), exchange: '', routingKey: 'celery' });
    await t.publish({ message: celeryTask('second', 'demo.add', [2, 2]), exchange: '', routingKey: 'celery' });
    t.setPrefetch(1);
    const got: Delivery[] = [];
    await t.consume(['celery'], (d) => got.push(d));
    await until(() => got.length === 1);
    await t.stopConsuming();
    expect(got[0].message.headers.id).toBe('first');
    const seen = await runPyJson<{ size: number; ids: string[]; after: number }>(`
import json, os
from kombu import Connection
with Connection('filesystem://', transport_options=json.loads(os.environ['FS_OPTS'])) as conn:
    q = conn.SimpleQueue('celery')
    size = q.qsize()
    ids = []
    while True:
        try:
            m = q.get(timeout=0.5)
        except q.Empty:
            break
        ids.append(m.headers['id'])
        m.ack()
    print(json.dumps({'size': size, 'ids': ids, 'after': q.qsize()}))
`, { env: { FS_OPTS: pyOptions(shared) } });
    expect(seen).toEqual({ size: 1, ids: ['second'], after: 0 });
    await t.ack(got[0]);
  });

  it('a Python Celery worker (-P solo) runs our messages and FileBackend reads its results', async () => {
    const f = folders('fs-celery-worker');
    const results = path.join(f.root, 'results');
    fs.mkdirSync(results);
    const worker = await startPythonWorker({
      brokerUrl: 'filesystem://',
      backendUrl: `file://${results}`,
      queues: ['celery'],
      extraEnv: { BROKER_TRANSPORT_OPTIONS: pyOptions(f) },
    });
    try {
      const t = await celeriac(f);
      await t.declareQueue({ name: 'celery', exchange: 'celery', exchangeType: 'direct', routingKey: 'celery' });
      const ok = randomUUID();
      const bad = randomUUID();
      await t.publish({ message: celeryTask(ok, 'py.add', [2, 3]), exchange: 'celery', routingKey: 'celery' });
      await t.publish({ message: celeryTask(bad, 'py.fail', ['boom']), exchange: 'celery', routingKey: 'celery' });
      const backend = new FileBackend(`file://${results}`, { pollIntervalMs: 20 });
      await backend.connect();
      expect(await backend.waitFor(ok, 20_000)).toMatchObject({ status: 'SUCCESS', result: 5, task_id: ok });
      const failed = await backend.waitFor(bad, 20_000);
      expect(failed).toMatchObject({
        status: 'FAILURE', task_id: bad, result: { exc_type: 'ValueError', exc_message: ['boom'], exc_module: 'builtins' },
      });
      expect(failed.traceback).toContain('ValueError: boom');
    } catch (err) {
      throw new Error(`${(err as Error).message}\n--- worker output ---\n${worker.output()}`, { cause: err });
    } finally {
      await worker.stop();
    }
  });
});

describe('FileBackend <-> Celery FilesystemBackend', () => {
  const meta = (taskId: string, status: string, result: unknown, traceback: string | null = null): ResultMeta => ({
    status, result, traceback, children: [], date_done: new Date().toISOString().replace('Z', '000+00:00'), task_id: taskId,
  });

  it('Python AsyncResult.get() reads what FileBackend stores (value, and ValueError for FAILURE)', async () => {
    const dir = testTmpDir('fs-backend-to-py');
    const backend = new FileBackend(`file://${dir}`);
    await backend.connect();
    const ok = randomUUID();
    const bad = randomUUID();
    // Python is already polling when the results appear: it must never see half a file.
    const py = runPyJson<{ ok: unknown; err: [string, string, unknown[]] | null; state: string }>(`
import json, os
from celery import Celery
from celery.result import AsyncResult
app = Celery('reader', backend=os.environ['BACKEND_URL'])
ok = AsyncResult(os.environ['OK_ID'], app=app).get(timeout=10, interval=0.05)
res = AsyncResult(os.environ['BAD_ID'], app=app)
try:
    res.get(timeout=10, interval=0.05)
    err = None
except Exception as exc:
    err = [type(exc).__name__, type(exc).__module__, list(exc.args)]
print(json.dumps({'ok': ok, 'err': err, 'state': res.state}))
`, { env: { BACKEND_URL: `file://${dir}`, OK_ID: ok, BAD_ID: bad } });
    await new Promise((r) => setTimeout(r, 700));
    await backend.store(meta(ok, 'SUCCESS', { sum: 5, items: [1, 'two', null] }));
    await backend.store(meta(bad, 'FAILURE', { exc_type: 'ValueError', exc_message: ['boom'], exc_module: 'builtins' },
      'Traceback (most recent call last):\nValueError: boom\n'));
    expect(await py).toEqual({ ok: { sum: 5, items: [1, 'two', null] }, err: ['ValueError', 'builtins', ['boom']], state: 'FAILURE' });
    expect(fs.readdirSync(dir).sort()).toEqual([`celery-task-meta-${ok}`, `celery-task-meta-${bad}`].sort());
  });

  it('FileBackend get/waitFor read Python store_result(), with a relative file://./ URL on both sides', async () => {
    const cwd = testTmpDir('fs-backend-from-py');
    fs.mkdirSync(path.join(cwd, 'results'));
    const backend = new FileBackend('file://./results', { cwd, pollIntervalMs: 20 });
    await backend.connect();
    const id = randomUUID();
    expect(await backend.get(id)).toBeNull();
    const waiting = backend.waitFor(id, 15_000);
    await runPyJson(`
import json, os
from celery import Celery
app = Celery('writer', backend='file://./results')
app.backend.store_result(os.environ['ID'], {'a': 1}, 'SUCCESS')
print(json.dumps(True))
`, { env: { ID: id }, cwd });
    const got = await waiting;
    // children is null here: store_result() without a request has no current task children.
    expect(got).toMatchObject({ status: 'SUCCESS', result: { a: 1 }, task_id: id, traceback: null, children: null });
    expect(typeof got.date_done).toBe('string');
    expect(await backend.get(id)).toEqual(got);
    expect(fs.existsSync(path.join(cwd, 'results', `celery-task-meta-${id}`))).toBe(true);
  });
});
