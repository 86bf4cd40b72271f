/**
 * FilesystemTransport and FileBackend against real temp directories (no servers, no Python).
 * Python interop lives in tests/integration/filesystem-interop.test.ts.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { BrokerMessage, Delivery } from '../../workers/transports/transport';
import { FilesystemTransport, type FilesystemTransportOptions } from '../../workers/transports/filesystem';
import {
  claimFolderName,
  compareMessageNames,
  localHost,
  queueOfFileName,
} from '../../workers/transports/filesystemLayout';
import { topicPattern } from '../../workers/transports/filesystemExchange';
import { FileBackend, fileBackendPath } from '../../workers/backends/file';
import { TimeoutError } from '../../workers/backends/errors';
import type { ResultMeta } from '../../workers/backends/backend';

const ROOT = path.resolve(__dirname, '..', '..');
const MSG_NAME = /^\d+_[0-9a-f-]{36}\.(.+)\.msg$/;

let tmp: string;
const open: FilesystemTransport[] = [];

beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'celeriac-fs-'));
});

afterEach(async () => {
  while (open.length) await open.pop()!.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

function collectingLogger(): { warn(msg: string): void; lines: string[] } {
  const lines: string[] = [];
  return { lines, warn: (msg: string) => lines.push(msg) };
}

async function transport(opts: Partial<FilesystemTransportOptions> = {}): Promise<FilesystemTransport> {
  const t = new FilesystemTransport({
    dataFolderIn: path.join(tmp, 'q'),
    dataFolderOut: path.join(tmp, 'q'),
    controlFolder: path.join(tmp, 'control'),
    processedFolder: path.join(tmp, 'processed'),
    pollInterval: 10,
    logger: collectingLogger(),
    ...opts,
  });
  open.push(t);
  await t.connect();
  return t;
}

function msg(n: number, extra: Partial<BrokerMessage> = {}): BrokerMessage {
  return {
    body: Buffer.from(JSON.stringify([[n], {}, {}])),
    contentType: 'application/json',
    contentEncoding: 'utf-8',
    headers: { task: 'demo.add', id: `id-${n}` },
    properties: { correlation_id: `id-${n}`, delivery_mode: 2 },
    ...extra,
  };
}

async function waitFor(pred: () => boolean, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const numberOf = (d: Delivery): number => (JSON.parse(d.message.body.toString()) as number[][])[0][0];
const queueFiles = (dir = path.join(tmp, 'q')): string[] => fs.readdirSync(dir).filter((n) => MSG_NAME.test(n));

describe('layout (kombu naming rules)', () => {
  it('matches files to queues the way kombu does (text after the first dot)', () => {
    expect(queueOfFileName('123_abc.celery.msg')).toBe('celery');
    expect(queueOfFileName('123_abc.celery.pidbox.msg')).toBe('celery.pidbox');
    expect(queueOfFileName('.celeriac')).toBeNull();
    expect(queueOfFileName('123_abc.celery.msg.reason')).toBeNull();
  });

  it('orders by stamp, numerically when the stamp gains a digit', () => {
    const names = ['20_b.q.msg', '100_a.q.msg', '9_z.q.msg', '20_a.q.msg'];
    expect([...names].sort(compareMessageNames)).toEqual(['9_z.q.msg', '20_a.q.msg', '20_b.q.msg', '100_a.q.msg']);
  });

  it('builds topic patterns like kombu key_to_pattern', () => {
    expect(topicPattern('a.*.b')).toBe('^a\\.[^\\.]+\\.b$');
    expect(topicPattern('x.#')).toBe('^x\\..*?$');
    expect(topicPattern('my-key')).toBe('^my\\-key$');
  });

  it('maps kombu transport option names', () => {
    const t = FilesystemTransport.fromOptions({
      data_folder_in: '/tmp/a', data_folder_out: '/tmp/b', control_folder: '/tmp/c',
      processed_folder: '/tmp/p', store_processed: 'true', polling_interval: 0.05,
    });
    expect([t.dataFolderIn, t.dataFolderOut, t.controlFolder, t.processedFolder, t.storeProcessed])
      .toEqual(['/tmp/a', '/tmp/b', '/tmp/c', '/tmp/p', true]);
  });
});

describe('FilesystemTransport', () => {
  it('publishes a kombu-named envelope file and consumes it back', async () => {
    const t = await transport();
    await t.publish({ message: msg(1), exchange: '', routingKey: 'celery' });
    const [file] = queueFiles();
    expect(file).toMatch(MSG_NAME);
    expect(queueOfFileName(file)).toBe('celery');
    const env = JSON.parse(fs.readFileSync(path.join(tmp, 'q', file), 'utf8'));
    expect(env).toMatchObject({
      'content-type': 'application/json',
      headers: { task: 'demo.add' },
      properties: { body_encoding: 'base64', delivery_info: { exchange: '', routing_key: 'celery' }, priority: 0 },
    });
    expect(Buffer.from(env.body, 'base64').toString()).toBe('[[1],{},{}]');
    expect(fs.readdirSync(path.join(tmp, 'q', '.celeriac', 'tmp'))).toEqual([]);

    const got: Delivery[] = [];
    await t.consume(['celery'], (d) => got.push(d));
    await waitFor(() => got.length === 1);
    expect(got[0]).toMatchObject({ queue: 'celery', routingKey: 'celery', exchange: '', redelivered: false });
    expect(got[0].message.headers.task).toBe('demo.add');
    expect(numberOf(got[0])).toBe(1);
    expect(got[0].deliveryTag).toBe(env.properties.delivery_tag);
    // Claimed, not deleted: the file sits in the hidden claim folder until ack.
    expect(queueFiles()).toEqual([]);
    expect(fs.readdirSync(t.claimDir)).toEqual([file]);
    await t.ack(got[0]);
    expect(fs.readdirSync(t.claimDir)).toEqual([]);
  });

  it('routes through exchange tables in the control folder like kombu', async () => {
    const log = collectingLogger();
    const t = await transport({ logger: log });
    await t.declareQueue({ name: 'celery', exchange: 'celery', exchangeType: 'direct', routingKey: 'celery' });
    await t.declareQueue({ name: 'celery', exchange: 'celery', exchangeType: 'direct', routingKey: 'celery' });
    await t.declareQueue({ name: 'logs', exchange: 'events', exchangeType: 'topic', routingKey: 'task.*' });
    expect(JSON.parse(fs.readFileSync(path.join(tmp, 'control', 'celery.exchange'), 'utf8')))
      .toEqual([['celery', '', 'celery']]);
    expect(JSON.parse(fs.readFileSync(path.join(tmp, 'control', 'events.exchange'), 'utf8')))
      .toEqual([['task.*', '^task\\.[^\\.]+$', 'logs']]);

    await t.publish({ message: msg(1), exchange: 'celery', routingKey: 'celery' });
    await t.publish({ message: msg(2), exchange: 'events', routingKey: 'task.sent' });
    await t.publish({ message: msg(3), exchange: 'events', routingKey: 'worker.online' });
    await t.publish({ message: msg(4), exchange: 'celery', routingKey: 'nope' });
    expect(queueFiles().map(queueOfFileName).sort()).toEqual(['celery', 'logs']);
    expect(log.lines.filter((l) => l.includes('dropped'))).toHaveLength(2);
    await expect(t.publish({ message: msg(5), exchange: '../x', routingKey: 'k' })).rejects.toThrow(/Invalid exchange/);
  });

  it('never holds more unacked deliveries than the prefetch count', async () => {
    const t = await transport();
    for (let i = 0; i < 10; i += 1) await t.publish({ message: msg(i), exchange: '', routingKey: 'q' });
    t.setPrefetch(3);
    const got: Delivery[] = [];
    await t.consume(['q'], (d) => got.push(d));
    await waitFor(() => got.length === 3);
    await sleep(100);
    expect(got).toHaveLength(3);
    expect(t.unackedCount).toBe(3);
    await t.ack(got[0]);
    await waitFor(() => got.length === 4);
    await sleep(50);
    expect(got).toHaveLength(4);
    t.setPrefetch(0);
    await waitFor(() => got.length === 10);
    // FIFO by file name: a single producer's burst comes out in publish order.
    expect(got.map(numberOf)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it('ack deletes the file, or keeps it in processed_folder with store_processed', async () => {
    const t = await transport({ storeProcessed: true });
    await t.publish({ message: msg(1), exchange: '', routingKey: 'q' });
    const [name] = queueFiles();
    const got: Delivery[] = [];
    await t.consume(['q'], (d) => got.push(d));
    await waitFor(() => got.length === 1);
    await t.ack(got[0]);
    expect(fs.readdirSync(path.join(tmp, 'processed'))).toEqual([name]);
    expect(queueFiles()).toEqual([]);
    expect(fs.readdirSync(t.claimDir)).toEqual([]);
  });

  it('reject(requeue) puts the message back at the tail, marked redelivered; reject() drops it', async () => {
    const t = await transport();
    await t.publish({ message: msg(1), exchange: '', routingKey: 'q' });
    await t.publish({ message: msg(2), exchange: '', routingKey: 'q' });
    t.setPrefetch(1);
    const got: Delivery[] = [];
    await t.consume(['q'], (d) => got.push(d));
    await waitFor(() => got.length === 1);
    expect(numberOf(got[0])).toBe(1);
    await t.reject(got[0], true);
    await waitFor(() => got.length === 2);
    expect(numberOf(got[1])).toBe(2); // 1 went to the tail
    await t.ack(got[1]);
    await waitFor(() => got.length === 3);
    expect(numberOf(got[2])).toBe(1);
    expect(got[2].redelivered).toBe(true);
    await t.reject(got[2], false);
    await sleep(50);
    expect(got).toHaveLength(3);
    expect(queueFiles()).toEqual([]);
    expect(fs.readdirSync(t.claimDir)).toEqual([]);
  });

  it('close() returns unacked messages to the queue under their original names', async () => {
    const t = await transport();
    await t.publish({ message: msg(1), exchange: '', routingKey: 'q' });
    const names = queueFiles();
    const got: Delivery[] = [];
    await t.consume(['q'], (d) => got.push(d));
    await waitFor(() => got.length === 1);
    await t.close();
    expect(queueFiles()).toEqual(names);
    expect(fs.existsSync(t.claimDir)).toBe(false);
    const env = JSON.parse(fs.readFileSync(path.join(tmp, 'q', names[0]), 'utf8'));
    expect(env.redelivered).toBe(true);
  });

  it('restores claims of a dead owner (pid of an exited process) on start', async () => {
    const child = spawnSync(process.execPath, ['-e', '']);
    const deadPid = child.pid!;
    const producer = await transport();
    await producer.publish({ message: msg(7), exchange: '', routingKey: 'q' });
    const [name] = queueFiles();
    const deadDir = path.join(tmp, 'q', '.celeriac', 'claims', claimFolderName({ pid: deadPid, host: localHost(), id: 'x' }));
    fs.mkdirSync(deadDir, { recursive: true });
    fs.renameSync(path.join(tmp, 'q', name), path.join(deadDir, name));
    fs.writeFileSync(path.join(deadDir, '.tmp-leftover'), '{"half');

    const t = await transport();
    expect(fs.existsSync(deadDir)).toBe(false);
    const got: Delivery[] = [];
    await t.consume(['q'], (d) => got.push(d));
    await waitFor(() => got.length === 1);
    expect(numberOf(got[0])).toBe(7);
    expect(got[0].redelivered).toBe(true);
  });

  it('restores claims whose owner stopped heartbeating for visibilityTimeout, not live ones', async () => {
    const producer = await transport();
    await producer.publish({ message: msg(1), exchange: '', routingKey: 'q' });
    await producer.publish({ message: msg(2), exchange: '', routingKey: 'q' });
    const [a, b] = queueFiles().sort(compareMessageNames);
    const claims = path.join(tmp, 'q', '.celeriac', 'claims');
    const stale = path.join(claims, claimFolderName({ pid: 1, host: 'other-host', id: 'old' }));
    const fresh = path.join(claims, claimFolderName({ pid: 1, host: 'other-host', id: 'new' }));
    fs.mkdirSync(stale, { recursive: true });
    fs.mkdirSync(fresh, { recursive: true });
    fs.renameSync(path.join(tmp, 'q', a), path.join(stale, a));
    fs.renameSync(path.join(tmp, 'q', b), path.join(fresh, b));
    const old = new Date(Date.now() - 120_000);
    fs.utimesSync(stale, old, old);

    const t = await transport({ visibilityTimeout: 60 });
    expect(queueFiles()).toEqual([a]);
    expect(fs.readdirSync(fresh)).toEqual([b]);
    await t.close();
  });

  it('recovers the message a SIGKILLed consumer process had claimed', async () => {
    const producer = await transport();
    await producer.publish({ message: msg(42), exchange: '', routingKey: 'crash' });
    const script = path.join(tmp, 'child.ts');
    fs.writeFileSync(script, `
      import { FilesystemTransport } from ${JSON.stringify(path.join(ROOT, 'workers/transports/filesystem'))};
      const t = new FilesystemTransport({ dataFolderIn: ${JSON.stringify(path.join(tmp, 'q'))},
        dataFolderOut: ${JSON.stringify(path.join(tmp, 'q'))}, controlFolder: ${JSON.stringify(path.join(tmp, 'control'))},
        pollInterval: 10 });
      t.connect().then(() => t.consume(['crash'], (d) => process.stdout.write('claimed ' + d.deliveryTag + '\\n')));
    `);
    const child = spawn(process.execPath, ['-r', require.resolve('tsx/cjs'), script], { stdio: ['ignore', 'pipe', 'inherit'] });
    const exited = new Promise((r) => child.once('exit', r));
    await new Promise<void>((resolve, reject) => {
      child.stdout!.on('data', (b: Buffer) => b.toString().includes('claimed') && resolve());
      child.once('exit', () => reject(new Error('child exited before claiming')));
    });
    expect(queueFiles()).toEqual([]);
    child.kill('SIGKILL');
    await exited;

    const t = await transport();
    const got: Delivery[] = [];
    await t.consume(['crash'], (d) => got.push(d));
    await waitFor(() => got.length === 1);
    expect(numberOf(got[0])).toBe(42);
    expect(got[0].redelivered).toBe(true);
  }, 20_000);

  it('two consumers never deliver the same message twice (200 messages)', async () => {
    const producer = await transport();
    const a = await transport();
    const b = await transport();
    for (let i = 0; i < 200; i += 1) await producer.publish({ message: msg(i), exchange: '', routingKey: 'q' });
    const seen: number[] = [];
    const per = { a: 0, b: 0 };
    const handle = (t: FilesystemTransport, who: 'a' | 'b') => (d: Delivery): void => {
      seen.push(numberOf(d));
      per[who] += 1;
      setTimeout(() => void t.ack(d), Math.random() * 3);
    };
    a.setPrefetch(4);
    b.setPrefetch(4);
    await Promise.all([a.consume(['q'], handle(a, 'a')), b.consume(['q'], handle(b, 'b'))]);
    await waitFor(() => seen.length >= 200, 15_000);
    await sleep(100);
    expect(seen).toHaveLength(200);
    expect(new Set(seen).size).toBe(200);
    expect(per.a).toBeGreaterThan(0);
    expect(per.b).toBeGreaterThan(0);
  }, 20_000);

  it('moves invalid files aside with a reason and keeps delivering valid ones', async () => {
    const log = collectingLogger();
    const t = await transport({ logger: log });
    const q = path.join(tmp, 'q');
    await t.publish({ message: msg(1), exchange: '', routingKey: 'q' });
    const old = new Date(Date.now() - 60_000);
    fs.writeFileSync(path.join(q, '2_garbage.q.msg'), 'this is not json');
    fs.utimesSync(path.join(q, '2_garbage.q.msg'), old, old);
    fs.writeFileSync(path.join(q, '3_notenvelope.q.msg'), '{"hello": "world"}');
    fs.mkdirSync(path.join(q, '4_dir.q.msg'));
    await t.publish({ message: msg(2), exchange: '', routingKey: 'q' });

    const got: Delivery[] = [];
    await t.consume(['q'], (d) => {
      got.push(d);
      void t.ack(d);
    });
    await waitFor(() => got.length === 2);
    await waitFor(() => fs.readdirSync(path.join(q, '.celeriac', 'bad')).length === 6);
    expect(got.map(numberOf)).toEqual([1, 2]);
    expect(fs.readdirSync(path.join(q, '.celeriac', 'bad')).sort()).toEqual([
      '2_garbage.q.msg', '2_garbage.q.msg.reason', '3_notenvelope.q.msg', '3_notenvelope.q.msg.reason',
      '4_dir.q.msg', '4_dir.q.msg.reason',
    ]);
    expect(fs.readFileSync(path.join(q, '.celeriac', 'bad', '2_garbage.q.msg.reason'), 'utf8')).toMatch(/not JSON/);
    expect(log.lines.filter((l) => l.includes('moved to'))).toHaveLength(3);
    expect(queueFiles()).toEqual([]);
  });

  it('does not quarantine a message that is still being written', async () => {
    const t = await transport();
    const q = path.join(tmp, 'q');
    const producer = await transport({ dataFolderOut: path.join(tmp, 'staging') });
    await producer.publish({ message: msg(9), exchange: '', routingKey: 'q' });
    const [name] = queueFiles(path.join(tmp, 'staging'));
    const full = fs.readFileSync(path.join(tmp, 'staging', name), 'utf8');
    // Simulate kombu's in-place write: the file appears with half its content.
    const fd = fs.openSync(path.join(q, name), 'w');
    fs.writeSync(fd, full.slice(0, 20));
    const got: Delivery[] = [];
    await t.consume(['q'], (d) => got.push(d));
    await sleep(150);
    expect(got).toHaveLength(0);
    fs.writeSync(fd, full.slice(20));
    fs.closeSync(fd);
    await waitFor(() => got.length === 1);
    expect(numberOf(got[0])).toBe(9);
    expect(fs.readdirSync(path.join(q, '.celeriac', 'bad'))).toEqual([]);
  });
});

describe('FileBackend', () => {
  const meta = (id: string, status: string, result: unknown): ResultMeta => ({
    status, result, traceback: null, children: [], date_done: '2024-01-01T00:00:00.000000+00:00', task_id: id,
  });

  it('resolves file:// URLs the way Celery does', () => {
    expect(fileBackendPath('file:///abs/results')).toBe('/abs/results');
    expect(fileBackendPath('file://localhost/abs/results')).toBe('/abs/results');
    expect(fileBackendPath('file://./data/results', '/srv/app')).toBe('/srv/app/data/results');
    expect(fileBackendPath('file://data', '/srv/app')).toBe('/srv/app/data');
    expect(() => fileBackendPath('/abs')).toThrow(/file URI scheme/);
  });

  it('stores celery-task-meta-<id> atomically and reads it back', async () => {
    const be = new FileBackend(`file://${tmp}/results`, { pollIntervalMs: 10 });
    await be.connect();
    expect(await be.get('t1')).toBeNull();
    await be.store(meta('t1', 'STARTED', null));
    expect((await be.get('t1'))?.status).toBe('STARTED');
    const waiting = be.waitFor('t1', 2000);
    await sleep(30);
    await be.store(meta('t1', 'SUCCESS', 5));
    expect((await waiting).result).toBe(5);
    expect(fs.readdirSync(path.join(tmp, 'results'))).toEqual(['celery-task-meta-t1']);
    // Celery never overwrites a stored SUCCESS.
    await be.store(meta('t1', 'FAILURE', null));
    expect((await be.get('t1'))?.status).toBe('SUCCESS');
    await be.forget('t1');
    expect(await be.get('t1')).toBeNull();
  });

  it('waitFor rejects with TimeoutError; cleanup() removes expired files only', async () => {
    const be = new FileBackend(`file://${tmp}`, { pollIntervalMs: 10, expires: 60, globalKeyprefix: 'app' });
    await be.connect();
    await expect(be.waitFor('nope', 50)).rejects.toBeInstanceOf(TimeoutError);
    await be.store(meta('old', 'SUCCESS', 1));
    await be.store(meta('new', 'SUCCESS', 2));
    expect(be.pathFor('old')).toBe(path.join(tmp, 'app_celery-task-meta-old'));
    const old = new Date(Date.now() - 120_000);
    fs.utimesSync(be.pathFor('old'), old, old);
    fs.writeFileSync(path.join(tmp, 'unrelated'), 'x');
    fs.utimesSync(path.join(tmp, 'unrelated'), old, old);
    expect(await be.cleanup()).toBe(1);
    expect(fs.readdirSync(tmp).sort()).toEqual(['app_celery-task-meta-new', 'unrelated']);
  });
});
