// SIGTERM while the broker is down: the worker must still exit (it used to wait forever for
// Redis: its poll, its PUNSUBSCRIBE and its restores never returned). Uses a redis-server of its
// own, since it stops it.
import { testTmpDir } from '../helpers/env';
import { startCeleriacWorker } from '../helpers/celeriacWorker';
import { type ProcessHandle, startProcess } from '../helpers/processes';
import { freePort } from '../setup/redisServer';

let port: number;
let server: ProcessHandle;

function startRedis(dir: string): ProcessHandle {
  return startProcess(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--daemonize', 'no'],
    { cwd: dir, readyPattern: /Ready to accept connections/, timeoutMs: 10_000 },
  );
}

beforeAll(async () => {
  port = await freePort();
  server = startRedis(testTmpDir('redis-outage'));
  await server.waitReady();
});

afterAll(async () => {
  await server?.stop(5_000);
});

it('exits on SIGTERM within seconds while Redis is unreachable', async () => {
  const url = `redis://127.0.0.1:${port}`;
  const worker = await startCeleriacWorker({ brokerUrl: `${url}/0`, backendUrl: `${url}/1` });
  await server.stop(5_000);
  await worker.waitForOutput(/connection lost/);
  const t0 = Date.now();
  worker.kill('SIGTERM');
  const exit = await Promise.race([worker.exited, new Promise<null>((r) => setTimeout(() => r(null), 20_000))]);
  expect(exit).not.toBeNull();
  expect(exit?.code).toBe(0);
  expect(Date.now() - t0).toBeLessThan(20_000);
  expect(worker.output()).toMatch(/Warm shutdown/);
});
