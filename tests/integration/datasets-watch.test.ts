/**
 * The watch script's core (workers/datasets/watch.ts) and purge-stale-workflows
 * (workers/datasets/purge.ts) on the run's real FerretDB: a new directory is registered and its
 * workflow started exactly once — across restarts, with two watchers at once, and after a watcher
 * died between claiming and starting — and old workflows no dataset references are purged.
 */
import fs from 'node:fs';
import path from 'node:path';
import { openMongo, type MongoConnection } from '../../workers';
import { purgeStaleWorkflows } from '../../workers/datasets/purge';
import { DatasetStore } from '../../workers/datasets/store';
import { DatasetWatcher, type WatchOptions, type WorkflowLauncher } from '../../workers/datasets/watch';
import { testMongoUrl, testTmpDir } from '../helpers/env';

let conn: MongoConnection;
let store: DatasetStore;

beforeAll(async () => {
  conn = await openMongo(testMongoUrl('datasets_watch'));
  await conn.db.dropDatabase();
  store = await DatasetStore.on(conn.db);
});

afterAll(async () => {
  await conn.close();
});

/** Records workflows in a collection, as sca-rhythm's Workflow(...) would, and each start. */
function recordingLauncher(): WorkflowLauncher & { started: { workflowId: string; datasetId: string }[] } {
  const started: { workflowId: string; datasetId: string }[] = [];
  let n = 0;
  return {
    started,
    async create(name) {
      n += 1;
      const id = `wf-${process.hrtime.bigint()}-${n}`;
      await conn.db.collection<{ _id: string }>('launched').insertOne({ _id: id, name } as never);
      return id;
    },
    async start(workflowId, datasetId) {
      started.push({ workflowId, datasetId });
    },
  };
}

const silent = { info: () => undefined, warn: () => undefined, error: () => undefined };

function watchOpts(root: string, over: Partial<WatchOptions> = {}): WatchOptions {
  return { root, type: 'RAW_DATA', workflow: 'integrated', rejects: ['.snapshots', '*.tmp'], pollIntervalMs: 50, fullScanEvery: 3, log: silent, ...over };
}

test('the collections and indexes are ensured again on a database that has datasets (every start after the first)', async () => {
  const root = testTmpDir('watch-again');
  fs.mkdirSync(path.join(root, 'run-x'));
  await new DatasetWatcher(store, recordingLauncher(), watchOpts(root)).scan();
  // FerretDB 1.24 dropped the connection on a createIndexes of several existing indexes.
  const again = await DatasetStore.on(conn.db);
  expect(await again.datasets.countDocuments({ origin_path: path.join(root, 'run-x') })).toBe(1);
  expect((await conn.db.collection('datasets').listIndexes().toArray()).map((i) => i.name).sort()).toEqual(['_id_', 'name_type_unique', 'type_workflows_created', 'workflow_ids']);
});

test('new directories become datasets with one started workflow each; rejects, files and restarts add nothing', async () => {
  const root = testTmpDir('watch-root');
  for (const d of ['run-a', 'run-b', '.snapshots', 'copy.tmp']) fs.mkdirSync(path.join(root, d));
  fs.writeFileSync(path.join(root, 'stray-file'), 'x');
  const launcher = recordingLauncher();
  const first = new DatasetWatcher(store, launcher, watchOpts(root));
  const r1 = await first.scan();
  expect(r1.registered).toHaveLength(2);
  expect(r1.started).toEqual(r1.registered);
  expect((await first.scan()).registered).toEqual([]);

  fs.mkdirSync(path.join(root, 'run-c'));
  const r2 = await first.scan();
  expect(r2.registered).toHaveLength(1);

  // A restart: a fresh watcher sees every directory as new, and registers/starts nothing again.
  const restarted = new DatasetWatcher(store, launcher, watchOpts(root));
  expect(await restarted.scan()).toEqual({ registered: [], started: [] });
  expect(await restarted.scan(true)).toEqual({ registered: [], started: [] });

  const datasets = await store.datasets.find({ type: 'RAW_DATA', origin_path: { $regex: `^${root}` } }).sort({ name: 1 }).toArray();
  expect(datasets.map((d) => d.name)).toEqual(['run-a', 'run-b', 'run-c']);
  expect(launcher.started).toHaveLength(3);
  for (const d of datasets) {
    expect(d.origin_path).toBe(path.join(root, d.name));
    expect(d.workflow_ids).toHaveLength(1);
    expect(d.workflows[0]).toMatchObject({ name: 'integrated', id: d.workflow_ids[0] });
    expect(launcher.started).toContainEqual({ workflowId: d.workflow_ids[0], datasetId: d._id });
  }
});

test('two watchers scanning the same root at once start each workflow once', async () => {
  const root = testTmpDir('watch-race');
  for (let i = 0; i < 6; i++) fs.mkdirSync(path.join(root, `d${i}`));
  const launcher = recordingLauncher();
  const [a, b] = [new DatasetWatcher(store, launcher, watchOpts(root)), new DatasetWatcher(store, launcher, watchOpts(root))];
  const [ra, rb] = await Promise.all([a.scan(), b.scan()]);
  expect(ra.registered.length + rb.registered.length).toBe(6);
  expect(launcher.started).toHaveLength(6);
  expect(new Set(launcher.started.map((s) => s.datasetId)).size).toBe(6);
  expect(await conn.db.collection('launched').countDocuments({ _id: { $in: launcher.started.map((s) => s.workflowId) } } as never)).toBe(6);
});

test('a start left half done by a dead watcher is finished once by the next one, reusing its workflow', async () => {
  const root = testTmpDir('watch-crash');
  fs.mkdirSync(path.join(root, 'half'));
  const crashing: WorkflowLauncher = {
    ...recordingLauncher(),
    async start() {
      throw new Error('watcher died before sending the first step');
    },
  };
  const errors: string[] = [];
  const dead = new DatasetWatcher(store, crashing, watchOpts(root, { log: { ...silent, error: (m) => errors.push(m) } }));
  expect((await dead.scan()).started).toEqual([]);
  expect(errors.join('\n')).toMatch(/half: watcher died/);
  const dataset = (await store.findByName('RAW_DATA', 'half'))!;
  expect(dataset.workflow_ids).toHaveLength(1);

  // Within the claim timeout nobody else touches it; after it, one watcher takes over and starts
  // the workflow already recorded (no second workflow).
  const launcher = recordingLauncher();
  expect((await new DatasetWatcher(store, launcher, watchOpts(root)).scan()).started).toEqual([]);
  // The dead watcher's claim ages past the timeout (10 minutes by default).
  await conn.db.collection('dataset_workflow_starts').updateOne({ _id: `${dataset._id}/integrated` } as never, { $set: { claimed_at: new Date(Date.now() - 3600_000) } });
  const [x, y] = [new DatasetWatcher(store, launcher, watchOpts(root)), new DatasetWatcher(store, launcher, watchOpts(root))];
  await Promise.all([x.scan(), y.scan()]);
  expect(launcher.started).toEqual([{ workflowId: dataset.workflow_ids[0], datasetId: dataset._id }]);
  expect((await store.get(dataset._id)).workflow_ids).toHaveLength(1);
});

test('a missing watch root is logged and scanned again later, not fatal', async () => {
  const root = path.join(testTmpDir('watch-missing'), 'not-yet');
  const warnings: string[] = [];
  const w = new DatasetWatcher(store, recordingLauncher(), watchOpts(root, { log: { ...silent, warn: (m) => warnings.push(m) } }));
  expect(await w.scan()).toEqual({ registered: [], started: [] });
  expect(warnings[0]).toContain(`${root} does not exist`);
  fs.mkdirSync(path.join(root, 'late'), { recursive: true });
  expect((await w.scan()).registered).toHaveLength(1);
});

test('purge-stale-workflows deletes old unreferenced workflows of the given kinds and their task results, capped', async () => {
  const wfs = conn.db.collection<Record<string, unknown> & { _id: string }>('workflow_meta');
  const tasks = conn.db.collection<{ _id: string; status: string }>('celery_taskmeta');
  const old = new Date(Date.now() - 7200_000);
  const { dataset } = await store.register({ name: 'kept', type: 'RAW_DATA', origin_path: '/data/kept' });
  await store.addWorkflow(dataset._id, { id: 'wf-referenced', name: 'integrated' });
  const wf = (id: string, over: Record<string, unknown> = {}) => ({
    _id: id, app_id: 'app1', name: 'integrated', created_at: old,
    steps: [{ name: 's1', task: 't', task_runs: [{ task_id: `${id}-t1` }, { task_id: `${id}-t2` }] }], ...over,
  });
  await wfs.insertMany([
    wf('wf-referenced'), wf('wf-orphan-1'), wf('wf-orphan-2'), wf('wf-orphan-3'),
    wf('wf-young', { created_at: new Date() }), wf('wf-other-app', { app_id: 'app2' }), wf('wf-other-kind', { name: 'demo' }),
  ]);
  await tasks.insertMany(['wf-referenced', 'wf-orphan-1', 'wf-orphan-2', 'wf-orphan-3'].flatMap((id) => [{ _id: `${id}-t1`, status: 'SUCCESS' }, { _id: `${id}-t2`, status: 'SUCCESS' }]));
  const opts = { appId: 'app1', workflowTypes: ['integrated', 'stage'], ageThresholdSeconds: 3600, maxPurgeCount: 2, log: { warn: () => undefined } };

  const dry = await purgeStaleWorkflows(conn.db, store, { ...opts, dryRun: true });
  expect(dry.workflowIds).toHaveLength(2);
  expect(await wfs.countDocuments()).toBe(7);

  const first = await purgeStaleWorkflows(conn.db, store, opts);
  expect(first).toMatchObject({ deletedWorkflows: 2, deletedTasks: 4 });
  const second = await purgeStaleWorkflows(conn.db, store, opts);
  expect(second).toMatchObject({ workflowIds: ['wf-orphan-3'], deletedWorkflows: 1, deletedTasks: 2 });
  expect((await wfs.find().toArray()).map((w) => w._id).sort()).toEqual(['wf-other-app', 'wf-other-kind', 'wf-referenced', 'wf-young']);
  expect((await tasks.find().toArray()).map((t) => t._id).sort()).toEqual(['wf-referenced-t1', 'wf-referenced-t2']);
});
