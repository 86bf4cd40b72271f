// ecosystem.config.js under a real pm2 daemon (PM2_HOME in a temp dir, `pm2 kill` after), with the
// broker on Redis (dbs 111-112): the apps start from the file (the climate API waits for a MongoDB it never gets; it only has to be listed), the worker comes up with
// --autoscale 8,2 and its pidfile, and `pm2 stop` is a warm shutdown: the tasks it was running
// finish, the ones waiting stay in the queue, nothing is lost.
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { Celeriac } from '../../workers/app/app';
import { PROJECT_ROOT, testRedisUrl, testTmpDir } from '../helpers/env';
import { flushDb, redisClient } from '../helpers/redis';
import { waitFor } from '../helpers/control';

const run = promisify(execFile);
const PM2 = path.join(PROJECT_ROOT, 'node_modules', '.bin', 'pm2');
const home = testTmpDir('pm2');
const logs = path.join(home, 'logs');
const QUEUE = `pm2-${process.pid}`;
const env = {
  ...process.env,
  PM2_HOME: path.join(home, 'pm2'),
  CELERIAC_LOG_DIR: logs,
  CELERIAC_PM2_QUEUE: QUEUE,
  CELERY_BROKER_URL: testRedisUrl(111),
  CELERY_RESULT_BACKEND: testRedisUrl(112),
};
const pidfile = path.join(PROJECT_ROOT, 'data', 'celeriac-w1.pid');
const workerLog = (): string => {
  const file = path.join(logs, 'celeriac-worker.out.log');
  return existsSync(file) ? readFileSync(file, 'utf8') : '';
};

const pm2 = async (...args: string[]): Promise<string> => (await run(PM2, args, { cwd: PROJECT_ROOT, env, timeout: 120_000 })).stdout;

interface Pm2App {
  name: string;
  pid: number;
  pm2_env: { status: string; exec_mode: string };
}

let app: Celeriac;

beforeAll(async () => {
  await flushDb(111);
  await flushDb(112);
  app = new Celeriac({ brokerUrl: env.CELERY_BROKER_URL, resultBackend: env.CELERY_RESULT_BACKEND });
});

afterAll(async () => {
  await app?.close();
  await pm2('kill').catch(() => undefined);
}, 60_000);

it('pm2 starts both apps from ecosystem.config.js, and pm2 stop is a warm shutdown that loses nothing', async () => {
  await pm2('start', 'ecosystem.config.js');
  await waitFor('the worker to be ready', async () => /celeriac-w1@\S+ ready\./.test(workerLog()), 60_000);
  const apps = JSON.parse(await pm2('jlist')) as Pm2App[];
  expect(apps.map((a) => a.name).sort()).toEqual(['celeriac-climate-api', 'celeriac-fleet-report', 'celeriac-worker']);
  const worker = apps.find((a) => a.name === 'celeriac-worker')!;
  expect(worker.pm2_env.status).toBe('online');
  expect(workerLog()).toMatch(/concurrency 2-8 \(autoscale\)/);
  expect(readFileSync(pidfile, 'utf8').trim()).toBe(String(worker.pid));

  // Four 3-second tasks (the pool grows to 4 for them); once they run, two more wait behind a countdown.
  const running = await Promise.all(Array.from({ length: 4 }, (_, i) => app.sendTask('demo.sleep', [3 + i / 1000], {}, { queue: QUEUE })));
  await waitFor('four tasks to be running', async () => (workerLog().match(/Task demo\.sleep\[[^\]]+\] received/g) ?? []).length >= 4 && /Scaling up/.test(workerLog()), 15_000);
  await new Promise((r) => setTimeout(r, 500));
  const waiting = await Promise.all([1, 2].map(() => app.sendTask('demo.add', [1, 2], {}, { queue: QUEUE, countdown: 3600 })));

  await pm2('stop', 'celeriac-worker'); // returns once the process has exited
  expect(workerLog()).toMatch(/Warm shutdown \(SIGINT\)/);
  for (const [i, r] of running.entries()) expect(await r.get({ timeout: 5 })).toBe(3 + i / 1000);
  expect(existsSync(pidfile)).toBe(false);
  // The ETA tasks it held went back to the queue (kombu's restore), none lost.
  const redis = redisClient(111);
  try {
    await waitFor('held messages back in the queue', async () => (await redis.llen(QUEUE)) === 2, 10_000);
    expect(await redis.hlen('unacked')).toBe(0);
  } finally {
    redis.disconnect();
  }
  for (const r of waiting) expect(await r.state()).toBe('PENDING');
  const after = JSON.parse(await pm2('jlist')) as Pm2App[];
  expect(after.find((a) => a.name === 'celeriac-worker')!.pm2_env.status).toBe('stopped');
}, 120_000);
