/**
 * What globalSetup hands to globalTeardown (and to a later run's stale-run sweep), kept in a JSON
 * file in os.tmpdir() named after the jest process's pid. A file rather than only a global
 * because a run killed with SIGKILL never reaches teardown: the next globalSetup finds the file
 * of a dead owner and removes what it left behind (redis-server, RabbitMQ node and its epmd,
 * test subprocesses, temp dir). globalSetup writes it BEFORE starting the servers and again as
 * pids become known, so a run killed during the (slow) RabbitMQ startup is swept too.
 *
 * Every process a run starts carries CELERIAC_TEST_RUN=<owner pid> in its environment; a pid is
 * only ever signalled after /proc/<pid>/environ shows that marker (redis-server: its title shows
 * the run's port), so a reused pid is never hit. For RabbitMQ that covers the recorded pids (the
 * launcher script, the beam from <base>/rabbit.pid, epmd) and, because Erlang starts helpers that
 * leave the process group (erl_child_setup calls setsid), any Erlang process (beam.smp, epmd,
 * erl_child_setup, inet_gethost) found in /proc with the dead run's marker.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { SpawnedRabbit } from './rabbitServer';

export interface RunState {
  ownerPid: number;
  /** 0 until redis-server has started. */
  redisPid: number;
  redisPort: number;
  /** 0 until the MongoDB-wire server has started. It keeps its environment: the marker identifies it. */
  mongoPid: number;
  tmpDir: string;
  /** Set as soon as the node's dir and ports are chosen; pids are added as they exist. */
  rabbit?: SpawnedRabbit;
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

/** A zombie (killed, not yet reaped: init can be slow to reap here) counts as dead. */
function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    // /proc/<pid>/stat: "pid (comm) S ..."; comm may contain spaces and parentheses.
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
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

/** Erlang processes a RabbitMQ node leaves around (by /proc/<pid>/comm). */
const ERLANG_COMMS = new Set(['beam.smp', 'epmd', 'erl_child_setup', 'inet_gethost']);

/** Pids of Erlang processes whose environment carries the run's marker. */
function markedErlangProcesses(ownerPid: number): number[] {
  let entries: string[];
  try {
    entries = fs.readdirSync('/proc');
  } catch {
    return [];
  }
  const found: number[] = [];
  for (const entry of entries) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || pid <= 1 || pid === process.pid) continue;
    let comm: string;
    try {
      comm = fs.readFileSync(`/proc/${pid}/comm`, 'latin1').trim();
    } catch {
      continue;
    }
    if (ERLANG_COMMS.has(comm) && belongsToRun(pid, ownerPid)) found.push(pid);
  }
  return found;
}

function beamPidFromFile(base: string): number | undefined {
  try {
    const pid = Number(fs.readFileSync(path.join(base, 'rabbit.pid'), 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** SIGKILLs the run's RabbitMQ node, its launcher, its epmd and any Erlang helper left over. */
function killRabbit(state: RunState): void {
  const r = state.rabbit;
  const pids = [r?.beamPid, r ? beamPidFromFile(r.base) : undefined, r?.launcherPid, r?.epmdPid];
  for (const pid of pids) if (pid) killIfOurs(pid, state.ownerPid);
  for (const pid of markedErlangProcesses(state.ownerPid)) killIfOurs(pid, state.ownerPid);
}

/**
 * Kills the run's subprocesses, redis-server, mongo-server and RabbitMQ node (with its epmd), deletes its tmp
 * dir and its state file.
 */
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
  if (state.redisPid > 0 && isRunRedis(state)) killIfOurs(state.redisPid, state.ownerPid, true);
  if (state.mongoPid > 0) killIfOurs(state.mongoPid, state.ownerPid);
  killRabbit(state);
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
