/**
 * What globalSetup hands to globalTeardown (and to a later run's stale-run sweep), kept in a JSON
 * file in os.tmpdir() named after the jest process's pid. A file rather than only a global
 * because a run killed with SIGKILL never reaches teardown: the next globalSetup finds the file
 * of a dead owner and removes what it left behind (redis-server, test subprocesses, temp dir).
 *
 * Every process a run starts carries CELERIAC_TEST_RUN=<owner pid> in its environment; a pid is
 * only ever signalled after /proc/<pid>/environ shows that marker (redis-server: its title shows
 * the run's port), so a reused pid is never hit.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface RunState {
  ownerPid: number;
  redisPid: number;
  redisPort: number;
  tmpDir: string;
}

const PREFIX = 'celeriac-test-run-';

/** Name of the env var that marks every process belonging to a test run. */
export const RUN_MARKER = 'CELERIAC_TEST_RUN';

/** Env var naming the file where helpers/processes.ts appends the pid of every group it starts. */
export const PIDS_FILE_VAR = 'CELERIAC_TEST_PIDS_FILE';

export function pidsFile(state: Pick<RunState, 'tmpDir'>): string {
  return path.join(state.tmpDir, 'started-pids');
}

export function stateFile(ownerPid: number = process.pid): string {
  return path.join(os.tmpdir(), `${PREFIX}${ownerPid}.json`);
}

export function writeState(state: RunState): void {
  fs.writeFileSync(stateFile(state.ownerPid), JSON.stringify(state));
}

export function readState(ownerPid: number = process.pid): RunState | undefined {
  try {
    return JSON.parse(fs.readFileSync(stateFile(ownerPid), 'utf8')) as RunState;
  } catch {
    return undefined;
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** True when the process exists and its environment carries this run's marker. */
function belongsToRun(pid: number, ownerPid: number): boolean {
  try {
    const environ = fs.readFileSync(`/proc/${pid}/environ`, 'latin1');
    return environ.split('\0').includes(`${RUN_MARKER}=${ownerPid}`);
  } catch {
    return false;
  }
}

/**
 * redis-server overwrites its environ area with its process title, so the marker is not there;
 * its title (`redis-server 127.0.0.1:<port>`) identifies it instead.
 */
function isRunRedis(state: RunState): boolean {
  try {
    const title = fs.readFileSync(`/proc/${state.redisPid}/cmdline`, 'latin1');
    return title.includes('redis-server') && title.includes(`:${state.redisPort}`);
  } catch {
    return false;
  }
}

/** SIGKILL a process group (or the lone process) if it still belongs to the run. */
function killIfOurs(pid: number, ownerPid: number, known = false): void {
  if (!known && !belongsToRun(pid, ownerPid)) return;
  for (const target of [-pid, pid]) {
    try {
      process.kill(target, 'SIGKILL');
    } catch {
      /* already gone, or not a group leader */
    }
  }
}

/** Kills the run's subprocesses and redis-server, deletes its tmp dir and its state file. */
export function cleanupRun(state: RunState): void {
  let pids: number[] = [];
  try {
    pids = fs
      .readFileSync(pidsFile(state), 'utf8')
      .split('\n')
      .map(Number)
      .filter((n) => Number.isInteger(n) && n > 0);
  } catch {
    /* no subprocess was ever started */
  }
  for (const pid of pids) killIfOurs(pid, state.ownerPid);
  if (isRunRedis(state)) killIfOurs(state.redisPid, state.ownerPid, true);
  fs.rmSync(state.tmpDir, { recursive: true, force: true });
  fs.rmSync(stateFile(state.ownerPid), { force: true });
}

/** Cleans up after earlier runs whose jest process died without running globalTeardown. */
export function sweepStaleRuns(): void {
  let names: string[];
  try {
    names = fs.readdirSync(os.tmpdir()).filter((n) => n.startsWith(PREFIX) && n.endsWith('.json'));
  } catch {
    return;
  }
  for (const name of names) {
    const owner = Number(name.slice(PREFIX.length, -'.json'.length));
    if (!Number.isInteger(owner) || owner === process.pid || isAlive(owner)) continue;
    const state = readState(owner);
    if (state) cleanupRun(state);
    else fs.rmSync(path.join(os.tmpdir(), name), { force: true });
  }
}
