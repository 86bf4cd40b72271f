/**
 * End to end (issue #11): a directory dropped under the watched root ends STAGED — the watch
 * core registers it and starts Bioloop's `integrated` workflow (workers/workflows), whose six
 * steps run as workflow tasks on a real Celeriac worker (Redis broker, db 124; Celery's mongodb
 * result backend and the datasets on the run's FerretDB). Then the bad inputs: a dataset whose
 * directory vanished, and a corrupt archive, each ending in a FAILURE recorded where Python and
 * the API read it (celery_taskmeta, the workflow's status).
 */
import fs from 'node:fs';
import path from 'node:path';
import { loadConfig } from '../../config';
import { Celeriac, openMongo, Worker, type MongoConnection } from '../../workers';
import { DatasetStore } from '../../workers/datasets/store';
import { DatasetWatcher, type WorkflowLauncher } from '../../workers/datasets/watch';
import { registerBioloopTasks } from '../../workers/tasks/bioloop';
import { registeredWorkflow, Workflow } from '../../workers/workflows';
import { datasetSettings, makeTree, md5Of } from '../helpers/datasets';
import { execFileSync } from 'node:child_process';
import { pythonBin, testMongoUrl, testRedisUrl, testTmpDir } from '../helpers/env';
import { flushDb } from '../helpers/redis';

const REDIS_DB = 124;
const MONGO_DB = 'datasets_e2e';
const APP_ID = 'e2e.celeriac';

let conn: MongoConnection;
let store: DatasetStore;
let app: Celeriac;
let worker: Worker;
let settings: ReturnType<typeof datasetSettings>;
const cfg = loadConfig({ envFile: null, env: {}, overrides: { workflows: { app_id: APP_ID } } });

function launcher(): WorkflowLauncher {
  return {
    create: async (name) => (await Workflow.create(app, registeredWorkflow(cfg, name))).id,
    start: async (id, datasetId) => void (await (await Workflow.load(app, id)).start([datasetId])),
  };
}

beforeAll(async () => {
  await flushDb(REDIS_DB);
  conn = await openMongo(testMongoUrl(MONGO_DB));
  await conn.db.dropDatabase();
  store = await DatasetStore.on(conn.db);
  settings = datasetSettings(testTmpDir('datasets-e2e'), { recency_threshold_seconds: 1, stability_check_interval_seconds: 0.3 });
  app = new Celeriac({ brokerUrl: testRedisUrl(REDIS_DB), resultBackend: testMongoUrl(MONGO_DB), resultExtended: true, defaultQueue: `${APP_ID}.q` });
  registerBioloopTasks(app, { store, settings, log: { info: () => undefined, warn: () => undefined } }, { taskOptions: { default_retry_delay: 0.2 } });
  worker = new Worker(app, { hostname: 'e2e@test', queues: [`${APP_ID}.q`], concurrency: 2, prefetchMultiplier: 1, accept: ['json'] });
  await worker.start();
});

afterAll(async () => {
  await worker.shutdown('warm');
  await worker.close();
  await app.close();
  await conn.close();
});

async function until<T>(what: string, probe: () => Promise<T | undefined | null | false>, timeoutMs = 90_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function workflowEnds(id: string): Promise<string> {
  return until(`workflow ${id} to end`, async () => {
    const s = await (await Workflow.load(app, id)).status();
    return ['SUCCESS', 'FAILURE', 'REVOKED'].includes(s) ? s : null;
  });
}

test('a directory dropped under the watched root ends STAGED: dataset, files, workflow documents, tar, links', async () => {
  const watcher = new DatasetWatcher(store, launcher(), { root: settings.watch_root, type: 'RAW_DATA', workflow: 'integrated', rejects: [], pollIntervalMs: 200, fullScanEvery: 5, log: { info: () => undefined, warn: () => undefined, error: () => undefined } });
  const stop = new AbortController();
  const watching = watcher.run(stop.signal);
  try {
    // Dropped the way a copy lands: the directory first, its files a moment later.
    const origin = path.join(settings.watch_root, 'run-e2e');
    fs.mkdirSync(origin);
    makeTree(origin);
    const dataset = await until('registration', () => store.findByName('RAW_DATA', 'run-e2e'));
    const wfId = await until('a workflow', async () => (await store.get(dataset._id)).workflow_ids[0]);
    expect(await workflowEnds(wfId)).toBe('SUCCESS');

    const doc = await store.get(dataset._id);
    expect(doc.states.map((s) => s.state)).toEqual(['REGISTERED', 'READY', 'ARCHIVED', 'FETCHED', 'STAGED']);
    expect(doc).toMatchObject({ num_files: 5, num_directories: 2, is_staged: true, is_deleted: false, workflows: [{ id: wfId, name: 'integrated' }] });
    expect(await store.countFiles(dataset._id)).toBe(5);

    const wf = (await Workflow.load(app, wfId)).document;
    expect(wf).toMatchObject({ name: 'integrated', app_id: APP_ID, _status: 'SUCCESS' });
    expect(wf.steps.map((s) => s.task)).toEqual(['await_stability', 'inspect_dataset', 'archive_dataset', 'stage_dataset', 'validate_dataset', 'setup_dataset_download']);
    const taskIds = wf.steps.map((s) => s.task_runs?.at(-1)?.task_id);
    const metas = await conn.db.collection<{ _id: string; status: string; result: string }>('celery_taskmeta').find({ _id: { $in: taskIds as string[] } }).toArray();
    expect(metas).toHaveLength(6);
    for (const m of metas) expect([m.status, JSON.parse(m.result)]).toEqual(['SUCCESS', [dataset._id]]);

    const tar = path.join(settings.archive_dir, 'RAW_DATA', 'run-e2e.tar');
    expect(doc.archive_path).toBe(tar);
    expect(doc.bundle?.md5).toBe(md5Of(tar));
    const alias = doc.metadata.stage_alias as string;
    expect(fs.readlinkSync(path.join(settings.download_dir, alias))).toBe(doc.staged_path);
    expect(fs.readlinkSync(path.join(settings.download_dir, 'run-e2e.RAW_DATA.tar'))).toBe(path.join(settings.bundle_dir, 'stage', 'run-e2e.RAW_DATA.tar'));
    expect(md5Of(path.join(doc.staged_path as string, 'lane1', 'big.bin'))).toBe(md5Of(path.join(origin, 'lane1', 'big.bin')));
  } finally {
    stop.abort();
    await watching;
  }
  // Six steps on a loaded 2-core CI machine: more than jest's default 60 s is allowed.
}, 150_000);

test('a dataset whose directory vanished fails at inspect with InspectionFailed, recorded in celery_taskmeta and the workflow', async () => {
  const origin = path.join(settings.watch_root, 'vanishing');
  makeTree(origin);
  const { dataset } = await store.register({ name: 'vanishing', type: 'RAW_DATA', origin_path: origin });
  const wf = await Workflow.create(app, registeredWorkflow(cfg, 'integrated'));
  await store.addWorkflow(dataset._id, { id: wf.id, name: 'integrated' });
  fs.rmSync(origin, { recursive: true });
  await wf.start([dataset._id]);
  expect(await workflowEnds(wf.id)).toBe('FAILURE');
  const doc = (await Workflow.load(app, wf.id)).document;
  expect(doc._status).toBe('FAILURE');
  const inspectRun = doc.steps[1]?.task_runs?.at(-1)?.task_id as string;
  const meta = await conn.db.collection<{ _id: string; status: string; result: string }>('celery_taskmeta').findOne({ _id: inspectRun });
  expect(meta?.status).toBe('FAILURE');
  expect(JSON.parse(meta!.result)).toMatchObject({ exc_type: 'InspectionFailed', exc_module: 'workers.exceptions', exc_message: [expect.stringContaining('origin_path does not exist')] });
  // What a Python client of the same backend sees.
  const seen = execFileSync(pythonBin(), ['-c', PY_READ, testMongoUrl(MONGO_DB), inspectRun], { encoding: 'utf8' }).trim();
  expect(seen).toBe(`FAILURE InspectionFailed origin_path does not exist: ${origin}`);
});

const PY_READ = `
import sys
from celery import Celery
app = Celery(backend=sys.argv[1])
r = app.AsyncResult(sys.argv[2])
print(r.state, type(r.result).__name__, r.result)
`;

test('a corrupt archive fails the stage workflow with ValidationFailed, recorded where Python reads it', async () => {
  const origin = path.join(settings.watch_root, 'damaged');
  makeTree(origin);
  const { dataset } = await store.register({ name: 'damaged', type: 'RAW_DATA', origin_path: origin });
  const integrated = await Workflow.create(app, registeredWorkflow(cfg, 'integrated'));
  await integrated.start([dataset._id]);
  expect(await workflowEnds(integrated.id)).toBe('SUCCESS');
  const tar = (await store.get(dataset._id)).archive_path as string;
  const bytes = fs.readFileSync(tar);
  bytes.fill(0, 1024, 4096);
  fs.writeFileSync(tar, bytes);
  const stage = await Workflow.create(app, registeredWorkflow(cfg, 'stage'));
  await stage.start([dataset._id]);
  expect(await workflowEnds(stage.id)).toBe('FAILURE');
  const runId = (await Workflow.load(app, stage.id)).document.steps[0]?.task_runs?.at(-1)?.task_id as string;
  const meta = await conn.db.collection<{ _id: string; status: string; result: string }>('celery_taskmeta').findOne({ _id: runId });
  expect(JSON.parse(meta!.result)).toMatchObject({ exc_type: 'ValidationFailed', exc_message: [expect.stringContaining('Expected checksum of downloaded file')] });
});
