/**
 * Bioloop's dataset tasks (workers/tasks/bioloop*.ts) on temp dirs and the run's real FerretDB:
 * each step's effect on the dataset document, its files and the directories, its progress, and
 * which errors fail at once (InspectionFailed, ValidationFailed) or are retried (the rest).
 * The last test runs them on a real worker (Redis broker and results, db 123).
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { AsyncResult, Celeriac, openMongo, Worker, type MongoConnection, type TaskContext } from '../../workers';
import { DatasetStore } from '../../workers/datasets/store';
import { registerBioloopTasks } from '../../workers/tasks/bioloop';
import { datasetSettings, makeTree, md5Of, runTask } from '../helpers/datasets';
import { pythonBin, testMongoUrl, testRedisUrl, testTmpDir } from '../helpers/env';
import { flushDb } from '../helpers/redis';

let conn: MongoConnection;
let store: DatasetStore;
let app: Celeriac;
const warnings: string[] = [];
let settings: ReturnType<typeof datasetSettings>;

beforeAll(async () => {
  conn = await openMongo(testMongoUrl('datasets_tasks'));
  await conn.db.dropDatabase();
  store = await DatasetStore.on(conn.db);
  settings = datasetSettings(testTmpDir('datasets-tasks'));
  app = new Celeriac({ resultBackend: '' });
  registerBioloopTasks(app, { store, settings, log: { info: () => undefined, warn: (m) => warnings.push(m) } });
});

afterAll(async () => {
  await app.close?.();
  await conn.close();
});

async function newDataset(name: string): Promise<string> {
  const origin = path.join(settings.watch_root, name);
  makeTree(origin);
  const { dataset } = await store.register({ name, type: 'RAW_DATA', origin_path: origin });
  return dataset._id;
}

async function states(id: string): Promise<string[]> {
  return (await store.get(id)).states.map((s) => s.state);
}

test('store: registration is exclusive on (name, type), the state history only grows, bad documents are refused', async () => {
  const a = await store.register({ name: 'reg1', type: 'RAW_DATA', origin_path: '/data/reg1' });
  const b = await store.register({ name: 'reg1', type: 'RAW_DATA', origin_path: '/data/reg1' });
  expect(a.created).toBe(true);
  expect(b.created).toBe(false);
  expect(b.dataset._id).toBe(a.dataset._id);
  // Ten concurrent registrations of one name: exactly one insert wins.
  const racers = await Promise.all(Array.from({ length: 10 }, () => store.register({ name: 'race', type: 'RAW_DATA', origin_path: '/data/race' })));
  expect(racers.filter((r) => r.created)).toHaveLength(1);
  expect(new Set(racers.map((r) => r.dataset._id)).size).toBe(1);
  await store.addState(a.dataset._id, 'READY', { by: 'test' });
  const doc = await store.get(a.dataset._id);
  expect(doc.states.map((s) => s.state)).toEqual(['REGISTERED', 'READY']);
  expect(doc.states[1]?.metadata).toEqual({ by: 'test' });
  expect(doc.states[1]?.timestamp).toBeInstanceOf(Date);
  await expect(store.register({ name: 'a/b', type: 'RAW_DATA', origin_path: '/x' })).rejects.toThrow(/single path component/);
  await expect(store.register({ name: 'ok', type: '', origin_path: 'relative' })).rejects.toThrow(/type must be.*origin_path must be an absolute path/);
  const indexes = (await store.datasets.indexes()).map((i) => i.name);
  expect(indexes).toEqual(expect.arrayContaining(['name_type_unique', 'workflow_ids', 'type_workflows_created']));
});

test('the integrated steps in order: READY, inspected with streamed md5s, ARCHIVED, FETCHED, STAGED, download links', async () => {
  const id = await newDataset('run-001');
  const origin = path.join(settings.watch_root, 'run-001');

  const wait = await runTask(app, 'await_stability', id, { recency_threshold: 0.6, wait_seconds: 0.2, workflow_id: 'wf', step: 'await stability', app_id: 'test' });
  expect(wait.error).toBeUndefined();
  expect(wait.value).toEqual([id]);
  expect(wait.states.length).toBeGreaterThanOrEqual(2);
  expect(wait.states[0]).toMatchObject({ state: 'STARTED', meta: { name: expect.stringMatching(/^\d{4}-/), time_remaining_sec: expect.any(Number) } });
  expect(await states(id)).toEqual(['REGISTERED', 'READY']);

  const inspect = await runTask(app, 'inspect_dataset', id);
  expect(inspect.error).toBeUndefined();
  const doc = await store.get(id);
  const bigSize = 3 * 1024 * 1024 + 17;
  expect(doc).toMatchObject({ num_files: 5, num_directories: 2, size: 11 + 0 + bigSize + 4000 + 9, metadata: { num_genome_files: 1 } });
  // Bioloop takes du_size from `du -sb`.
  expect(doc.du_size).toBe(Number(execFileSync('du', ['-sb', origin], { encoding: 'utf8' }).split('\t')[0]));
  const files = await store.files.find({ dataset_id: id }).sort({ path: 1 }).toArray();
  expect(files.map((f) => [f.path, f.type, f.size])).toEqual([
    ['README', 'file', 11],
    ['empty.txt', 'file', 0],
    ['lane1/big.bin', 'file', bigSize],
    ['lane1/readme-link', 'symbolic link', 9],
    ['lane1/reads/r1.fastq.gz', 'file', 4000],
  ]);
  for (const f of files) expect(f.md5).toBe(f.type === 'symbolic link' ? null : md5Of(path.join(origin, f.path)));
  // Progress in bytes hashed (the first report at once, then at most one a second).
  const first = inspect.states[0]?.meta as { done: number; total: number; units: string; name: string };
  expect(first).toMatchObject({ name: 'md5', units: 'bytes', total: doc.size });
  expect(first.done).toBeGreaterThan(0);

  const archive = await runTask(app, 'archive_dataset', id);
  expect(archive.error).toBeUndefined();
  const archived = await store.get(id);
  const tarPath = path.join(settings.archive_dir, 'RAW_DATA', 'run-001.tar');
  expect(archived.archive_path).toBe(tarPath);
  expect(archived.bundle).toEqual({ name: 'run-001.tar', size: fs.statSync(tarPath).size, md5: md5Of(tarPath) });
  expect(await states(id)).toEqual(['REGISTERED', 'READY', 'ARCHIVED']);

  // Same tree again: same bytes, so the archive copy is skipped (the file is not rewritten).
  const inode = fs.statSync(tarPath).ino;
  warnings.length = 0;
  expect((await runTask(app, 'archive_dataset', id)).error).toBeUndefined();
  expect(fs.statSync(tarPath).ino).toBe(inode);
  expect(warnings.join('\n')).toMatch(/already holds a bundle with md5/);

  expect((await runTask(app, 'stage_dataset', id)).error).toBeUndefined();
  const staged = await store.get(id);
  const alias = staged.metadata.stage_alias as string;
  expect(alias).toMatch(/^[0-9a-f]{32}$/);
  expect(staged.staged_path).toBe(path.join(settings.staging_dir, alias, 'run-001'));
  for (const f of files) {
    const p = path.join(staged.staged_path as string, f.path);
    if (f.type === 'symbolic link') expect(fs.readlinkSync(p)).toBe('../README');
    else expect(md5Of(p)).toBe(f.md5);
  }

  expect((await runTask(app, 'validate_dataset', id)).value).toEqual([id]);
  expect(await store.get(id)).toMatchObject({ is_staged: true });

  expect((await runTask(app, 'setup_dataset_download', id)).value).toEqual([id]);
  expect(fs.readlinkSync(path.join(settings.download_dir, alias))).toBe(staged.staged_path);
  expect(fs.readlinkSync(path.join(settings.download_dir, 'run-001.RAW_DATA.tar'))).toBe(path.join(settings.bundle_dir, 'stage', 'run-001.RAW_DATA.tar'));
  expect(fs.statSync(path.join(staged.staged_path as string, 'lane1', 'big.bin')).mode & 0o004).toBe(0o004);
  expect(await states(id)).toEqual(['REGISTERED', 'READY', 'ARCHIVED', 'ARCHIVED', 'FETCHED', 'STAGED']);

  expect((await runTask(app, 'delete_dataset', id)).value).toEqual([id]);
  const deleted = await store.get(id);
  expect(deleted).toMatchObject({ is_deleted: true, archive_path: null, name: `run-001-${id}` });
  expect(fs.existsSync(tarPath)).toBe(false);
  expect(deleted.states.at(-1)?.state).toBe('DELETED');
  // The name is free again for a new dataset.
  expect((await store.register({ name: 'run-001', type: 'RAW_DATA', origin_path: origin })).created).toBe(true);
});

test('integrity failures fail at once with Bioloop\'s classes; other errors become RetryableException', async () => {
  // A vanished origin: inspection fails (not retried).
  const gone = await newDataset('vanished');
  fs.rmSync(path.join(settings.watch_root, 'vanished'), { recursive: true });
  const inspect = await runTask(app, 'inspect_dataset', gone);
  expect(inspect.error).toMatchObject({ pyType: 'InspectionFailed', pyModule: 'workers.exceptions', message: expect.stringContaining('origin_path does not exist') });
  // Archiving the vanished tree is an I/O error: Bioloop retries those.
  const archive = await runTask(app, 'archive_dataset', gone);
  expect(archive.error).toMatchObject({ pyType: 'RetryableException', message: expect.stringMatching(/ENOENT|no such file/i) });

  // An unknown id, or no id at all.
  expect((await runTask(app, 'validate_dataset', 'no-such-id')).error).toMatchObject({ pyType: 'DatasetNotFound' });
  expect((await runTask(app, 'stage_dataset', 42)).error).toMatchObject({ pyType: 'TypeError' });

  // An unreadable file inside the tree names the path.
  if (process.getuid?.() !== 0) {
    const locked = await newDataset('locked');
    fs.chmodSync(path.join(settings.watch_root, 'locked', 'README'), 0o000);
    const r = await runTask(app, 'inspect_dataset', locked);
    expect(r.error).toMatchObject({ pyType: 'InspectionFailed', message: expect.stringContaining('README is not readable') });
  }
});

test('a corrupt archive fails staging with ValidationFailed: checksum mismatch, or a tar that cannot be read', async () => {
  const id = await newDataset('corrupt');
  for (const step of ['inspect_dataset', 'archive_dataset']) expect((await runTask(app, step, id)).error).toBeUndefined();
  const tarPath = (await store.get(id)).archive_path as string;
  const bytes = fs.readFileSync(tarPath);
  bytes.fill(0x41, 0, 600);
  fs.writeFileSync(tarPath, bytes);
  const mismatch = await runTask(app, 'stage_dataset', id);
  expect(mismatch.error).toMatchObject({ pyType: 'ValidationFailed', message: expect.stringContaining('Expected checksum of downloaded file') });

  // The recorded md5 matches the damaged file (damaged before archive recorded it): extraction says why.
  await store.update(id, { bundle: { name: 'corrupt.tar', size: bytes.length, md5: md5Of(tarPath) } });
  const bad = await runTask(app, 'stage_dataset', id);
  expect(bad.error).toMatchObject({ pyType: 'ValidationFailed', message: expect.stringContaining('cannot extract') });
  expect((await store.get(id)).states.map((s) => s.state)).not.toContain('FETCHED');
});

test('validate_dataset names every missing or changed file', async () => {
  const id = await newDataset('tampered');
  for (const step of ['inspect_dataset', 'archive_dataset', 'stage_dataset']) expect((await runTask(app, step, id)).error).toBeUndefined();
  const staged = (await store.get(id)).staged_path as string;
  fs.rmSync(path.join(staged, 'README'));
  fs.writeFileSync(path.join(staged, 'lane1', 'reads', 'r1.fastq.gz'), 'changed');
  const r = await runTask(app, 'validate_dataset', id);
  expect(r.error).toMatchObject({ pyType: 'ValidationFailed' });
  expect((r.error as { problems: [string, string][] }).problems).toEqual([
    [path.join(staged, 'README'), 'file does not exist'],
    [path.join(staged, 'lane1', 'reads', 'r1.fastq.gz'), 'checksum mismatch'],
  ]);
  expect(await store.get(id)).toMatchObject({ is_staged: false });
});

test('files are written in batches and a re-inspection replaces them', async () => {
  const id = await newDataset('batches');
  expect((await runTask(app, 'inspect_dataset', id)).error).toBeUndefined();
  fs.rmSync(path.join(settings.watch_root, 'batches', 'lane1'), { recursive: true });
  expect((await runTask(app, 'inspect_dataset', id)).error).toBeUndefined();
  expect(await store.countFiles(id)).toBe(2);
  expect(await store.get(id)).toMatchObject({ num_files: 2, num_directories: 0 });
});

test('await_stability waits while the tree keeps changing and stops when revoked', async () => {
  const id = await newDataset('busy');
  const abort = new AbortController();
  const writer = setInterval(() => fs.writeFileSync(path.join(settings.watch_root, 'busy', 'growing'), String(Date.now())), 100);
  const running = runTask(app, 'await_stability', id, { recency_threshold: 5, wait_seconds: 0.1 }, abort.signal);
  await new Promise((r) => setTimeout(r, 800));
  abort.abort(new Error('revoked'));
  const r = await running;
  clearInterval(writer);
  expect(r.error).toMatchObject({ message: 'revoked' });
  expect(r.states.length).toBeGreaterThan(1);
  expect(await states(id)).toEqual(['REGISTERED']);
});

test('on a real worker: a transient failure is retried 3 times then fails as RetryableException; InspectionFailed fails at once', async () => {
  const db = 123;
  await flushDb(db);
  const urls = { brokerUrl: testRedisUrl(db), resultBackend: testRedisUrl(db) };
  const runs = new Map<string, number>();
  const workerApp = new Celeriac(urls);
  registerBioloopTasks(workerApp, { store, settings, log: { info: () => undefined, warn: () => undefined } }, {
    taskOptions: { default_retry_delay: 0.1 },
    define: (name, fn, options) =>
      workerApp.task(name, function (this: TaskContext, id: unknown, kwargs?: Record<string, unknown>) {
        runs.set(name, (runs.get(name) ?? 0) + 1);
        return fn.call(this, id, kwargs);
      }, options),
  });
  const worker = new Worker(workerApp, { hostname: 'datasets@test', queues: ['celery'], concurrency: 2, prefetchMultiplier: 1, accept: ['json'] });
  await worker.start();
  const producer = new Celeriac(urls);
  try {
    const id = await newDataset('flaky');
    fs.rmSync(path.join(settings.watch_root, 'flaky'), { recursive: true });
    const archive = producer.sendTask('archive_dataset', [id], { workflow_id: 'wf1', step: 'archive', app_id: 'test' });
    const inspect = producer.sendTask('inspect_dataset', [id], { workflow_id: 'wf1', step: 'inspect', app_id: 'test' });
    await expect((await archive).get({ timeout: 30 })).rejects.toMatchObject({ pyType: 'RetryableException' });
    await expect((await inspect).get({ timeout: 30 })).rejects.toMatchObject({ pyType: 'InspectionFailed' });
    expect(runs.get('archive_dataset')).toBe(4);
    expect(runs.get('inspect_dataset')).toBe(1);
    const ok = await newDataset('steady');
    const done = await producer.sendTask('inspect_dataset', [], { dataset_id: ok, workflow_id: 'wf2', step: 'inspect', app_id: 'test' });
    expect(await done.get({ timeout: 30 })).toEqual([ok]);
    expect(await store.countFiles(ok)).toBe(5);
    expect(done).toBeInstanceOf(AsyncResult);
  } finally {
    await worker.shutdown('warm');
    await worker.close();
    await producer.close();
    await workerApp.close();
  }
});

/** Bioloop's stage.extract_tarfile(tar, target, override_arcname=True), run by Python. */
const PY_EXTRACT = `
import os, shutil, sys, tarfile, tempfile
from pathlib import Path
tar_path, target = Path(sys.argv[1]), Path(sys.argv[2])
with tarfile.open(tar_path, mode='r') as archive:
    archive_name = os.path.commonprefix(archive.getnames())
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        archive.extractall(path=tmp)
        shutil.move(Path(tmp) / archive_name, target)
`;

test("bundles cross over: Bioloop's Python stage extracts a Celeriac bundle, Celeriac stages a GNU tar bundle as Bioloop makes them", async () => {
  const id = await newDataset('crossover');
  const origin = path.join(settings.watch_root, 'crossover');
  for (const step of ['inspect_dataset', 'archive_dataset']) expect((await runTask(app, step, id)).error).toBeUndefined();
  const files = await store.files.find({ dataset_id: id }).toArray();
  const ours = (await store.get(id)).archive_path as string;
  const pyTarget = path.join(testTmpDir('py-stage'), 'crossover');
  execFileSync(pythonBin(), ['-c', PY_EXTRACT, ours, pyTarget]);
  for (const f of files) if (f.md5) expect(md5Of(path.join(pyTarget, f.path))).toBe(f.md5);
  expect(fs.readlinkSync(path.join(pyTarget, 'lane1', 'readme-link'))).toBe('../README');

  // Bioloop's cmd.tar: `tar cf <tar> --sparse -C <source> .`, put where archive_dataset would.
  const gnu = path.join(testTmpDir('gnu-tar'), 'crossover.tar');
  execFileSync('tar', ['cf', gnu, '--sparse', '-C', origin, '.']);
  const target = (await store.get(id)).archive_path as string;
  fs.copyFileSync(gnu, target);
  await store.update(id, { bundle: { name: 'crossover.tar', size: fs.statSync(gnu).size, md5: md5Of(gnu) } });
  expect((await runTask(app, 'stage_dataset', id)).error).toBeUndefined();
  expect((await runTask(app, 'validate_dataset', id)).value).toEqual([id]);
  const staged = (await store.get(id)).staged_path as string;
  expect(fs.statSync(staged).mode & 0o777).toBe(fs.statSync(origin).mode & 0o777);
});
