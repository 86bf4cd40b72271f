/**
 * Starts the run's one MongoDB-wire server (scripts/mongo-server: FerretDB 1.24 embedded, SQLite
 * files in the run's temp dir) on a free loopback port and waits for its "ready" line. The binary
 * is built by scripts/test.sh (scripts/mongo-server/build.sh); a missing binary or a server that
 * never gets ready ends in an Error with its log tail: the suite fails, it never skips.
 *
 * FerretDB is not MongoDB (see /work/shared/ENVIRONMENT.md): findOneAndUpdate and conditional
 * updates are not atomic under concurrency; $facet, $lookup, TTL indexes, change streams and
 * transactions are missing. Code under test must be correct on both.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { logTail, onAFreePort } from './redisServer';

export interface StartedMongo {
  pid: number;
  port: number;
  logFile: string;
}

export const MONGO_SERVER_BIN = path.resolve(__dirname, '..', '..', '.cache', 'mongo-server', 'mongo-server');

function startOnPort(port: number, dir: string, env: NodeJS.ProcessEnv): Promise<StartedMongo> {
  const logFile = path.join(dir, `mongo-${port}.log`);
  const dataDir = path.join(dir, `mongo-${port}`);
  const log = fs.openSync(logFile, 'a');
  // stdout is read for the ready line; stderr (FerretDB's own log) goes to the file.
  const child = spawn(MONGO_SERVER_BIN, ['-port', String(port), '-dir', dataDir], { stdio: ['ignore', 'pipe', log], env });
  fs.closeSync(log);
  child.unref();
  return new Promise((resolve, reject) => {
    let out = '';
    const fail = (why: string): void => {
      clearTimeout(timer);
      child.kill('SIGKILL');
      reject(new Error(`mongo-server on 127.0.0.1:${port} ${why}. Output: ${out.trim() || '(none)'}\nLog tail (${logFile}):\n${logTail(logFile)}`));
    };
    const timer = setTimeout(() => fail('was not ready within 30 s'), 30_000);
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString('utf8');
      if (/^ready /m.test(out)) {
        clearTimeout(timer);
        // Nothing more is read: let the pipe go so jest is not held open by it.
        child.stdout?.destroy();
        resolve({ pid: child.pid as number, port, logFile });
      }
    });
    child.on('error', (err) => fail(`failed to spawn: ${err.message}`));
    child.on('exit', (code, signal) => fail(`exited (code ${code}, signal ${signal})`));
  });
}

export async function startMongo(dir: string, env: NodeJS.ProcessEnv): Promise<StartedMongo> {
  if (!fs.existsSync(MONGO_SERVER_BIN)) {
    throw new Error(
      `${MONGO_SERVER_BIN} is missing. \`npm test\` (scripts/test.sh) builds it with ` +
        '`bash scripts/mongo-server/build.sh` (Go + the module proxy); run that first.',
    );
  }
  return onAFreePort((port) => startOnPort(port, dir, env), 'mongo-server');
}
