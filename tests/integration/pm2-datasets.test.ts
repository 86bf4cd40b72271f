// The dataset apps of ecosystem.config.js (CELERIAC_PM2_DATASETS=1) under a real pm2 daemon
// (PM2_HOME in a temp dir, `pm2 kill` after), on the run's FerretDB and Redis (db 113): pm2 lists
// celeriac-watch and celeriac-purge-stale-workflows; celeriac-watch turns new directories under
// the watch root into datasets, each with one started `integrated` workflow (its first step's
// message waiting on the broker), and after `pm2 restart` it registers and sends nothing again.
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { MongoClient } from 'mongodb';
import { PROJECT_ROOT, testMongoUrl, testRedisUrl, testTmpDir } from '../helpers/env';
import { flushDb, withRedis } from '../helpers/redis';
import { waitFor } from '../helpers/control';

jest.setTimeout(180_000);

const run = promisify(execFile);
const PM2 = path.join(PROJECT_ROOT, 'node_modules', '.bin', 'pm2');
const home = testTmpDir('pm2-datasets');
const logs = path.join(home, 'logs');
const root = path.join(home, 'incoming');
const mongoUrl = testMongoUrl('pm2_datasets');
const APP_ID = 'pm2ds';
const env = {
  ...process.env,
  PM2_HOME: path.join(home, 'pm2'),
  CELERIAC_LOG_DIR: logs,
  CELERIAC_PM2_DATASETS: '1',
  CELERY_BROKER_URL: testRedisUrl(113),
  CELERY_RESULT_BACKEND: mongoUrl,
  CELERIAC_MONGO_URL: mongoUrl,
  CELERIAC_WORKFLOWS_APP_ID: APP_ID,
  CELERIAC_DATASETS_WATCH_ROOT: root,
  CELERIAC_DATASETS_POLL_INTERVAL: '0.5',
  CELERIAC_DATASETS_ARCHIVE_DIR: path.join(home, 'archive'),
  CELERIAC_DATASETS_BUNDLE_DIR: path.join(home, 'bundles'),
  CELERIAC_DATASETS_STAGING_DIR: path.join(home, 'staging'),
  CELERIAC_DATASETS_DOWNLOAD_DIR: path.join(home, 'download'),
};

const pm2 = async (...args: string[]): Promise<string> => (await run(PM2, args, { cwd: PROJECT_ROOT, env, timeout: 120_000 })).stdout;
const watchLog = (): string => {
  const file = path.join(logs, 'celeriac-watch.out.log');
  const errFile = path.join(logs, 'celeriac-watch.err.log');
  return [file, errFile].map((f) => (existsSync(f) ? readFileSync(f, 'utf8') : '')).join('\n');
};

interface Pm2App {
  name: string;
  pm2_env: { status: string };
}

let mongo: MongoClient;

/** waitFor, failing with what the test sees and the watcher's log. */
const until = (what: string, fn: () => Promise<boolean>): Promise<void> =>
  waitFor(what, fn, 60_000).catch(async (err: Error) => {
    throw new Error(`${err.message}; now ${JSON.stringify(await counts())}\nwatch log:\n${watchLog().slice(-6000)}`);
  });

/** Messages waiting on the step queue, every priority list of it (kombu's `<queue>\x06\x16<n>` keys too). */
const queued = (): Promise<number> =>
  withRedis(113, async (r) => {
    const keys = (await r.keys(`${APP_ID}.q*`)).filter((k) => k === `${APP_ID}.q` || k.startsWith(`${APP_ID}.q\x06\x16`));
    const lengths = await Promise.all(keys.map((k) => r.llen(k)));
    return lengths.reduce((a, b) => a + b, 0);
  });

async function counts(): Promise<{ datasets: number; withWorkflow: number; workflows: number; queued: number }> {
  const db = mongo.db();
  const datasets = await db.collection<{ workflow_ids?: string[] }>('datasets').find({}).toArray();
  return {
    datasets: datasets.length,
    withWorkflow: datasets.filter((d) => d.workflow_ids?.length === 1).length,
    workflows: await db.collection('workflow_meta').countDocuments({ name: 'integrated' }),
    queued: await queued(),
  };
}

beforeAll(async () => {
  mkdirSync(root, { recursive: true });
  await flushDb(113);
  mongo = await MongoClient.connect(mongoUrl);
  await mongo.db().dropDatabase();
});

afterAll(async () => {
  await pm2('kill').catch(() => undefined);
  await mongo?.close();
}, 60_000);

it('celeriac-watch under pm2 registers new directories once, across a pm2 restart', async () => {
  await pm2('start', 'ecosystem.config.js', '--only', 'celeriac-watch,celeriac-purge-stale-workflows');
  const names = (JSON.parse(await pm2('jlist')) as Pm2App[]).map((a) => a.name).sort();
  expect(names).toEqual(['celeriac-purge-stale-workflows', 'celeriac-watch']);
  await until('the watcher to start', async () => /watch: .* every 0\.5 s/.test(watchLog()));

  mkdirSync(path.join(root, 'run-1'));
  mkdirSync(path.join(root, 'run-2'));
  const expected = { datasets: 2, withWorkflow: 2, workflows: 2, queued: 2 };
  await until('two datasets with a started workflow each', async () => JSON.stringify(await counts()) === JSON.stringify(expected));

  await pm2('restart', 'celeriac-watch');
  await until('the restarted watcher to scan', async () => {
    const watch = (JSON.parse(await pm2('jlist')) as Pm2App[]).find((a) => a.name === 'celeriac-watch');
    return watch?.pm2_env.status === 'online' && (watchLog().match(/watch: .* every 0\.5 s/g) ?? []).length >= 2;
  });
  // Several full scans of the restarted watcher (poll 0.5 s): nothing registered or sent again.
  await new Promise((r) => setTimeout(r, 4_000));
  expect(await counts()).toEqual(expected);
  const names1 = (await mongo.db().collection<{ name: string }>('datasets').find({}).toArray()).map((d) => d.name).sort();
  expect(names1).toEqual(['run-1', 'run-2']);
});
