/**
 * Shared plumbing of `npm run bench`: child processes in their own process groups (so a stop
 * reaches prefork pool children and a Ctrl-C on the terminal reaches only the bench), free ports,
 * CPU accounting from /proc, percentiles and the row type both brokers report into.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';

export const ROOT = resolve(__dirname, '..', '..');

/**
 * The node arguments that start Celeriac's CLI entry: the TypeScript source under tsx (default),
 * or with --compiled the build in dist/ that production runs (#15), without tsx's loader and its
 * per-call helpers (issue #16). The build must be current: `npm run build` first.
 */
export function celeriacEntry(compiled: boolean, nodeArgs: readonly string[]): string[] {
  if (!compiled) return ['-r', 'tsx/cjs', ...nodeArgs, join(ROOT, 'workers/cli/main.ts')];
  const js = join(ROOT, 'dist/workers/cli/main.js');
  if (!existsSync(js)) throw new Error(`--compiled: ${js} is missing; run npm run build first`);
  return [...nodeArgs, js];
}
export const BENCH_DIR = __dirname;

// ---- processes --------------------------------------------------------------------------------

export interface Proc {
  readonly name: string;
  readonly child: ChildProcess;
  readonly pid: number;
  exited: boolean;
  readonly exit: Promise<void>;
  /** Last 64 KiB of stdout+stderr. */
  output(): string;
}

/** Every process the bench started and that has not exited yet. */
export const live = new Set<Proc>();

export function start(name: string, cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Proc {
  // Own process group, so a stop reaches what it forks (prefork pool children, the Erlang VM
  // under rabbitmq-server's script) and a Ctrl-C on the terminal reaches only us: cleanup then
  // stops everything in order.
  const child = spawn(cmd, args, { cwd: opts.cwd ?? ROOT, env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let out = '';
  const keep = (d: Buffer): void => {
    out += d.toString('utf8');
    if (out.length > 65536) out = out.slice(-65536);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const proc: Proc = {
    name,
    child,
    pid: child.pid ?? -1,
    exited: false,
    exit: new Promise<void>((res) => {
      child.on('error', (err) => {
        out += `\n[bench] ${cmd}: ${err.message}\n`;
        proc.exited = true;
        live.delete(proc);
        res();
      });
      child.on('close', () => {
        proc.exited = true;
        live.delete(proc);
        res();
      });
    }),
    output: () => out,
  };
  live.add(proc);
  return proc;
}

export function signalGroup(p: Proc, sig: NodeJS.Signals): void {
  if (p.pid <= 0) return;
  try {
    process.kill(-p.pid, sig);
  } catch {
    /* gone */
  }
}

/** SIGTERM to the process itself (warm shutdown), then SIGKILL to its group after graceMs. */
export async function stop(p: Proc, graceMs = 15_000): Promise<void> {
  if (!p.exited) {
    try {
      process.kill(p.pid, 'SIGTERM');
    } catch {
      /* gone */
    }
    let timer: NodeJS.Timeout | undefined;
    const forced = new Promise<void>((res) => {
      timer = setTimeout(() => {
        signalGroup(p, 'SIGKILL');
        res();
      }, graceMs);
    });
    await Promise.race([p.exit, forced]);
    clearTimeout(timer);
  }
  // Anything the leader left in its group (an orphaned pool child) goes too.
  signalGroup(p, 'SIGKILL');
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.once('error', rej);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => res(port));
    });
  });
}

/** `count` distinct free loopback ports. */
export async function freePorts(count: number): Promise<number[]> {
  for (;;) {
    const ports = await Promise.all(Array.from({ length: count }, () => freePort()));
    if (new Set(ports).size === count) return ports;
  }
}

export function log(msg: string): void {
  process.stderr.write(`[bench] ${msg}\n`);
}

/**
 * After a worker stopped: show its warnings and errors, if any. Celery's banner, the shutdown line
 * and Celery's "running the worker with superuser privileges" SecurityWarning are left out.
 */
export function logWorkerOutput(p: Proc, maxLines = 8): void {
  const lines = p
    .output()
    .split('\n')
    .filter((l) => /warn|error|critical|traceback|exception/i.test(l) && !/Warm shutdown|SecurityWarning|_warn_or_raise_security_error/i.test(l));
  if (lines.length) log(`${p.name} printed ${lines.length} line(s)${lines.length > maxLines ? `, last ${maxLines}` : ''}:\n    ${lines.slice(-maxLines).join('\n    ')}`);
}

/** CLOCK_MONOTONIC in µs: the clock V8's .cpuprofile timestamps use. */
export const monoUs = (): number => Number(process.hrtime.bigint() / 1000n);

/** The env without CELERIAC_* and CELERY_* settings (flags win anyway; keep stray ones out). */
export function cleanEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('CELERIAC_') && !k.startsWith('CELERY_')));
}

// ---- CPU accounting from /proc ------------------------------------------------------------------

const CLK_TCK = ((): number => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** utime+stime (seconds) and process group of one pid, or null when it is gone. */
export function procStat(pid: number | string): { cpu: number; pgrp: number } | null {
  try {
    const raw = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after "(comm)": state ppid pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt utime stime
    const rest = raw.slice(raw.lastIndexOf(')') + 2).split(' ');
    return { cpu: (Number(rest[11]) + Number(rest[12])) / CLK_TCK, pgrp: Number(rest[2]) };
  } catch {
    return null;
  }
}

/** CPU seconds the whole machine has been busy so far (all cores; /proc/stat, idle and iowait excluded). */
export function machineBusy(): number {
  try {
    const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal
    return ((f[0] ?? 0) + (f[1] ?? 0) + (f[2] ?? 0) + (f[5] ?? 0) + (f[6] ?? 0) + (f[7] ?? 0)) / CLK_TCK;
  } catch {
    return NaN;
  }
}

/** CPU seconds used so far by every live process in a process group (a worker and its pool). */
export function groupCpu(pgrp: number): number {
  let sum = 0;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const s = procStat(entry);
    if (s && s.pgrp === pgrp) sum += s.cpu;
  }
  return sum;
}

// ---- memory from /proc ----------------------------------------------------------------------------

export interface ProcMemory {
  pid: number;
  /** The kernel's short name of the process (node, celery, python...). */
  comm: string;
  rssKiB: number;
  /** Proportional set size: pages shared with other processes count a share each (see pools.ts). */
  pssKiB: number;
}

/**
 * RSS and PSS of every live process in a process group (a worker, its pool processes, and the
 * threads inside them), from /proc/<pid>/smaps_rollup: one read gives both. A process that exits
 * mid-scan, or a zombie, is skipped.
 */
export function groupMemory(pgrp: number): ProcMemory[] {
  const out: ProcMemory[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const close = stat.lastIndexOf(')');
      if (Number(stat.slice(close + 2).split(' ')[2]) !== pgrp) continue;
      const rollup = readFileSync(`/proc/${entry}/smaps_rollup`, 'utf8');
      const kib = (field: string): number => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(rollup)?.[1] ?? NaN);
      const rssKiB = kib('Rss');
      if (Number.isNaN(rssKiB)) continue; // a zombie has no mappings left
      out.push({ pid: Number(entry), comm: stat.slice(stat.indexOf('(') + 1, close), rssKiB, pssKiB: kib('Pss') });
    } catch {
      /* gone */
    }
  }
  return out;
}

/**
 * tsx's esbuild transform service: a node worker run from TypeScript source starts one in its
 * group when a file is not in tsx's disk cache yet (the first start after an edit), and it stays
 * up. It belongs to running from source, not to the worker (a compiled build has none), and it
 * would land on whichever contender happened to start first: the broker suite leaves it out.
 */
const LOADER_COMMS = new Set(['esbuild']);

/** The worker's own processes in a group: groupMemory without tsx's transform service. */
export function workerMemory(pgrp: number): ProcMemory[] {
  return groupMemory(pgrp).filter((p) => !LOADER_COMMS.has(p.comm));
}

/** Summed RSS (KiB) of a worker's process group, for the broker suite's idle and end-of-drain readings. */
export function groupRssKiB(pgrp: number): number {
  return workerMemory(pgrp).reduce((sum, p) => sum + p.rssKiB, 0);
}

// ---- statistics -----------------------------------------------------------------------------------

export interface LatencyResult {
  p50: number;
  p99: number;
  mean: number;
}

export function percentile(sorted: number[], p: number): number {
  if (!sorted.length) return NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}

export function latencyOf(samples: number[]): LatencyResult {
  const s = [...samples].sort((a, b) => a - b);
  return { p50: percentile(s, 50), p99: percentile(s, 99), mean: s.reduce((a, b) => a + b, 0) / s.length };
}

// ---- what both brokers report -------------------------------------------------------------------

export interface ContenderSpec {
  /** celeriac (the -c N main one), celeriac8, prefork, threads, celerynode; amqp also: amqplib. */
  id: string;
  label: string;
  /**
   * reference: a bare client with no task framework, to show the broker's ceiling.
   * peer: another Node Celery worker (celery-node), run through its own API.
   */
  kind: 'celeriac' | 'python' | 'reference' | 'peer';
  /** Processes in the worker's group once it consumes (prefork: the parent and its children). */
  processes: number;
}

/** A contender that cannot run in a broker/results setting, and why: reported instead of a row. */
export interface Gap {
  broker: 'redis' | 'amqp';
  results: string;
  contender: Omit<ContenderSpec, 'processes'>;
  why: string;
}

export interface DrainResult {
  /** CLOCK_MONOTONIC µs around the drain, for cutting a CPU profile to it. */
  windowUs: { fromUs: number; toUs: number };
  startupS: number;
  drainS: number;
  /** Tasks drained: N, but fewer for celery-node on AMQP (amqp.ts). */
  tasks: number;
  rate: number;
  workerCpuS: number;
  /** redis-server or the RabbitMQ VM (beam.smp), over the drain. */
  brokerCpuS: number;
  /** Everything else on the machine during the drain (the bench itself, other users), in cores. */
  otherCores: number;
  /** Redis only: commands the drain caused, by name. */
  commands?: Map<string, number>;
  /** RSS summed over the worker's process group, read the moment the drain ended. */
  rssEndKiB: number;
}

export interface Row {
  broker: 'redis' | 'amqp';
  /** Where results go: 'redis', 'rpc', or 'ignored'. */
  results: string;
  contender: ContenderSpec;
  /** Every drain, in order. */
  runs: DrainResult[];
  /** The median drain by rate (the upper one of the middle two for an even count). */
  drain: DrainResult;
  /** Round trips from the Python Celery client (null where it cannot read this worker's results). */
  latency: LatencyResult | null;
  /** Round trips from the worker's own Node client: Celeriac's app.sendTask, celery-node's client. */
  ownLatency: { client: string; result: LatencyResult } | null;
  /** RSS summed over the worker's process group, started on an empty queue and settled (idle.ts). */
  idleRssKiB: number | null;
}

export function medianRun(runs: DrainResult[]): DrainResult {
  const sorted = [...runs].sort((a, b) => a.rate - b.rate);
  return sorted[Math.floor(sorted.length / 2)]!;
}

/** Whole-number option parsing shared by the flags. */
export function positiveInt(name: string, v: string | undefined, allowZero = false): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < (allowZero ? 0 : 1)) {
    process.stderr.write(`--${name}: expected a whole number${allowZero ? '' : ' > 0'}, got ${JSON.stringify(v)}\n`);
    process.exit(2);
  }
  return n;
}
