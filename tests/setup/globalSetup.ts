/**
 * Integration-project global setup: ONE redis-server, ONE RabbitMQ node and ONE MongoDB-wire
 * server (FerretDB embedded, scripts/mongo-server) for the whole run (every test file picks its
 * own redis db numbers / its own vhost / its own Mongo database, files run one at a time),
 * started in parallel so the run waits once, plus a check that the interop venv works. Any
 * failure throws (with the server's log tail) after cleaning up whatever did start: the suite
 * fails, it never skips.
 *
 * Exports to the tests through process.env (jest workers and in-band test contexts are created
 * after this runs, so they inherit it):
 *   CELERIAC_TEST_REDIS_PORT  port of the redis-server
 *   CELERIAC_TEST_REDIS_URL   redis://127.0.0.1:<port>
 *   CELERIAC_TEST_AMQP_PORT   AMQP port of the RabbitMQ node (127.0.0.1 only)
 *   CELERIAC_TEST_AMQP_URL    amqp://guest:guest@127.0.0.1:<port>//  (the default vhost "/")
 *   CELERIAC_TEST_AMQPS_PORT  the node's AMQPS (TLS) port; CELERIAC_TEST_TLS_CA its CA (PEM path)
 *   CELERIAC_TEST_RABBIT_NODE         Erlang node name, celeriac-<jest pid>@localhost
 *   CELERIAC_TEST_RABBIT_DIR          the node's base dir (mnesia/, log/, home/ with the cookie)
 *   CELERIAC_TEST_RABBIT_HOME         HOME for rabbitmqctl (the Erlang cookie lives there)
 *   CELERIAC_TEST_RABBIT_DIST_PORT    the node's Erlang distribution port
 *   CELERIAC_TEST_RABBIT_EPMD_PORT    the run's own epmd (rabbitmqctl needs ERL_EPMD_PORT)
 *   CELERIAC_TEST_RABBITMQCTL         absolute path of rabbitmqctl
 *   CELERIAC_TEST_MONGO_PORT  port of the MongoDB-wire server (127.0.0.1 only)
 *   CELERIAC_TEST_MONGO_URL   mongodb://127.0.0.1:<port>
 *   CELERIAC_TEST_PYTHON      absolute path of the venv python (.venv-interop/bin/python)
 *   CELERIAC_TEST_SCA_PYTHON  python of .venv-sca (sca-rhythm with Celery 5.2, as Bioloop runs it)
 *   CELERIAC_TEST_TMP         a temp dir tests may use; removed by globalTeardown
 *   CELERIAC_TEST_RUN         this jest pid; marks every process the run starts (see runState.ts)
 *   CELERIAC_TEST_PIDS_FILE   where helpers/processes.ts records what it starts, for teardown
 * Tests should read these through tests/helpers/env.ts and tests/helpers/rabbit.ts, not directly.
 * CELERIAC_TEST_VERBOSE_SETUP=1 prints how long each server took.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { RABBITMQCTL, StartedRabbit, rabbitTlsCa, startRabbit } from './rabbitServer';
import { StartedRedis, startRedis } from './redisServer';
import { StartedMongo, startMongo } from './mongoServer';
import { PIDS_FILE_VAR, RUN_MARKER, RunState, cleanupRun, pidsFile, sweepStaleRuns, writeState } from './runState';
import { recordLongTimers } from './exitWatchdog';

const ROOT = path.resolve(__dirname, '..', '..');

/** Fails unless the venv's python exists and imports celery: the suite must never run without it. */
function checkPython(venv: string, imports = 'celery'): Promise<string> {
  const python = path.join(ROOT, venv, 'bin', 'python');
  const hint = `Run \`npm test\` (scripts/test.sh), which creates/refreshes ${venv} from tests/interop/requirements*.txt.`;
  if (!fs.existsSync(python)) return Promise.reject(new Error(`Interop venv python not found at ${python}. ${hint}`));
  // Asynchronous: the servers start meanwhile.
  return new Promise((resolve, reject) => {
    execFile(
      python,
      ['-c', `import ${imports}, sys; sys.stdout.write(celery.__version__)`],
      { encoding: 'utf8', timeout: 30_000 },
      (err, _stdout, stderr) => {
        if (err) reject(new Error(`${python} cannot import ${imports} (${err.code ?? err.message}): ${stderr}\n${hint}`));
        else resolve(python);
      },
    );
  });
}

function failure(result: PromiseSettledResult<unknown>): Error | undefined {
  if (result.status === 'fulfilled') return undefined;
  return result.reason instanceof Error ? result.reason : new Error(String(result.reason));
}

export default async function globalSetup(): Promise<void> {
  const started = Date.now();
  recordLongTimers();
  sweepStaleRuns();

  const tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'celeriac-test-'));
  const testTmp = path.join(tmpDir, 'tests');
  fs.mkdirSync(testTmp);
  process.env[RUN_MARKER] = String(process.pid);
  // Written before anything starts: a run killed during startup is still swept by the next one.
  const state: RunState = { ownerPid: process.pid, redisPid: 0, redisPort: 0, mongoPid: 0, tmpDir };
  writeState(state);

  let redisMs = 0;
  const [pythonResult, scaPythonResult, redisResult, mongoResult, rabbitResult] = await Promise.allSettled([
    checkPython('.venv-interop', 'celery, sca_rhythm, rq, netCDF4'),
    checkPython('.venv-sca', 'celery, sca_rhythm'),
    startRedis(tmpDir, process.env).then((redis): StartedRedis => {
      redisMs = Date.now() - started;
      state.redisPid = redis.pid;
      state.redisPort = redis.port;
      writeState(state);
      return redis;
    }),
    startMongo(tmpDir, process.env).then((mongo): StartedMongo => {
      state.mongoPid = mongo.pid;
      writeState(state);
      return mongo;
    }),
    startRabbit({
      dir: tmpDir,
      env: process.env,
      ownerPid: process.pid,
      onSpawned: (info) => {
        state.rabbit = info;
        writeState(state);
      },
    }).then((rabbit): StartedRabbit => {
      state.rabbit = { ...rabbit };
      writeState(state);
      return rabbit;
    }),
  ]);
  const results = [pythonResult, scaPythonResult, redisResult, mongoResult, rabbitResult];
  if (pythonResult.status === 'rejected' || scaPythonResult.status === 'rejected' || redisResult.status === 'rejected' ||
    mongoResult.status === 'rejected' || rabbitResult.status === 'rejected') {
    const errors = results.map(failure).filter((e): e is Error => !!e);
    // Kills whatever did start (redis, mongo, a half-started node, epmd) and removes the temp dir.
    cleanupRun(state);
    throw new Error(`Integration globalSetup failed:\n${errors.map((e) => e.message).join('\n\n')}`);
  }
  const python = pythonResult.value;
  const redis = redisResult.value;
  const mongo = mongoResult.value;
  const rabbit = rabbitResult.value;
  // Same process as globalTeardown: the global is the fast path, the state file the fallback.
  (globalThis as { __celeriacTestRun?: RunState }).__celeriacTestRun = state;

  process.env.CELERIAC_TEST_REDIS_PORT = String(redis.port);
  process.env.CELERIAC_TEST_REDIS_URL = `redis://127.0.0.1:${redis.port}`;
  process.env.CELERIAC_TEST_AMQP_PORT = String(rabbit.port);
  process.env.CELERIAC_TEST_AMQP_URL = `amqp://guest:guest@127.0.0.1:${rabbit.port}//`;
  process.env.CELERIAC_TEST_AMQPS_PORT = String(rabbit.tlsPort);
  process.env.CELERIAC_TEST_TLS_CA = rabbitTlsCa(rabbit.base);
  process.env.CELERIAC_TEST_RABBIT_NODE = rabbit.node;
  process.env.CELERIAC_TEST_RABBIT_DIR = rabbit.base;
  process.env.CELERIAC_TEST_RABBIT_HOME = path.join(rabbit.base, 'home');
  process.env.CELERIAC_TEST_RABBIT_DIST_PORT = String(rabbit.distPort);
  process.env.CELERIAC_TEST_RABBIT_EPMD_PORT = String(rabbit.epmdPort);
  process.env.CELERIAC_TEST_RABBITMQCTL = RABBITMQCTL;
  process.env.CELERIAC_TEST_MONGO_PORT = String(mongo.port);
  process.env.CELERIAC_TEST_MONGO_URL = `mongodb://127.0.0.1:${mongo.port}`;
  process.env.CELERIAC_TEST_PYTHON = python;
  process.env.CELERIAC_TEST_SCA_PYTHON = scaPythonResult.value;
  process.env.CELERIAC_TEST_TMP = testTmp;
  process.env[PIDS_FILE_VAR] = pidsFile(state);
  if (process.env.CELERIAC_TEST_VERBOSE_SETUP) {
    process.stderr.write(
      `\n[globalSetup] redis on ${redis.port} ready after ${redisMs} ms; rabbitmq ${rabbit.node} on ` +
        `${rabbit.port} ready after ${rabbit.startupMs} ms; setup took ${Date.now() - started} ms\n`,
    );
  }
}
