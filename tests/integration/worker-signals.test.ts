// Pidfiles of a real Celeriac worker process: --pidfile refuses a live pid and replaces a stale
// one. (SIGTERM warm and cold shutdown under load, on Redis and RabbitMQ: faults-shutdown.test.ts.)
// Redis dbs 34-35.
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { PROJECT_ROOT, testRedisUrl, testTmpDir } from '../helpers/env';
import { startCeleriacWorker } from '../helpers/celeriacWorker';
import { startProcess } from '../helpers/processes';
import { flushDb } from '../helpers/redis';

const BROKER = 34;
const RESULTS = 35;

const common = {
  brokerUrl: testRedisUrl(BROKER),
  backendUrl: testRedisUrl(RESULTS),
  app: 'tests/fixtures/tasks.ts',
};

beforeAll(async () => {
  await Promise.all([flushDb(BROKER), flushDb(RESULTS)]);
});

afterAll(async () => {
  await Promise.all([flushDb(BROKER), flushDb(RESULTS)]);
});

it('--pidfile: refuses to start over a live worker, replaces a stale pidfile, removes it at exit', async () => {
  const dir = testTmpDir('worker-pidfile');
  const pidfile = path.join(dir, 'celeriac.pid');
  const first = await startCeleriacWorker({ ...common, extraArgs: ['--pidfile', pidfile] });
  expect(fs.readFileSync(pidfile, 'utf8').trim()).toBe(String(first.pid));

  const cli = path.join(PROJECT_ROOT, 'workers', 'cli', 'main.ts');
  const second = startProcess(
    process.execPath,
    ['-r', 'tsx/cjs', cli, 'worker', '-b', common.brokerUrl, '--result-backend', common.backendUrl, '--pidfile', pidfile],
    { cwd: PROJECT_ROOT, env: { APP_ENV: 'development', CELERIAC_LOG_LEVEL: 'info' } },
  );
  const timeout = new Promise<null>((r) => setTimeout(() => r(null), 15_000).unref());
  const refused = await Promise.race([second.exited, timeout]);
  if (!refused) await second.stop(2_000);
  expect(refused?.code).not.toBe(0);
  expect(refused?.code).not.toBeNull();
  expect(second.output()).toContain(pidfile);
  expect(second.output()).not.toMatch(/ready\./);
  expect(fs.readFileSync(pidfile, 'utf8').trim()).toBe(String(first.pid));
  expect(await first.stop()).toEqual({ code: 0, signal: null });
  expect(fs.existsSync(pidfile)).toBe(false);

  // A pidfile left by a process that is gone (a finished child's pid) does not block a start.
  const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  fs.writeFileSync(pidfile, `${dead.stdout}\n`);
  const third = await startCeleriacWorker({ ...common, extraArgs: ['--pidfile', pidfile] });
  expect(fs.readFileSync(pidfile, 'utf8').trim()).toBe(String(third.pid));
  expect(await third.stop()).toEqual({ code: 0, signal: null });
  expect(fs.existsSync(pidfile)).toBe(false);
});
