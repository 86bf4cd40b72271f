/**
 * Integration-project global teardown: stops the run's redis-server (`shutdown nosave`), its
 * mongo-server (SIGTERM) and
 * RabbitMQ node (`rabbitmqctl stop <pidfile>`, which returns once the VM has exited) in
 * parallel, then cleanupRun SIGKILLs whatever is still there (a server that did not answer, the
 * run's epmd, any test subprocess a test file forgot to stop) and removes the run's temp dir.
 * State comes from globalSetup (global, or the state file in os.tmpdir()).
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import { stopRabbit } from './rabbitServer';
import { RunState, cleanupRun, readState } from './runState';
import { armExitWatchdog } from './exitWatchdog';

function shutdownRedis(port: number): Promise<void> {
  return new Promise((resolve) => {
    execFile('redis-cli', ['-p', String(port), 'shutdown', 'nosave'], { timeout: 5_000 }, () => resolve());
  });
}

/** CPU seconds a process has used (utime + stime), for the verbose report; undefined if unknown. */
function cpuSeconds(pid: number | undefined): number | undefined {
  if (!pid) return undefined;
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // Fields after the comm: state is [0], utime [11], stime [12] (clock ticks, 100/s on Linux).
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return undefined;
  }
}

/** SIGTERM (a clean SQLite close), up to 5 s; cleanupRun SIGKILLs it if it is still there. */
async function stopMongo(pid: number): Promise<void> {
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  for (let waited = 0; waited < 5_000; waited += 50) {
    try {
      process.kill(pid, 0);
    } catch {
      return;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

export default async function globalTeardown(): Promise<void> {
  const started = Date.now();
  const state = (globalThis as { __celeriacTestRun?: RunState }).__celeriacTestRun ?? readState();
  if (!state) return;
  const { rabbit } = state;
  const rabbitCpu = cpuSeconds(rabbit?.beamPid);
  await Promise.all([
    state.redisPort > 0 ? shutdownRedis(state.redisPort) : Promise.resolve(),
    state.mongoPid > 0 ? stopMongo(state.mongoPid) : Promise.resolve(),
    rabbit
      ? stopRabbit(rabbit).then(
          (res) => {
            if (res.code !== 0) {
              process.stderr.write(`[globalTeardown] rabbitmqctl stop failed (code ${res.code}): ` +
                `${(res.stderr || res.stdout).trim().slice(0, 500)}; killing the node\n`);
            }
          },
          (err: Error) => process.stderr.write(`[globalTeardown] ${err.message}; killing the node\n`),
        )
      : Promise.resolve(),
  ]);
  cleanupRun(state);
  armExitWatchdog();
  if (process.env.CELERIAC_TEST_VERBOSE_SETUP) {
    process.stderr.write(`[globalTeardown] took ${Date.now() - started} ms; the RabbitMQ node used ` +
      `${rabbitCpu ?? '?'} s of CPU over the run\n`);
  }
}
