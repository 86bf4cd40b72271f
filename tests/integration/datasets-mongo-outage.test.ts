/**
 * Bioloop's tasks when MongoDB is away: a private FerretDB on a free port that starts late and
 * stops mid-run. A task that starts before the server waits for it (one warning naming the host)
 * and then runs; a step that loses the server fails with RetryableException (so the worker
 * retries it) and the same step succeeds once the server is back, nothing lost.
 */
import path from 'node:path';
import { Celeriac } from '../../workers';
import { DatasetStore } from '../../workers/datasets/store';
import { registerBioloopTasks, type BioloopDeps } from '../../workers/tasks/bioloop';
import { datasetSettings, makeTree, runTask } from '../helpers/datasets';
import { testTmpDir } from '../helpers/env';
import { startProcess, type ProcessHandle } from '../helpers/processes';
import { MONGO_SERVER_BIN } from '../setup/mongoServer';
import { freePort } from '../setup/redisServer';

test('a task waits for MongoDB at start, and a step that loses it is retryable and succeeds once it is back', async () => {
  const port = await freePort();
  const dataDir = testTmpDir('mongo-outage');
  const url = `mongodb://127.0.0.1:${port}/outage`;
  const settings = datasetSettings(testTmpDir('mongo-outage-files'));
  const warnings: string[] = [];
  const logger = { info: () => undefined, warn: (m: string) => warnings.push(m) };
  let store: DatasetStore | undefined;
  const deps = async (): Promise<BioloopDeps> => {
    store ??= await DatasetStore.connect(url, { logger, maxDelayMs: 500, clientOptions: { serverSelectionTimeoutMS: 500 } });
    return { store, settings, log: logger };
  };
  const app = new Celeriac({ resultBackend: '' });
  registerBioloopTasks(app, deps);
  const startServer = async (): Promise<ProcessHandle> => {
    const server = startProcess(MONGO_SERVER_BIN, ['-port', String(port), '-dir', dataDir], { readyPattern: /^ready /m });
    await server.waitReady();
    return server;
  };
  let server: ProcessHandle | undefined;
  try {
    const waiting = runTask(app, 'inspect_dataset', 'not-registered-yet');
    await new Promise((r) => setTimeout(r, 1500));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain(`127.0.0.1:${port}`);
    server = await startServer();
    // It ran once the server answered: the id is unknown, which fails it at once.
    expect((await waiting).error).toMatchObject({ pyType: 'DatasetNotFound' });

    const origin = path.join(settings.watch_root, 'kept');
    makeTree(origin);
    const { dataset } = await store!.register({ name: 'kept', type: 'RAW_DATA', origin_path: origin });
    await server.stop();
    const lost = await runTask(app, 'inspect_dataset', dataset._id);
    expect(lost.error).toMatchObject({ pyType: 'RetryableException' });
    server = await startServer();
    // The retry (as the worker would send it) finds the dataset and completes.
    expect((await runTask(app, 'inspect_dataset', dataset._id)).value).toEqual([dataset._id]);
    expect(await store!.countFiles(dataset._id)).toBe(5);
  } finally {
    await store?.close();
    await server?.stop();
  }
});
