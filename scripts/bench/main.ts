/**
 * `npm run bench [-- --n 20000 --latency 500 --celeriac-concurrency 100 --profile]`
 *
 * Celeriac against Python Celery on the same machine, same Redis, same messages:
 *   1. starts a private redis-server on a free loopback port (temp dir, no persistence);
 *   2. a Python Celery producer (scripts/bench/pybench.py) enqueues N `demo.noop` messages once
 *      into a stash db; before each contender the broker and results dbs are flushed and the
 *      stash is COPYed into the broker's `celery` list, so every worker drains identical messages;
 *   3. each worker (all at `-l warning`, no per-task log lines) is started and timed from the
 *      first poll that sees the queue shorter than N (first message taken: start-up excluded)
 *      to the first poll that sees N result keys in the results db (every result stored);
 *   4. with the worker idle and still running: sequential apply_async().get() round trips from a
 *      Python client (and app.sendTask().get() from TypeScript for Celeriac), p50/p99;
 *   5. prints one table. With --profile, one more Celeriac drain under `node --cpu-prof` and a
 *      summary of where its main thread spent the time (profile kept under /tmp).
 * Nothing is written to the repository. See docs/benchmarks.md for the method and a recorded run.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir, availableParallelism, loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import Redis from 'ioredis';
import { Celeriac } from '../../workers/app/app';
import { formatSummary, loadProfile, summarizeProfile } from './cpuprofile';

const ROOT = resolve(__dirname, '..', '..');
const BENCH_DIR = __dirname;
const QUEUE = 'celery';
const DB_BROKER = 0;
const DB_RESULTS = 1;
const DB_STASH = 3;

// ---- options ----------------------------------------------------------------------------------

const { values: flags } = parseArgs({
  options: {
    n: { type: 'string', default: '20000' },
    latency: { type: 'string', default: '500' },
    warmup: { type: 'string', default: '20' },
    'celeriac-concurrency': { type: 'string', default: '100' },
    only: { type: 'string' },
    profile: { type: 'boolean', default: false },
    'poll-ms': { type: 'string', default: '2' },
    'drain-timeout': { type: 'string', default: '300' },
    repeat: { type: 'string', default: '3' },
    help: { type: 'boolean', default: false },
  },
  strict: true,
});

if (flags.help) {
  process.stdout.write(
    [
      'npm run bench -- [options]',
      '  --n N                     tasks per drain (20000)',
      '  --latency N               sequential round trips per worker (500; 0 = skip)',
      '  --warmup N                uncounted round trips before those (20)',
      '  --celeriac-concurrency N  Celeriac -c for the main contender (100); -c 8 always runs too',
      '  --only a,b                contenders: celeriac, celeriac8, prefork, threads',
      '  --profile                 one more Celeriac drain under node --cpu-prof, summarized',
      '  --poll-ms N               queue/results poll interval (2)',
      '  --drain-timeout S         give up on a drain after S seconds (300)',
      '  --repeat R                drains per contender, interleaved; the median is reported (3)',
      '',
    ].join('\n'),
  );
  process.exit(0);
}

function positiveInt(name: string, v: string | undefined, allowZero = false): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < (allowZero ? 0 : 1)) {
    process.stderr.write(`--${name}: expected a whole number${allowZero ? '' : ' > 0'}, got ${JSON.stringify(v)}\n`);
    process.exit(2);
  }
  return n;
}

const N = positiveInt('n', flags.n);
const LATENCY_N = positiveInt('latency', flags.latency, true);
const WARMUP = positiveInt('warmup', flags.warmup, true);
const CELERIAC_C = positiveInt('celeriac-concurrency', flags['celeriac-concurrency']);
const POLL_MS = positiveInt('poll-ms', flags['poll-ms']);
const DRAIN_TIMEOUT_MS = positiveInt('drain-timeout', flags['drain-timeout']) * 1000;
const REPEAT = positiveInt('repeat', flags.repeat);
const ONLY = flags.only ? new Set(flags.only.split(',').map((s) => s.trim())) : null;

// ---- processes --------------------------------------------------------------------------------

interface Proc {
  readonly name: string;
  readonly child: ChildProcess;
  readonly pid: number;
  exited: boolean;
  readonly exit: Promise<void>;
  /** Last 64 KiB of stdout+stderr. */
  output(): string;
}

const live = new Set<Proc>();

function start(name: string, cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Proc {
  // Own process group, so a stop reaches what it forks (prefork pool children) and a Ctrl-C on
  // the terminal reaches only us: cleanup() then stops everything in order.
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

function signalGroup(p: Proc, sig: NodeJS.Signals): void {
  if (p.exited || p.pid <= 0) return;
  try {
    process.kill(-p.pid, sig);
  } catch {
    /* gone */
  }
}

/** SIGTERM to the process itself (warm shutdown), then SIGKILL to its group after graceMs. */
async function stop(p: Proc, graceMs = 15_000): Promise<void> {
  if (p.exited) return;
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
  // Anything the leader left in its group (an orphaned pool child) goes too.
  signalGroup(p, 'SIGKILL');
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function freePort(): Promise<number> {
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

// ---- CPU accounting from /proc ------------------------------------------------------------------

const CLK_TCK = ((): number => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** utime+stime (seconds) and process group of one pid, or null when it is gone. */
function procStat(pid: number | string): { cpu: number; pgrp: number } | null {
  try {
    const raw = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after "(comm)": state ppid pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt utime stime
    const rest = raw.slice(raw.lastIndexOf(')') + 2).split(' ');
    return { cpu: (Number(rest[11]) + Number(rest[12])) / CLK_TCK, pgrp: Number(rest[2]) };
  } catch {
    return null;
  }
}

/** CPU seconds used so far by every live process in a process group (a worker and its pool). */
function groupCpu(pgrp: number): number {
  let sum = 0;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const s = procStat(entry);
    if (s && s.pgrp === pgrp) sum += s.cpu;
  }
  return sum;
}

// ---- the run ------------------------------------------------------------------------------------

interface Contender {
  id: string;
  label: string;
  kind: 'celeriac' | 'python';
  argv: (profileDir?: string) => { cmd: string; args: string[]; cwd: string; env: NodeJS.ProcessEnv };
}

interface DrainResult {
  /** CLOCK_MONOTONIC µs: the last poll that saw the full queue, the poll that saw every result. */
  windowUs: { fromUs: number; toUs: number };
  startupS: number;
  drainS: number;
  rate: number;
  workerCpuS: number;
  redisCpuS: number;
  /** Redis commands the drain caused (INFO commandstats; commands run inside Lua count too), by name. */
  commands: Map<string, number>;
}

interface LatencyResult {
  p50: number;
  p99: number;
  mean: number;
}

interface Row {
  contender: Contender;
  /** Every drain, in round order. */
  runs: DrainResult[];
  /** The median drain by rate (the upper one of the middle two for an even count). */
  drain: DrainResult;
  latency: LatencyResult | null;
  tsLatency: LatencyResult | null;
}

let redisProc: Proc | null = null;
let tempDir: string | null = null;
const clients: Redis[] = [];

/** Stop workers, then our clients, then redis-server; remove the temp dir. Runs once. */
let cleaning: Promise<void> | null = null;
function cleanup(graceMs = 15_000): Promise<void> {
  cleaning ??= (async () => {
    for (const p of [...live]) if (p !== redisProc) await stop(p, graceMs);
    for (const c of clients) c.disconnect();
    if (redisProc) await stop(redisProc, 5_000);
    if (tempDir) rmSync(tempDir, { recursive: true, force: true });
    tempDir = null;
  })();
  return cleaning;
}

let interrupted = false;
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(sig, () => {
    if (interrupted) return;
    interrupted = true;
    process.stderr.write(`\n[bench] ${sig}: stopping workers and redis-server\n`);
    void cleanup(5_000).finally(() => process.exit(130));
  });
}

function log(msg: string): void {
  process.stderr.write(`[bench] ${msg}\n`);
}

/** Our own polling and setup commands, left out of the per-task command counts. */
const BENCH_COMMANDS = new Set(['llen', 'dbsize', 'info', 'config|resetstat', 'copy', 'flushdb', 'select', 'ping', 'hello', 'client|setname', 'client|setinfo']);

function parseCommandStats(info: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const m of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
    if (!BENCH_COMMANDS.has(m[1]!)) out.set(m[1]!, Number(m[2]));
  }
  return out;
}

function percentile(sorted: number[], p: number): number {
  if (!sorted.length) return NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}

function latencyOf(samples: number[]): LatencyResult {
  const s = [...samples].sort((a, b) => a - b);
  return { p50: percentile(s, 50), p99: percentile(s, 99), mean: s.reduce((a, b) => a + b, 0) / s.length };
}

const LOAD_AT_START = loadavg().map((x) => x.toFixed(2)).join(' ');

async function main(): Promise<void> {
  const t0 = performance.now();
  const python = execFileSync('bash', [join(BENCH_DIR, 'ensure-venv.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] })
    .trim()
    .split('\n')
    .pop()!;
  const venvBin = resolve(python, '..');

  tempDir = mkdtempSync(join(tmpdir(), 'celeriac-bench-'));
  const port = await freePort();
  redisProc = start('redis-server', 'redis-server', [
    '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', tempDir, '--daemonize', 'no',
  ]);
  const url = (db: number): string => `redis://127.0.0.1:${port}/${db}`;
  const redisUp = performance.now();
  while (!/Ready to accept connections/.test(redisProc.output())) {
    if (redisProc.exited) throw new Error(`redis-server exited:\n${redisProc.output()}`);
    if (performance.now() - redisUp > 10_000) throw new Error(`redis-server not ready after 10 s:\n${redisProc.output()}`);
    await sleep(20);
  }
  const connect = (db: number): Redis => {
    const c = new Redis(url(db), { maxRetriesPerRequest: 1, retryStrategy: (times) => (times > 50 ? null : 50) });
    clients.push(c);
    return c;
  };
  const broker = connect(DB_BROKER);
  const results = connect(DB_RESULTS);
  const stash = connect(DB_STASH);
  await broker.ping();
  const redisPid = redisProc.pid;
  log(`redis-server ${port} (pid ${redisPid}) in ${tempDir}`);

  const pyEnv = (brokerDb: number): NodeJS.ProcessEnv => ({
    ...process.env,
    BROKER_URL: url(brokerDb),
    RESULT_BACKEND: url(DB_RESULTS),
    PYTHONPATH: BENCH_DIR,
    PYTHONUNBUFFERED: '1',
    PYTHONDONTWRITEBYTECODE: '1',
  });

  // One enqueue for the whole run; every drain starts from a COPY of it.
  const enq = JSON.parse(
    execFileSync(python, [join(BENCH_DIR, 'pybench.py'), 'enqueue', String(N)], { cwd: BENCH_DIR, env: pyEnv(DB_STASH), encoding: 'utf8' }).trim().split('\n').pop()!,
  ) as { n: number; seconds: number };
  const stashed = await stash.llen(QUEUE);
  if (stashed !== N) throw new Error(`expected ${N} stashed messages, found ${stashed}`);
  log(`enqueued ${N} demo.noop messages from Python in ${enq.seconds.toFixed(2)} s (not measured)`);

  const celeriac = (c: number): Contender => ({
    id: c === CELERIAC_C ? 'celeriac' : `celeriac${c}`,
    label: `Celeriac async -c ${c}`,
    kind: 'celeriac',
    argv: (profileDir) => ({
      cmd: process.execPath,
      args: [
        ...(profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : []),
        '-r', 'tsx/cjs', join(ROOT, 'workers/cli/main.ts'), 'worker',
        '-b', url(DB_BROKER), '--result-backend', url(DB_RESULTS), '-c', String(c), '-l', 'warning', '-n', `bench-c${c}@%h`,
      ],
      cwd: ROOT,
      // Flags win over config files and env, but keep stray CELERIAC_* settings out anyway.
      env: Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('CELERIAC_') && !k.startsWith('CELERY_'))),
    }),
  });
  const celery = (pool: 'prefork' | 'threads', c: number): Contender => ({
    id: pool,
    label: `Python Celery ${pool} -c ${c}`,
    kind: 'python',
    argv: () => ({
      cmd: join(venvBin, 'celery'),
      args: ['-A', 'pybench', 'worker', '-P', pool, '-c', String(c), '-l', 'warning', '-n', `bench-${pool}@%h`, '--without-mingle', '--without-gossip', '--without-heartbeat'],
      cwd: BENCH_DIR,
      env: pyEnv(DB_BROKER),
    }),
  });
  const all = [celeriac(CELERIAC_C), ...(CELERIAC_C !== 8 ? [celeriac(8)] : []), celery('prefork', 2), celery('threads', 8)];
  const contenders = all.filter((c) => !ONLY || ONLY.has(c.id));

  async function drain(c: Contender, profileDir?: string): Promise<{ result: DrainResult; proc: Proc }> {
    await broker.flushdb();
    await results.flushdb();
    await stash.call('COPY', QUEUE, QUEUE, 'DB', String(DB_BROKER));
    await broker.call('CONFIG', 'RESETSTAT');
    const { cmd, args, cwd, env } = c.argv(profileDir);
    const spawnedAt = performance.now();
    const proc = start(c.label, cmd, args, { cwd, env });
    const monoUs = (): number => Number(process.hrtime.bigint() / 1000n);
    let startedAt = 0;
    let cpuAtStart = 0;
    let redisAtStart = 0;
    let lastFullUs = monoUs();
    let fromUs = 0;
    for (;;) {
      const polledUs = monoUs();
      const [len, size] = await Promise.all([broker.llen(QUEUE), results.dbsize()]);
      const now = performance.now();
      const answeredUs = monoUs();
      if (!startedAt && len >= N) lastFullUs = polledUs;
      if (!startedAt && len < N) {
        startedAt = now;
        fromUs = lastFullUs;
        cpuAtStart = groupCpu(proc.pid);
        redisAtStart = procStat(redisPid)?.cpu ?? 0;
      }
      if (size >= N) {
        const end = now;
        const workerCpuS = groupCpu(proc.pid) - cpuAtStart;
        const redisCpuS = (procStat(redisPid)?.cpu ?? 0) - redisAtStart;
        const drainS = (end - startedAt) / 1000;
        const commands = parseCommandStats(await broker.info('commandstats'));
        return {
          proc,
          result: { windowUs: { fromUs, toUs: answeredUs }, startupS: (startedAt - spawnedAt) / 1000, drainS, rate: N / drainS, workerCpuS, redisCpuS, commands },
        };
      }
      if (proc.exited) throw new Error(`${c.label} exited during the drain:\n${proc.output()}`);
      if (now - spawnedAt > DRAIN_TIMEOUT_MS) {
        await stop(proc, 5_000);
        throw new Error(`${c.label}: ${size}/${N} results after ${DRAIN_TIMEOUT_MS / 1000} s; output:\n${proc.output()}`);
      }
      await sleep(POLL_MS);
    }
  }

  function pyLatency(): LatencyResult {
    const out = execFileSync(python, [join(BENCH_DIR, 'pybench.py'), 'latency', String(LATENCY_N), String(WARMUP)], {
      cwd: BENCH_DIR,
      env: pyEnv(DB_BROKER),
      encoding: 'utf8',
      timeout: 120_000,
    });
    return latencyOf((JSON.parse(out.trim().split('\n').pop()!) as { ms: number[] }).ms);
  }

  async function tsLatency(): Promise<LatencyResult> {
    const app = new Celeriac({ brokerUrl: url(DB_BROKER), resultBackend: url(DB_RESULTS) });
    try {
      const samples: number[] = [];
      for (let i = 0; i < WARMUP + LATENCY_N; i++) {
        const t = performance.now();
        const r = await app.sendTask('demo.noop');
        await r.get({ timeout: 30 });
        if (i >= WARMUP) samples.push(performance.now() - t);
      }
      return latencyOf(samples);
    } finally {
      await app.close();
    }
  }

  // Rounds interleave the contenders, so a noisy moment on the machine is shared out rather than
  // landing on one of them. Each drain starts a fresh worker; the round trips use the last one.
  const runs = new Map<string, DrainResult[]>(contenders.map((c) => [c.id, []]));
  const latencies = new Map<string, { py: LatencyResult | null; ts: LatencyResult | null }>();
  for (let round = 1; round <= REPEAT; round++) {
    for (const c of contenders) {
      log(`${c.label}: draining ${N} tasks (round ${round}/${REPEAT})...`);
      const { result, proc } = await drain(c);
      runs.get(c.id)!.push(result);
      log(`${c.label}: ${result.rate.toFixed(0)} tasks/s (${result.drainS.toFixed(2)} s; start-up ${result.startupS.toFixed(2)} s excluded)`);
      try {
        if (round === REPEAT && LATENCY_N > 0) {
          const py = pyLatency();
          latencies.set(c.id, { py, ts: c.kind === 'celeriac' ? await tsLatency() : null });
        }
      } finally {
        await stop(proc);
      }
    }
  }
  const rows: Row[] = contenders.map((c) => {
    const all = runs.get(c.id)!;
    const sorted = [...all].sort((a, b) => a.rate - b.rate);
    const l = latencies.get(c.id);
    return { contender: c, runs: all, drain: sorted[Math.floor(sorted.length / 2)]!, latency: l?.py ?? null, tsLatency: l?.ts ?? null };
  });

  let profileText = '';
  if (flags.profile) {
    const dir = join('/tmp', `celeriac-bench-prof-${Date.now()}`);
    mkdirSync(dir, { recursive: true });
    const c = celeriac(CELERIAC_C);
    log(`${c.label} under --cpu-prof: draining ${N} tasks...`);
    const { result, proc } = await drain(c, dir);
    await stop(proc);
    const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
    if (!file) throw new Error(`no .cpuprofile written to ${dir}`);
    const summary = summarizeProfile(loadProfile(join(dir, file)), 25, result.windowUs);
    profileText =
      `\nProfile of ${c.label} draining ${N} (profiled run: ${result.rate.toFixed(0)} tasks/s; ` +
      `worker CPU ${result.workerCpuS.toFixed(2)} s, redis-server CPU ${result.redisCpuS.toFixed(2)} s)\n` +
      `file: ${join(dir, file)}\n${formatSummary(summary)}\n`;
  }

  // ---- report ----
  const redisVersion = (await broker.info('server')).match(/redis_version:(\S+)/)?.[1] ?? '?';
  const pyVersion = execFileSync(python, ['-c', 'import sys, celery, kombu; print(sys.version.split()[0], celery.__version__, kombu.__version__)'], { encoding: 'utf8' }).trim().split(' ');
  const fmt = (v: number | undefined, d = 1): string => (v === undefined || Number.isNaN(v) ? '-' : v.toFixed(d));
  const header = ['contender', 'tasks/s', 'min-max', 'drain s', 'worker CPU µs/task', 'redis CPU µs/task', 'RTT p50 ms', 'RTT p99 ms'];
  const perTask = (s: number): number => (s / N) * 1e6;
  const table: string[][] = rows.map((r) => [
    r.contender.label,
    fmt(r.drain.rate, 0),
    `${fmt(Math.min(...r.runs.map((x) => x.rate)), 0)}-${fmt(Math.max(...r.runs.map((x) => x.rate)), 0)}`,
    fmt(r.drain.drainS, 2),
    fmt(perTask(r.drain.workerCpuS), 0),
    fmt(perTask(r.drain.redisCpuS), 0),
    fmt(r.latency?.p50, 2),
    fmt(r.latency?.p99, 2),
  ]);
  for (const r of rows) {
    if (r.tsLatency) table.push([`  TS client sendTask().get() -> ${r.contender.label}`, '', '', '', '', '', fmt(r.tsLatency.p50, 2), fmt(r.tsLatency.p99, 2)]);
  }
  const widths = header.map((h, i) => Math.max(h.length, ...table.map((row) => row[i]!.length)));
  const line = (cells: string[]): string => `| ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(' | ')} |`;
  const out: string[] = [
    `Celeriac bench: ${N} demo.noop tasks per drain, ${REPEAT} drain(s) per contender (median shown), ${LATENCY_N} round trips (+${WARMUP} warm-up) per worker`,
    `machine: nproc ${availableParallelism()}, load average at start ${LOAD_AT_START}, node ${process.version}, python ${pyVersion[0]} (celery ${pyVersion[1]}, kombu ${pyVersion[2]}), redis ${redisVersion}`,
    '',
    line(header),
    `|${widths.map((w, i) => (i === 0 ? '-'.repeat(w + 2) : `${'-'.repeat(w + 1)}:`)).join('|')}|`,
    ...table.map(line),
    '',
  ];
  const byId = (id: string): Row | undefined => rows.find((r) => r.contender.id === id);
  for (const cel of rows.filter((r) => r.contender.kind === 'celeriac')) {
    for (const id of ['prefork', 'threads']) {
      const py = byId(id);
      if (!py) continue;
      const perRound = cel.runs.map((run, i) => run.rate / py.runs[i]!.rate);
      out.push(
        `${cel.contender.label} / ${py.contender.label}: ${(cel.drain.rate / py.drain.rate).toFixed(1)}x (medians; per round ${perRound.map((x) => x.toFixed(1)).join(', ')})`,
      );
    }
  }
  out.push('', 'Redis commands per task during the drain (INFO commandstats; commands run by Lua scripts count too):');
  for (const r of rows) {
    const top = [...r.runs[r.runs.length - 1]!.commands]
      .filter(([, calls]) => calls / N >= 0.01)
      .sort((a, b) => b[1] - a[1])
      .map(([name, calls]) => `${name} ${(calls / N).toFixed(2)}`);
    out.push(`  ${r.contender.label}: ${top.join(', ')}`);
  }
  out.push(`(whole bench ${((performance.now() - t0) / 1000).toFixed(0)} s)`);
  process.stdout.write(`\n${out.join('\n')}\n${profileText}`);
}

main()
  .catch((err: Error) => {
    if (interrupted) return; // the signal handler is already cleaning up and exits 130
    process.stderr.write(`[bench] failed: ${err.stack ?? err.message}\n`);
    process.exitCode = 1;
  })
  .finally(() => cleanup());
