/**
 * Starts the one redis-server an integration run shares (see globalSetup.ts) and waits for PING.
 * A missing binary, a port taken between picking and binding, or a server that never answers
 * all end in an Error that carries the server log's tail: the suite must fail, never skip.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';

export interface StartedRedis {
  pid: number;
  port: number;
  logFile: string;
}

/** Asks the kernel for a free loopback port (it may be taken again before redis binds: retried). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (addr && typeof addr === 'object' ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

/** One PING over a raw socket: avoids ioredis's reconnect machinery while the server boots. */
export function ping(port: number, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ host: '127.0.0.1', port });
    let buf = '';
    const done = (ok: boolean): void => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(timeoutMs, () => done(false));
    sock.on('error', () => done(false));
    sock.on('connect', () => sock.write('PING\r\n'));
    sock.on('data', (d) => {
      buf += d.toString('latin1');
      if (buf.includes('\r\n')) done(buf.startsWith('+PONG'));
    });
  });
}

export function logTail(file: string, lines = 30): string {
  try {
    const text = fs.readFileSync(file, 'utf8').trimEnd();
    return text ? text.split('\n').slice(-lines).join('\n') : '(log is empty)';
  } catch {
    return '(no log written)';
  }
}

function requireBinary(): void {
  const found = spawnSync('sh', ['-c', 'command -v redis-server'], { encoding: 'utf8' });
  if (found.status !== 0) {
    throw new Error(
      'redis-server is not installed or not on PATH. `npm test` (scripts/test.sh) installs the ' +
        'Debian package redis-server; run it instead of calling jest directly on a fresh machine.',
    );
  }
}

/** One attempt on one port; resolves when PING answers, rejects with the log tail otherwise. */
async function startOnPort(port: number, dir: string, env: NodeJS.ProcessEnv): Promise<StartedRedis> {
  const logFile = path.join(dir, `redis-${port}.log`);
  const log = fs.openSync(logFile, 'a');
  // --databases 128: test files each take their own db numbers (canvas tests use 64-99); 16 would run out quickly.
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
    '--dir', dir, '--daemonize', 'no', '--databases', '128'];
  const child = spawn('redis-server', args, { stdio: ['ignore', log, log], env });
  fs.closeSync(log);
  // The server must not keep jest alive if teardown is never reached; it is killed explicitly.
  child.unref();
  let exited: string | undefined;
  child.on('exit', (code, signal) => (exited = `exited (code ${code}, signal ${signal})`));
  child.on('error', (err) => (exited = `failed to spawn: ${err.message}`));

  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (exited) break;
    if (await ping(port)) return { pid: child.pid as number, port, logFile };
    await new Promise((r) => setTimeout(r, 50));
  }
  if (!exited) child.kill('SIGKILL');
  const why = exited ?? 'did not answer PING within 10 s';
  throw new Error(`redis-server on 127.0.0.1:${port} ${why}. Log tail (${logFile}):\n${logTail(logFile)}`);
}

export async function startRedis(dir: string, env: NodeJS.ProcessEnv): Promise<StartedRedis> {
  requireBinary();
  return onAFreePort((port) => startOnPort(port, dir, env), 'redis-server');
}

/**
 * Starts a server on a free port, again on another one if the port was taken between the check
 * and the bind (only that lost race is worth another try).
 */
export async function onAFreePort<T>(start: (port: number) => Promise<T>, what: string): Promise<T> {
  let lastError: Error | undefined;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return await start(await freePort());
    } catch (err) {
      lastError = err as Error;
      if (!/address already in use/i.test(lastError.message)) break;
    }
  }
  throw lastError ?? new Error(`${what} did not start`);
}
