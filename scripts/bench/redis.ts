/**
 * The Redis half of `npm run bench` (see main.ts and docs/benchmarks.md):
 *   1. starts a private redis-server on a free loopback port (temp dir, no persistence);
 *   2. a Python Celery producer (pybench.py) enqueues N `demo.noop` messages once into a stash
 *      db; before each drain the broker and results dbs are flushed and the stash is COPYed into
 *      the broker's `celery` list, so every worker drains identical messages;
 *   3. each worker (all at `-l warning`) is timed from the first poll that sees the queue shorter
 *      than N (first message taken: start-up excluded) to the first poll that sees N result keys;
 *   4. with the worker idle and still running: sequential apply_async().get() round trips from a
 *      Python client (and app.sendTask().get() from TypeScript for Celeriac), p50/p99;
 *   5. with --profile, one more Celeriac drain under `node --cpu-prof`, summarized.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import Redis from 'ioredis';
import { Celeriac } from '../../workers/app/app';
import {
  BENCH_DIR,
  ROOT,
  cleanEnv,
  freePort,
  groupCpu,
  latencyOf,
  log,
  logWorkerOutput,
  machineBusy,
  medianRun,
  monoUs,
  procStat,
  sleep,
  start,
  stop,
  type ContenderSpec,
  type DrainResult,
  type LatencyResult,
  type Proc,
  type Row,
} from './common';
import { formatSummary, loadProfile, summarizeProfile } from './cpuprofile';

const QUEUE = 'celery';
const DB_BROKER = 0;
const DB_RESULTS = 1;
const DB_STASH = 3;

export interface RedisBenchOptions {
  n: number;
  latencyN: number;
  warmup: number;
  celeriacC: number;
  /** Extra node arguments for Celeriac workers (experiments, e.g. a -r preload). */
  celeriacNodeArgs: string[];
  pollMs: number;
  drainTimeoutMs: number;
  repeat: number;
  only: Set<string> | null;
  profile: boolean;
  python: string;
  venvBin: string;
  tempDir: string;
}

export interface BenchOutcome {
  rows: Row[];
  /** Extra report lines (Redis command counts). */
  notes: string[];
  profileText: string;
  /** "redis 7.0.15" / "rabbitmq 3.10.8". */
  version: string;
}

interface Contender extends ContenderSpec {
  argv: (profileDir?: string) => { cmd: string; args: string[]; cwd: string; env: NodeJS.ProcessEnv };
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

let redisProc: Proc | null = null;
const clients: Redis[] = [];

/** Disconnect our clients and stop redis-server (workers are stopped by the caller first). */
export async function stopRedis(): Promise<void> {
  for (const c of clients.splice(0)) c.disconnect();
  if (redisProc) await stop(redisProc, 5_000);
  redisProc = null;
}

export async function runRedis(o: RedisBenchOptions): Promise<BenchOutcome> {
  const N = o.n;
  const dir = join(o.tempDir, 'redis');
  mkdirSync(dir, { recursive: true });
  const port = await freePort();
  const proc = start('redis-server', 'redis-server', [
    '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--daemonize', 'no',
  ]);
  redisProc = proc;
  const url = (db: number): string => `redis://127.0.0.1:${port}/${db}`;
  const redisUp = performance.now();
  while (!/Ready to accept connections/.test(proc.output())) {
    if (proc.exited) throw new Error(`redis-server exited:\n${proc.output()}`);
    if (performance.now() - redisUp > 10_000) throw new Error(`redis-server not ready after 10 s:\n${proc.output()}`);
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
  const redisPid = proc.pid;
  log(`redis-server ${port} (pid ${redisPid}) in ${dir}`);

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
    execFileSync(o.python, [join(BENCH_DIR, 'pybench.py'), 'enqueue', String(N)], { cwd: BENCH_DIR, env: pyEnv(DB_STASH), encoding: 'utf8' }).trim().split('\n').pop()!,
  ) as { n: number; seconds: number };
  const stashed = await stash.llen(QUEUE);
  if (stashed !== N) throw new Error(`expected ${N} stashed messages, found ${stashed}`);
  log(`redis: enqueued ${N} demo.noop messages from Python in ${enq.seconds.toFixed(2)} s (not measured)`);

  const celeriac = (c: number): Contender => ({
    id: c === o.celeriacC ? 'celeriac' : `celeriac${c}`,
    label: `Celeriac async -c ${c}`,
    kind: 'celeriac',
    argv: (profileDir) => ({
      cmd: process.execPath,
      args: [
        ...(profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : []),
        '-r', 'tsx/cjs', ...o.celeriacNodeArgs, join(ROOT, 'workers/cli/main.ts'), 'worker',
        '-b', url(DB_BROKER), '--result-backend', url(DB_RESULTS), '-c', String(c), '-l', 'warning', '-n', `bench-c${c}@%h`,
      ],
      cwd: ROOT,
      env: cleanEnv(),
    }),
  });
  const celery = (pool: 'prefork' | 'threads', c: number): Contender => ({
    id: pool,
    label: `Python Celery ${pool} -c ${c}`,
    kind: 'python',
    argv: () => ({
      cmd: join(o.venvBin, 'celery'),
      args: ['-A', 'pybench', 'worker', '-P', pool, '-c', String(c), '-l', 'warning', '-n', `bench-${pool}@%h`, '--without-mingle', '--without-gossip', '--without-heartbeat'],
      cwd: BENCH_DIR,
      env: pyEnv(DB_BROKER),
    }),
  });
  const all = [celeriac(o.celeriacC), ...(o.celeriacC !== 8 ? [celeriac(8)] : []), celery('prefork', 2), celery('threads', 8)];
  const contenders = all.filter((c) => !o.only || o.only.has(c.id));

  async function drain(c: Contender, profileDir?: string): Promise<{ result: DrainResult; proc: Proc }> {
    await broker.flushdb();
    await results.flushdb();
    await stash.call('COPY', QUEUE, QUEUE, 'DB', String(DB_BROKER));
    await broker.call('CONFIG', 'RESETSTAT');
    const { cmd, args, cwd, env } = c.argv(profileDir);
    const spawnedAt = performance.now();
    const worker = start(c.label, cmd, args, { cwd, env });
    let startedAt = 0;
    let cpuAtStart = 0;
    let redisAtStart = 0;
    let busyAtStart = 0;
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
        cpuAtStart = groupCpu(worker.pid);
        redisAtStart = procStat(redisPid)?.cpu ?? 0;
        busyAtStart = machineBusy();
      }
      if (size >= N) {
        const workerCpuS = groupCpu(worker.pid) - cpuAtStart;
        const brokerCpuS = (procStat(redisPid)?.cpu ?? 0) - redisAtStart;
        const drainS = (now - startedAt) / 1000;
        const otherCores = (machineBusy() - busyAtStart - workerCpuS - brokerCpuS) / drainS;
        const commands = parseCommandStats(await broker.info('commandstats'));
        return {
          proc: worker,
          result: { windowUs: { fromUs, toUs: answeredUs }, startupS: (startedAt - spawnedAt) / 1000, drainS, rate: N / drainS, workerCpuS, brokerCpuS, otherCores, commands },
        };
      }
      if (worker.exited) throw new Error(`${c.label} exited during the drain:\n${worker.output()}`);
      if (now - spawnedAt > o.drainTimeoutMs) {
        await stop(worker, 5_000);
        throw new Error(`${c.label}: ${size}/${N} results after ${o.drainTimeoutMs / 1000} s; output:\n${worker.output()}`);
      }
      await sleep(o.pollMs);
    }
  }

  function pyLatency(): LatencyResult {
    const out = execFileSync(o.python, [join(BENCH_DIR, 'pybench.py'), 'latency', String(o.latencyN), String(o.warmup)], {
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
      for (let i = 0; i < o.warmup + o.latencyN; i++) {
        const t = performance.now();
        const r = await app.sendTask('demo.noop');
        await r.get({ timeout: 30 });
        if (i >= o.warmup) samples.push(performance.now() - t);
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
  for (let round = 1; round <= o.repeat; round++) {
    for (const c of contenders) {
      log(`redis: ${c.label}: draining ${N} tasks (round ${round}/${o.repeat})...`);
      const { result, proc: worker } = await drain(c);
      runs.get(c.id)!.push(result);
      log(`redis: ${c.label}: ${result.rate.toFixed(0)} tasks/s (${result.drainS.toFixed(2)} s; start-up ${result.startupS.toFixed(2)} s excluded; worker ${result.workerCpuS.toFixed(2)} s CPU, broker ${result.brokerCpuS.toFixed(2)} s, rest of the machine ${Math.max(0, result.otherCores).toFixed(2)} cores)`);
      try {
        if (round === o.repeat && o.latencyN > 0) {
          const py = pyLatency();
          latencies.set(c.id, { py, ts: c.kind === 'celeriac' ? await tsLatency() : null });
        }
      } finally {
        await stop(worker);
        logWorkerOutput(worker);
      }
    }
  }
  const rows: Row[] = contenders.map((c) => {
    const all = runs.get(c.id)!;
    const l = latencies.get(c.id);
    return { broker: 'redis', results: 'redis', contender: c, runs: all, drain: medianRun(all), latency: l?.py ?? null, tsLatency: l?.ts ?? null };
  });

  let profileText = '';
  if (o.profile) {
    const profDir = join('/tmp', `celeriac-bench-prof-redis-${Date.now()}`);
    mkdirSync(profDir, { recursive: true });
    const c = celeriac(o.celeriacC);
    log(`redis: ${c.label} under --cpu-prof: draining ${N} tasks...`);
    const { result, proc: worker } = await drain(c, profDir);
    await stop(worker);
    const file = readdirSync(profDir).find((f) => f.endsWith('.cpuprofile'));
    if (!file) throw new Error(`no .cpuprofile written to ${profDir}`);
    const summary = summarizeProfile(loadProfile(join(profDir, file)), 25, result.windowUs);
    profileText =
      `\nProfile of ${c.label} draining ${N} on Redis (profiled run: ${result.rate.toFixed(0)} tasks/s; ` +
      `worker CPU ${result.workerCpuS.toFixed(2)} s, redis-server CPU ${result.brokerCpuS.toFixed(2)} s)\n` +
      `file: ${join(profDir, file)}\n${formatSummary(summary)}\n`;
  }

  const version = (await broker.info('server')).match(/redis_version:(\S+)/)?.[1] ?? '?';
  const notes = ['Redis commands per task during the drain (INFO commandstats; commands run by Lua scripts count too):'];
  for (const r of rows) {
    const top = [...(r.runs[r.runs.length - 1]!.commands ?? new Map<string, number>())]
      .filter(([, calls]) => calls / N >= 0.01)
      .sort((a, b) => b[1] - a[1])
      .map(([name, calls]) => `${name} ${(calls / N).toFixed(2)}`);
    notes.push(`  ${r.contender.label}: ${top.join(', ')}`);
  }
  await stopRedis();
  return { rows, notes, profileText, version: `redis ${version}` };
}
