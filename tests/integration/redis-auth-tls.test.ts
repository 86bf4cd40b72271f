// A password-protected redis-server of this file's own (requirepass, plain port + TLS port with a
// self-signed CA made here by openssl): Python Celery producer -> Celeriac worker -> Python result
// over redis://:pw@ and over rediss://...?ssl_cert_reqs=required&ssl_ca_certs=<ca>, the secret
// never in the worker's output, and a wrong password or an untrusted certificate stops the worker
// at once with one clear line. Does not use the run's shared redis-server.
import path from 'node:path';
import { PROJECT_ROOT, testTmpDir } from '../helpers/env';
import { pyClient } from '../helpers/python';
import { startCeleriacWorker } from '../helpers/celeriacWorker';
import { type ProcessHandle, startProcess } from '../helpers/processes';
import { freePort } from '../setup/redisServer';
import { makeTestCertificates } from '../setup/certs';

const SECRET = `Sec${process.pid}t0p${Date.now().toString(36)}`;

let dir: string;
let port: number;
let tlsPort: number;
let server: ProcessHandle;

beforeAll(async () => {
  dir = testTmpDir('redis-auth-tls');
  makeTestCertificates(dir);
  port = await freePort();
  do tlsPort = await freePort();
  while (tlsPort === port);
  server = startProcess(
    'redis-server',
    [
      '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir,
      '--daemonize', 'no', '--requirepass', SECRET,
      '--tls-port', String(tlsPort), '--tls-cert-file', 'server.pem', '--tls-key-file', 'server.key',
      '--tls-ca-cert-file', 'ca.pem', '--tls-auth-clients', 'no',
    ],
    { cwd: dir, readyPattern: /Ready to accept connections/, timeoutMs: 10_000 },
  );
  await server.waitReady();
});

afterAll(async () => {
  await server?.stop(5_000);
});

function plainUrl(db: number, password = SECRET): string {
  return `redis://:${password}@127.0.0.1:${port}/${db}`;
}

function tlsUrl(db: number, query = `ssl_cert_reqs=required&ssl_ca_certs=${encodeURIComponent(path.join(dir, 'ca.pem'))}`): string {
  return `rediss://:${SECRET}@127.0.0.1:${tlsPort}/${db}?${query}`;
}

async function roundTrip(brokerUrl: string, backendUrl: string): Promise<void> {
  const worker = await startCeleriacWorker({ brokerUrl, backendUrl, concurrency: 2 });
  const out = await pyClient<{ state: string; result: unknown; exc_type: string | null }>(
    { op: 'send', task: 'demo.add', args: [2, 3], wait: true, timeout: 15 },
    { env: { BROKER_URL: brokerUrl, RESULT_BACKEND: backendUrl } },
  );
  expect(out).toMatchObject({ state: 'SUCCESS', result: 5, exc_type: null });
  const exit = await worker.stop();
  expect(exit.code).toBe(0);
  const log = worker.output();
  expect(log).toMatch(/succeeded in .*: 5/);
  expect(log).not.toContain(SECRET);
  expect(log).toContain(':**@127.0.0.1');
}

/** A worker that should refuse to start: its exit (within 10 s) and output. */
async function failedStart(brokerUrl: string): Promise<{ code: number | null; log: string; ms: number }> {
  const started = Date.now();
  const cli = path.join(PROJECT_ROOT, 'workers', 'cli', 'main.ts');
  const handle = startProcess(process.execPath, ['-r', 'tsx/cjs', cli, 'worker', '-b', brokerUrl, '--result-backend', brokerUrl], {
    cwd: PROJECT_ROOT,
    env: { APP_ENV: 'development', CELERIAC_LOG_LEVEL: 'info' },
  });
  const timeout = new Promise<null>((r) => setTimeout(() => r(null), 10_000).unref());
  const exit = await Promise.race([handle.exited, timeout]);
  const ms = Date.now() - started;
  if (!exit) await handle.stop(2_000);
  return { code: exit ? exit.code : null, log: handle.output(), ms };
}

it('runs a Python-sent task over a password-protected redis:// and masks the password', async () => {
  await roundTrip(plainUrl(0), plainUrl(1));
});

it('runs a Python-sent task over rediss:// with ssl_cert_reqs=required and a CA file (broker and results)', async () => {
  await roundTrip(tlsUrl(2), tlsUrl(3));
});

it('refuses to start on a wrong password: one clear line, no stack trace, no retry loop', async () => {
  const wrong = `Wr0ng${process.pid}`;
  const { code, log, ms } = await failedStart(plainUrl(4, wrong));
  expect(code).not.toBeNull(); // it exited by itself
  expect(code).not.toBe(0);
  expect(ms).toBeLessThan(10_000);
  expect(log).toMatch(/worker could not start: .*WRONGPASS/);
  expect(log.match(/WRONGPASS/g)?.length ?? 0).toBeLessThanOrEqual(3);
  expect(log).not.toMatch(/^\s+at /m);
  expect(log).not.toContain(wrong);
});

it('refuses to start over rediss:// when the server certificate is not trusted', async () => {
  const { code, log } = await failedStart(tlsUrl(5, 'ssl_cert_reqs=required'));
  expect(code).not.toBeNull();
  expect(code).not.toBe(0);
  expect(log).toMatch(/worker could not start: .*self[- ]signed certificate/);
  expect(log).not.toMatch(/^\s+at /m);
  expect(log).not.toContain(SECRET);
});
