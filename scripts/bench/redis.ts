/**
 * The Redis half of `npm run bench` (see main.ts and docs/benchmarks.md):
 *   1. starts a private redis-server on a free loopback port (temp dir, no persistence);
 *   2. a Python Celery producer (pybench.py) enqueues N `demo.noop` messages once into a stash
 *      db; before each drain the broker and results dbs are flushed and the stash is COPYed into
 *      the broker's `celery` list, so every worker drains identical messages;
 *   3. per results mode (`redis`: results stored in db 1; `ignored`: no result backend), each
 *      contender's idle RSS: a fresh worker on an empty db, settled (idle.ts);
 *   4. each worker (all at `-l warning`) is timed from the first poll that sees the queue shorter
 *      than N (first message taken: start-up excluded) to the first poll that sees N result keys
 *      (`redis`), or an empty queue and an empty `unacked` hash (`ignored`: every message taken
 *      and acked); the group's RSS is read at that moment;
 *   5. with the worker idle and still running (`redis` mode): sequential apply_async().get()
 *      round trips from a Python client, and from the worker's own Node client, p50/p99;
 *   6. the physical reference: redis-benchmark for the commands a task costs (redisref.ts);
 *   7. with --profile, one more Celeriac drain per results mode under `node --cpu-prof`, summarized.
 * Contenders: Celeriac -c 100 and -c 8, Python Celery prefork -c 2 and threads -c 8,
 * celery-node (peer.ts; it reads kombu's `celery` list as it is, so it drains the same messages),
 * and a bare ioredis consumer (rawredis.ts: the floor of a Node consumer with no framework).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type Redis from 'ioredis';
import { PrivateRedis } from './privateRedis';
import { Celeriac } from '../../workers/app/app';
import {
  BENCH_DIR,
  ROOT,
  cleanEnv,
  groupCpu,
  groupRssKiB,
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
  type Gap,
  type LatencyResult,
  type Proc,
  type Row,
  celeriacEntry,
} from './common';
import { formatSummary, loadProfile, summarizeProfile } from './cpuprofile';
import { blockedInBrpop, idleRss } from './idle';
import { CELERYNODE, CELERYNODE_CANNOT, CELERYNODE_CLIENT, celerynodeArgv, celerynodeGap, celerynodeLatency } from './peer';
import { runRedisReference, type RedisReference } from './redisref';

const QUEUE = 'celery';
/** kombu's hash of delivered, not yet acked messages (Celeriac keeps the same layout). */
const UNACKED = 'unacked';
const DB_BROKER = 0;
const DB_RESULTS = 1;
const DB_STASH = 3;
/** The idle readings' workers consume from dbs of their own, empty. */
const DB_IDLE_BROKER = 4;
const DB_IDLE_RESULTS = 5;
/** redis-benchmark's keys. */
const DB_REFERENCE = 6;
/** Broker/results dbs of the workers that answer round trips side by side (one pair each). */
const LATENCY_DB_PAIRS: readonly (readonly [number, number])[] = [[7, 8], [9, 10], [11, 12], [13, 14], [2, 15]];
/** Round trips to one worker before the Python client turns to the next. */
const LATENCY_BLOCK = 20;

export type RedisMode = 'redis' | 'ignored';

/** One worker's round trips: from the Python client, and from its own client (peers that have one). */
interface RoundTrips {
  py: LatencyResult;
  own: Row['ownLatency'];
}

export interface RedisBenchOptions {
  n: number;
  latencyN: number;
  warmup: number;
  celeriacC: number;
  /** Extra node arguments for Celeriac workers (experiments, e.g. a -r preload). */
  celeriacNodeArgs: string[];
  /** Run Celeriac from dist/ (--compiled) instead of the source under tsx. */
  compiled: boolean;
  pollMs: number;
  drainTimeoutMs: number;
  repeat: number;
  modes: RedisMode[];
  /** Quiet time before an idle RSS reading. */
  settleMs: number;
  /** redis-benchmark requests per test; 0 skips the reference. */
  referenceN: number;
  celerynodeNoDelay: boolean;
  only: Set<string> | null;
  profile: boolean;
  python: string;
  venvBin: string;
  tempDir: string;
}

export interface BenchOutcome {
  rows: Row[];
  /** Contenders that cannot run in a setting, with the reason. */
  gaps: Gap[];
  /** Extra report lines (Redis command counts). */
  notes: string[];
  profileText: string;
  /** "redis 7.0.15" / "rabbitmq 3.10.8". */
  version: string;
  /** Redis only: redis-benchmark's figures, or why there are none. */
  reference?: RedisReference | string;
}

interface Target {
  mode: RedisMode;
  brokerDb: number;
  resultsDb: number;
}

interface Contender extends ContenderSpec {
  argv: (t: Target, profileDir?: string) => { cmd: string; args: string[]; cwd: string; env: NodeJS.ProcessEnv };
}

/** Our own polling and setup commands, left out of the per-task command counts. */
const BENCH_COMMANDS = new Set(['llen', 'hlen', 'dbsize', 'info', 'config|resetstat', 'copy', 'flushdb', 'select', 'ping', 'hello', 'client|setname', 'client|setinfo', 'client|list']);

function parseCommandStats(info: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const m of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
    if (!BENCH_COMMANDS.has(m[1]!)) out.set(m[1]!, Number(m[2]));
  }
  return out;
}

let redis: PrivateRedis | null = null;

/** Disconnect our clients and stop redis-server (workers are stopped by the caller first). */
export async function stopRedis(): Promise<void> {
  await redis?.stop();
  redis = null;
}

export async function runRedis(o: RedisBenchOptions): Promise<BenchOutcome> {
  const N = o.n;
  const dir = join(o.tempDir, 'redis');
  const server = (redis = await PrivateRedis.start(dir));
  const { proc, port } = server;
  const url = (db: number): string => server.url(db);
  const connect = (db: number): Redis => server.connect(db);
  const broker = connect(DB_BROKER);
  const results = connect(DB_RESULTS);
  const stash = connect(DB_STASH);
  await broker.ping();
  const redisPid = proc.pid;
  log(`redis-server ${port} (pid ${redisPid}) in ${dir}`);

  const pyEnv = (t: Target): NodeJS.ProcessEnv => ({
    ...process.env,
    BROKER_URL: url(t.brokerDb),
    RESULT_BACKEND: t.mode === 'redis' ? url(t.resultsDb) : '',
    IGNORE_RESULT: t.mode === 'ignored' ? '1' : '0',
    PYTHONPATH: BENCH_DIR,
    PYTHONUNBUFFERED: '1',
    PYTHONDONTWRITEBYTECODE: '1',
  });
  const main: Target = { mode: 'redis', brokerDb: DB_BROKER, resultsDb: DB_RESULTS };

  // One enqueue for the whole run; every drain starts from a COPY of it.
  const enq = JSON.parse(
    execFileSync(o.python, [join(BENCH_DIR, 'pybench.py'), 'enqueue', String(N)], { cwd: BENCH_DIR, env: pyEnv({ ...main, brokerDb: DB_STASH }), encoding: 'utf8' }).trim().split('\n').pop()!,
  ) as { n: number; seconds: number };
  const stashed = await stash.llen(QUEUE);
  if (stashed !== N) throw new Error(`expected ${N} stashed messages, found ${stashed}`);
  const envelopeBytes = Buffer.byteLength((await stash.lindex(QUEUE, 0)) ?? '');
  log(`redis: enqueued ${N} demo.noop messages from Python in ${enq.seconds.toFixed(2)} s (not measured)`);

  const celeriac = (c: number): Contender => ({
    id: c === o.celeriacC ? 'celeriac' : `celeriac${c}`,
    label: `Celeriac async -c ${c}`,
    kind: 'celeriac',
    processes: 1,
    argv: (t, profileDir) => ({
      cmd: process.execPath,
      args: [
        ...(profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : []),
        ...celeriacEntry(o.compiled, o.celeriacNodeArgs), 'worker',
        '-b', url(t.brokerDb), '--result-backend', t.mode === 'redis' ? url(t.resultsDb) : '', '-c', String(c), '-l', 'warning', '-n', `bench-c${c}@%h`,
      ],
      cwd: ROOT,
      env: cleanEnv(),
    }),
  });
  const celery = (pool: 'prefork' | 'threads', c: number): Contender => ({
    id: pool,
    label: `Python Celery ${pool} -c ${c}`,
    kind: 'python',
    processes: pool === 'prefork' ? 1 + c : 1,
    argv: (t) => ({
      cmd: join(o.venvBin, 'celery'),
      args: ['-A', 'pybench', 'worker', '-P', pool, '-c', String(c), '-l', 'warning', '-n', `bench-${pool}@%h`, '--without-mingle', '--without-gossip', '--without-heartbeat'],
      cwd: BENCH_DIR,
      env: pyEnv(t),
    }),
  });
  const celerynode: Contender = { ...CELERYNODE, argv: (t) => celerynodeArgv(url(t.brokerDb), url(t.resultsDb), o.celerynodeNoDelay) };
  const bare: Contender = {
    id: 'ioredis',
    label: 'bare ioredis consumer (reference)',
    kind: 'reference',
    processes: 1,
    argv: (t) => ({
      cmd: process.execPath,
      args: ['-r', 'tsx/cjs', join(BENCH_DIR, 'rawredis.ts'), url(t.brokerDb), t.mode === 'redis' ? url(t.resultsDb) : '', String(o.celeriacC * 4)],
      cwd: ROOT,
      env: cleanEnv(),
    }),
  };
  const all = [celeriac(o.celeriacC), ...(o.celeriacC !== 8 ? [celeriac(8)] : []), celery('prefork', 2), celery('threads', 8), celerynode, bare];
  const selected = all.filter((c) => !o.only || o.only.has(c.id));
  const gaps: Gap[] = [];
  const runsIn = (mode: RedisMode): Contender[] =>
    selected.filter((c) => {
      if (c.id !== CELERYNODE.id || mode === 'redis') return true;
      gaps.push(celerynodeGap('redis', mode, CELERYNODE_CANNOT.ignored));
      return false;
    });

  let resultBytes = 0;
  async function drain(c: Contender, mode: RedisMode, profileDir?: string): Promise<{ result: DrainResult; proc: Proc }> {
    await broker.flushdb();
    await results.flushdb();
    await stash.call('COPY', QUEUE, QUEUE, 'DB', String(DB_BROKER));
    await broker.call('CONFIG', 'RESETSTAT');
    const { cmd, args, cwd, env } = c.argv({ ...main, mode }, profileDir);
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
      // Done: N results stored, or (results ignored) nothing left queued and nothing unacked.
      const [len, other] = await Promise.all([broker.llen(QUEUE), mode === 'redis' ? results.dbsize() : broker.hlen(UNACKED)]);
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
      if (startedAt && (mode === 'redis' ? other >= N : len === 0 && other === 0)) {
        const workerCpuS = groupCpu(worker.pid) - cpuAtStart;
        const brokerCpuS = (procStat(redisPid)?.cpu ?? 0) - redisAtStart;
        const rssEndKiB = groupRssKiB(worker.pid);
        const drainS = (now - startedAt) / 1000;
        const otherCores = (machineBusy() - busyAtStart - workerCpuS - brokerCpuS) / drainS;
        const commands = parseCommandStats(await broker.info('commandstats'));
        if (mode === 'redis' && !resultBytes) {
          const key = await results.randomkey();
          resultBytes = key ? await results.strlen(key) : 0;
        }
        return {
          proc: worker,
          result: { windowUs: { fromUs, toUs: answeredUs }, startupS: (startedAt - spawnedAt) / 1000, drainS, tasks: N, rate: N / drainS, workerCpuS, brokerCpuS, otherCores, commands, rssEndKiB },
        };
      }
      if (worker.exited) throw new Error(`${c.label} exited during the drain:\n${worker.output()}`);
      if (now - spawnedAt > o.drainTimeoutMs) {
        await stop(worker, 5_000);
        throw new Error(`${c.label}: ${len} queued, ${other} ${mode === 'redis' ? 'results' : 'unacked'} after ${o.drainTimeoutMs / 1000} s; output:\n${worker.output()}`);
      }
      await sleep(o.pollMs);
    }
  }

  const idleBroker = connect(DB_IDLE_BROKER);
  const idleResults = connect(DB_IDLE_RESULTS);
  async function idle(c: Contender, mode: RedisMode): Promise<number> {
    await idleBroker.flushdb();
    await idleResults.flushdb();
    return idleRss(
      {
        label: `redis/${mode}: ${c.label}`,
        processes: c.processes,
        spawn: () => {
          const { cmd, args, cwd, env } = c.argv({ mode, brokerDb: DB_IDLE_BROKER, resultsDb: DB_IDLE_RESULTS });
          return start(c.label, cmd, args, { cwd, env });
        },
        consuming: async (deadline) => {
          while (!blockedInBrpop(String(await broker.call('CLIENT', 'LIST')), DB_IDLE_BROKER)) {
            if (performance.now() > deadline) throw new Error(`${c.label}: not blocked in BRPOP on db ${DB_IDLE_BROKER}`);
            await sleep(50);
          }
        },
      },
      o.settleMs,
    );
  }

  /** The Python client's round trips to every worker of `targets` at once, in blocks of turns. */
  function pyLatencyPaired(targets: Target[]): LatencyResult[] {
    const pairs = targets.map((t) => `${url(t.brokerDb)},${url(t.resultsDb)}`);
    const out = execFileSync(o.python, [join(BENCH_DIR, 'pybench.py'), 'latency-paired', String(o.latencyN), String(o.warmup), String(LATENCY_BLOCK), ...pairs], {
      cwd: BENCH_DIR,
      env: pyEnv(main),
      encoding: 'utf8',
      timeout: 120_000 * targets.length,
    });
    return (JSON.parse(out.trim().split('\n').pop()!) as { ms: number[][] }).ms.map(latencyOf);
  }

  async function tsLatency(t: Target): Promise<LatencyResult> {
    const app = new Celeriac({ brokerUrl: url(t.brokerDb), resultBackend: url(t.resultsDb) });
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

  async function ownLatency(c: Contender, t: Target): Promise<Row['ownLatency']> {
    if (c.kind === 'celeriac') return { client: 'TS client sendTask().get()', result: await tsLatency(t) };
    if (c.id === CELERYNODE.id) return { client: CELERYNODE_CLIENT, result: await celerynodeLatency(url(t.brokerDb), url(t.resultsDb), o.latencyN, o.warmup, o.celerynodeNoDelay) };
    return null;
  }

  async function flushDb(db: number): Promise<void> {
    const client = connect(db);
    try {
      await client.flushdb();
    } finally {
      client.disconnect();
    }
  }

  /**
   * Round trips with every contender's worker idle at the same time, each on a broker/results db
   * pair of its own. The Python client takes turns between them in blocks (pybench
   * latency-paired), so a slow stretch of the shared VM, which moved one worker's p50 by ±0.4 ms
   * between runs a few minutes apart, falls on all of them alike. Each peer's own client then
   * runs against its worker, one after another.
   */
  async function roundTrips(contenders: Contender[]): Promise<Map<string, RoundTrips>> {
    if (contenders.length > LATENCY_DB_PAIRS.length) throw new Error(`round trips: at most ${LATENCY_DB_PAIRS.length} contenders at once`);
    const targets = contenders.map((_, i): Target => ({ mode: 'redis', brokerDb: LATENCY_DB_PAIRS[i]![0], resultsDb: LATENCY_DB_PAIRS[i]![1] }));
    const workers: Proc[] = [];
    try {
      for (const [i, c] of contenders.entries()) {
        for (const db of [targets[i]!.brokerDb, targets[i]!.resultsDb]) await flushDb(db);
        const { cmd, args, cwd, env } = c.argv(targets[i]!);
        workers.push(start(c.label, cmd, args, { cwd, env }));
      }
      const deadline = performance.now() + 90_000;
      for (const [i, c] of contenders.entries()) {
        while (!blockedInBrpop(String(await broker.call('CLIENT', 'LIST')), targets[i]!.brokerDb)) {
          if (workers[i]!.exited) throw new Error(`${c.label} exited before its round trips:\n${workers[i]!.output()}`);
          if (performance.now() > deadline) throw new Error(`${c.label}: not blocked in BRPOP on db ${targets[i]!.brokerDb}`);
          await sleep(50);
        }
      }
      log(`redis: round trips, Python client, ${contenders.length} idle workers in turns of ${LATENCY_BLOCK}: ${o.latencyN} each (+${o.warmup} warm-up)...`);
      const py = pyLatencyPaired(targets);
      const out = new Map<string, RoundTrips>();
      for (const [i, c] of contenders.entries()) out.set(c.id, { py: py[i]!, own: await ownLatency(c, targets[i]!) });
      return out;
    } finally {
      for (const w of workers) {
        await stop(w);
        logWorkerOutput(w);
      }
    }
  }

  const rows: Row[] = [];
  const notes: string[] = [];
  for (const mode of o.modes) {
    const contenders = runsIn(mode);
    const idleKiB = new Map<string, number>();
    for (const c of contenders) idleKiB.set(c.id, await idle(c, mode));
    // Rounds interleave the contenders, so a noisy moment on the machine is shared out rather
    // than landing on one of them. Each drain starts a fresh worker.
    const runs = new Map<string, DrainResult[]>(contenders.map((c) => [c.id, []]));
    for (let round = 1; round <= o.repeat; round++) {
      for (const c of contenders) {
        log(`redis/${mode}: ${c.label}: draining ${N} tasks (round ${round}/${o.repeat})...`);
        const { result, proc: worker } = await drain(c, mode);
        runs.get(c.id)!.push(result);
        log(`redis/${mode}: ${c.label}: ${result.rate.toFixed(0)} tasks/s (${result.drainS.toFixed(2)} s; start-up ${result.startupS.toFixed(2)} s excluded; worker ${result.workerCpuS.toFixed(2)} s CPU, broker ${result.brokerCpuS.toFixed(2)} s, rest of the machine ${Math.max(0, result.otherCores).toFixed(2)} cores; RSS at the end ${(result.rssEndKiB / 1024).toFixed(1)} MiB)`);
        await stop(worker);
        logWorkerOutput(worker);
      }
    }
    const latencies = mode === 'redis' && o.latencyN > 0 ? await roundTrips(contenders) : new Map<string, RoundTrips>();
    notes.push(`Redis commands per task during the drain, results ${mode === 'redis' ? 'in Redis' : 'ignored'} (INFO commandstats; commands run by Lua scripts count too):`);
    for (const c of contenders) {
      const all = runs.get(c.id)!;
      const l = latencies.get(c.id);
      const row: Row = { broker: 'redis', results: mode, contender: c, runs: all, drain: medianRun(all), latency: l?.py ?? null, ownLatency: l?.own ?? null, idleRssKiB: idleKiB.get(c.id) ?? null };
      rows.push(row);
      const top = [...(row.drain.commands ?? new Map<string, number>())]
        .filter(([, calls]) => calls / N >= 0.01)
        .sort((a, b) => b[1] - a[1])
        .map(([name, calls]) => `${name} ${(calls / N).toFixed(2)}`);
      notes.push(`  ${c.label}: ${top.join(', ')}`);
    }
  }

  let profileText = '';
  for (const mode of o.profile ? o.modes : []) {
    const profDir = join('/tmp', `celeriac-bench-prof-redis-${mode}-${Date.now()}`);
    mkdirSync(profDir, { recursive: true });
    const c = celeriac(o.celeriacC);
    log(`redis/${mode}: ${c.label} under --cpu-prof: draining ${N} tasks...`);
    const { result, proc: worker } = await drain(c, mode, profDir);
    await stop(worker);
    const file = readdirSync(profDir).find((f) => f.endsWith('.cpuprofile'));
    if (!file) throw new Error(`no .cpuprofile written to ${profDir}`);
    const summary = summarizeProfile(loadProfile(join(profDir, file)), 25, result.windowUs);
    profileText +=
      `\nProfile of ${c.label} draining ${N} on Redis, results ${mode === 'redis' ? 'in Redis' : 'ignored'} (profiled run: ${result.rate.toFixed(0)} tasks/s; ` +
      `worker CPU ${result.workerCpuS.toFixed(2)} s, redis-server CPU ${result.brokerCpuS.toFixed(2)} s)\n` +
      `file: ${join(profDir, file)}\n${formatSummary(summary)}\n`;
  }

  // Last, with no worker running: the machine is as quiet as it was for the drains.
  let reference: RedisReference | string | undefined;
  if (o.referenceN > 0) {
    const ref = connect(DB_REFERENCE);
    await ref.flushdb();
    // A noop result as Celery stores it is ~150 bytes; used only if no drain stored one.
    reference = await runRedisReference(port, DB_REFERENCE, o.referenceN, { envelopeBytes, resultBytes: resultBytes || 150 }).catch((err: Error) => `redis-benchmark failed: ${err.message}`);
    await ref.flushdb();
  }

  const version = (await broker.info('server')).match(/redis_version:(\S+)/)?.[1] ?? '?';
  await stopRedis();
  return { rows, gaps, notes, profileText, version: `redis ${version}`, reference };
}
