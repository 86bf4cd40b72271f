/**
 * Integration-project global setup: ONE redis-server for the whole run (every test file picks
 * its own db numbers, files run one at a time) plus a check that the interop venv works.
 *
 * Exports to the tests through process.env (jest workers and in-band test contexts are created
 * after this runs, so they inherit it):
 *   CELERIAC_TEST_REDIS_PORT  port of the redis-server
 *   CELERIAC_TEST_REDIS_URL   redis://127.0.0.1:<port>
 *   CELERIAC_TEST_PYTHON      absolute path of the venv python (.venv-interop/bin/python)
 *   CELERIAC_TEST_TMP         a temp dir tests may use; removed by globalTeardown
 *   CELERIAC_TEST_RUN         this jest pid; marks every process the run starts (see runState.ts)
 *   CELERIAC_TEST_PIDS_FILE   where helpers/processes.ts records what it starts, for teardown
 * Tests should read these through tests/helpers/env.ts, not directly.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startRedis } from './redisServer';
import { PIDS_FILE_VAR, RUN_MARKER, RunState, pidsFile, sweepStaleRuns, writeState } from './runState';

const ROOT = path.resolve(__dirname, '..', '..');

/** Fails unless the venv python exists and imports celery: the suite must never run without it. */
function checkPython(): string {
  const python = path.join(ROOT, '.venv-interop', 'bin', 'python');
  const hint = 'Run `npm test` (scripts/test.sh), which creates/refreshes .venv-interop from tests/interop/requirements.txt.';
  if (!fs.existsSync(python)) throw new Error(`Interop venv python not found at ${python}. ${hint}`);
  const res = spawnSync(python, ['-c', 'import celery, sys; sys.stdout.write(celery.__version__)'], {
    encoding: 'utf8',
    timeout: 30_000,
  });
  if (res.status !== 0) {
    throw new Error(`${python} cannot import celery (status ${res.status}): ${res.stderr || res.error}\n${hint}`);
  }
  return python;
}

export default async function globalSetup(): Promise<void> {
  const started = Date.now();
  sweepStaleRuns();
  const python = checkPython();

  const tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'celeriac-test-'));
  const testTmp = path.join(tmpDir, 'tests');
  fs.mkdirSync(testTmp);
  process.env[RUN_MARKER] = String(process.pid);
  let redis;
  try {
    redis = await startRedis(tmpDir, process.env);
  } catch (err) {
    fs.rmSync(tmpDir, { recursive: true, force: true });
    throw err;
  }
  const state: RunState = { ownerPid: process.pid, redisPid: redis.pid, redisPort: redis.port, tmpDir };
  writeState(state);
  // Same process as globalTeardown: the global is the fast path, the state file the fallback.
  (globalThis as { __celeriacTestRun?: RunState }).__celeriacTestRun = state;

  process.env.CELERIAC_TEST_REDIS_PORT = String(redis.port);
  process.env.CELERIAC_TEST_REDIS_URL = `redis://127.0.0.1:${redis.port}`;
  process.env.CELERIAC_TEST_PYTHON = python;
  process.env.CELERIAC_TEST_TMP = testTmp;
  process.env[PIDS_FILE_VAR] = pidsFile(state);
  if (process.env.CELERIAC_TEST_VERBOSE_SETUP) {
    process.stderr.write(`\n[globalSetup] redis on ${redis.port}, ready in ${Date.now() - started} ms\n`);
  }
}
