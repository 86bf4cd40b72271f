/**
 * `npm run bench -- --suite pools`: CPU-bound throughput and whole-worker memory of each Celeriac
 * execution pool (-P processes, threads, async) against Python Celery's prefork, all at the same
 * concurrency (2 by default: one per core on the bench machine). Method in docs/benchmarks.md.
 *
 *   1. A private redis-server (broker db 0, results db 1). A Python producer enqueues N messages
 *      per workload once, into a stash db of their own; each drain COPYs its stash into `celery`.
 *   2. Per workload, each contender in turn gets a fresh worker started on the EMPTY queue: once
 *      it blocks in BRPOP (it consumes, so its pool is up) and has settled, the RSS of its whole
 *      process group is read (idle). Then the messages are copied in; the drain is timed as in
 *      redis.ts (first poll that sees fewer than N queued, to the first that sees N results) while
 *      the group's memory is sampled every --sample-ms for the peak (loaded).
 *   3. Every stored result is checked against the value computed here: both languages must agree.
 *   4. One table: tasks/s, ratio to prefork, idle and loaded RSS (and PSS), per workload.
 */
import { execFileSync } from 'node:child_process';
import { availableParallelism, loadavg } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type Redis from 'ioredis';
import { PrivateRedis } from './privateRedis';
import {
  BENCH_DIR,
  ROOT,
  cleanEnv,
  groupCpu,
  groupMemory,
  log,
  logWorkerOutput,
  machineBusy,
  positiveInt,
  procStat,
  sleep,
  start,
  stop,
  type ProcMemory,
} from './common';
import { SHA_BUFFER_BYTES, countPrimes, sha256Repeat } from './cpuTasks';

/** parseArgs options only this suite reads; main.ts merges them into its own. */
export const POOLS_OPTIONS = {
  'pool-concurrency': { type: 'string', default: '2' },
  'primes-bound': { type: 'string', default: '30000' },
  'sha-k': { type: 'string', default: '100' },
  workloads: { type: 'string', default: 'primes,sha256' },
  'settle-ms': { type: 'string', default: '1000' },
  'sample-ms': { type: 'string', default: '100' },
} as const;

export const POOLS_HELP = [
  '',
  '--suite pools (CPU-bound tasks per execution pool, and worker memory; see docs/benchmarks.md):',
  '  --n N                     tasks per drain, per workload (2000)',
  '  --only a,b                contenders: prefork, processes, threads, async (all)',
  '  --workloads list          primes, sha256 (both)',
  '  --primes-bound B          bench.primes(B): count primes below B by trial division (30000)',
  '  --sha-k K                 bench.sha256(K): sha256 of a 64 KiB buffer K times (100)',
  '  --pool-concurrency C      -c for every worker, Python and Celeriac (2)',
  '  --settle-ms MS            wait after the worker consumes, before the idle memory reading (1000)',
  '  --sample-ms MS            memory sampling interval during a drain (100)',
  '  --poll-ms N               queue/results poll interval (5)',
];

/** The flags main.ts parsed, as this suite reads them (main's defaults are for the broker suite). */
export interface PoolsFlags {
  n?: string;
  'poll-ms'?: string;
  only?: string;
  'drain-timeout': string;
  'celeriac-node-arg': string[];
  'pool-concurrency': string;
  'primes-bound': string;
  'sha-k': string;
  workloads: string;
  'settle-ms': string;
  'sample-ms': string;
}

export interface PoolsEnv {
  python: string;
  venvBin: string;
  tempDir: string;
  /** "code <sha> ..." line from main.ts. */
  code: string;
}

type WorkloadId = 'primes' | 'sha256';
type ContenderId = 'prefork' | 'processes' | 'threads' | 'async';

interface Workload {
  id: WorkloadId;
  label: string;
  task: string;
  args: unknown[];
  /** What every result must be, whichever language computed it. */
  expected: number | string;
  stashDb: number;
}

interface Contender {
  id: ContenderId;
  label: string;
  /** Processes in the group once the pool is up (the worker plus its pool processes). */
  processes: number;
  cmd: string;
  args: string[];
  cwd: string;
  env: NodeJS.ProcessEnv;
}

interface Memory {
  rssKiB: number;
  pssKiB: number;
  procs: ProcMemory[];
}

interface Measurement {
  workload: Workload;
  contender: Contender;
  readyS: number;
  drainS: number;
  rate: number;
  workerCpuS: number;
  /** Busy cores besides the worker and redis-server during the drain: the bench, other users. */
  otherCores: number;
  idle: Memory;
  /** The sample with the largest group RSS during the drain. */
  loaded: Memory;
  samples: number;
  badResults: number;
  badExample: string;
}

const QUEUE = 'celery';
const DB_BROKER = 0;
const DB_RESULTS = 1;
const STASH_DBS: Record<WorkloadId, number> = { primes: 3, sha256: 4 };
const CONTENDER_ORDER: ContenderId[] = ['prefork', 'processes', 'threads', 'async'];

let redis: PrivateRedis | null = null;

/** Disconnect and stop this suite's redis-server (main.ts stops the workers before this). */
export async function stopPools(): Promise<void> {
  await redis?.stop();
  redis = null;
}

function memoryOf(procs: ProcMemory[]): Memory {
  return { rssKiB: procs.reduce((a, p) => a + p.rssKiB, 0), pssKiB: procs.reduce((a, p) => a + p.pssKiB, 0), procs };
}

const mib = (kib: number): string => (kib / 1024).toFixed(1);

/** "node 80.1 + node 52.3 + node 52.0": what the group is made of. */
const breakdown = (m: Memory): string => m.procs.map((p) => `${p.comm} ${mib(p.rssKiB)}`).join(' + ');

/** A client blocked in BRPOP: a worker consuming from an empty queue (Celery's and Celeriac's transports both do). */
function someoneBlocked(clientList: string): boolean {
  return clientList.split('\n').some((l) => /\bcmd=brpop\b/.test(l) && /\bflags=\S*b/.test(l));
}

export async function runPools(flags: PoolsFlags, env: PoolsEnv): Promise<string> {
  const t0 = performance.now();
  const loadAtStart = loadavg().map((x) => x.toFixed(2)).join(' ');
  const N = positiveInt('n', flags.n ?? '2000');
  const C = positiveInt('pool-concurrency', flags['pool-concurrency']);
  const pollMs = positiveInt('poll-ms', flags['poll-ms'] ?? '5');
  const settleMs = positiveInt('settle-ms', flags['settle-ms'], true);
  const sampleMs = positiveInt('sample-ms', flags['sample-ms']);
  const drainTimeoutMs = positiveInt('drain-timeout', flags['drain-timeout']) * 1000;
  const bound = positiveInt('primes-bound', flags['primes-bound']);
  const shaK = positiveInt('sha-k', flags['sha-k']);
  const only = flags.only ? new Set(flags.only.split(',').map((s) => s.trim())) : null;
  const wanted = flags.workloads.split(',').map((s) => s.trim()).filter(Boolean);
  const bad = wanted.filter((w) => w !== 'primes' && w !== 'sha256');
  if (!wanted.length || bad.length) throw new Error(`--workloads: expected primes and/or sha256, got ${JSON.stringify(flags.workloads)}`);
  const unknown = [...(only ?? [])].filter((id) => !CONTENDER_ORDER.includes(id as ContenderId));
  if (unknown.length) throw new Error(`--only: the pools suite knows ${CONTENDER_ORDER.join(', ')}; got ${unknown.join(', ')}`);

  const workloads: Workload[] = [];
  if (wanted.includes('primes')) {
    workloads.push({ id: 'primes', label: `primes(${bound})`, task: 'bench.primes', args: [bound], expected: countPrimes(bound), stashDb: STASH_DBS.primes });
  }
  if (wanted.includes('sha256')) {
    workloads.push({ id: 'sha256', label: `sha256(${SHA_BUFFER_BYTES / 1024} KiB x ${shaK})`, task: 'bench.sha256', args: [shaK], expected: sha256Repeat(shaK), stashDb: STASH_DBS.sha256 });
  }

  const server = (redis = await PrivateRedis.start(join(env.tempDir, 'redis-pools')));
  const { port } = server;
  const url = (db: number): string => server.url(db);
  const connect = (db: number): Redis => server.connect(db);
  const broker = connect(DB_BROKER);
  const results = connect(DB_RESULTS);
  await broker.ping();
  log(`pools: redis-server on ${port}`);

  const pyEnv = (db: number): NodeJS.ProcessEnv => ({ ...process.env, BROKER_URL: url(db), RESULT_BACKEND: url(DB_RESULTS), PYTHONPATH: BENCH_DIR, PYTHONUNBUFFERED: '1', PYTHONDONTWRITEBYTECODE: '1' });

  // One enqueue per workload, by Celery itself, so every worker drains the same kombu envelopes.
  const stashes = new Map<WorkloadId, Redis>();
  for (const w of workloads) {
    const out = execFileSync(env.python, [join(BENCH_DIR, 'pybench.py'), 'enqueue', String(N), w.task, JSON.stringify(w.args)], { cwd: BENCH_DIR, env: pyEnv(w.stashDb), encoding: 'utf8' });
    const stash = connect(w.stashDb);
    const queued = await stash.llen(QUEUE);
    if (queued !== N) throw new Error(`${w.label}: expected ${N} stashed messages, found ${queued}`);
    stashes.set(w.id, stash);
    log(`pools: enqueued ${N} ${w.task}(${w.args.join(', ')}) in ${(JSON.parse(out.trim().split('\n').pop()!) as { seconds: number }).seconds.toFixed(2)} s (not measured)`);
  }

  const celeriac = (pool: Exclude<ContenderId, 'prefork'>): Contender => ({
    id: pool,
    label: `Celeriac -P ${pool} -c ${C}`,
    processes: pool === 'processes' ? 1 + C : 1,
    cmd: process.execPath,
    args: [
      '-r', 'tsx/cjs', ...flags['celeriac-node-arg'], join(ROOT, 'workers/cli/main.ts'), 'worker',
      '-b', url(DB_BROKER), '--result-backend', url(DB_RESULTS), '-P', pool, '-c', String(C),
      '-A', join(BENCH_DIR, 'cpuTasks.ts'), '-l', 'warning', '-n', `bench-${pool}@%h`, '--without-heartbeat',
    ],
    cwd: ROOT,
    env: cleanEnv(),
  });
  const prefork: Contender = {
    id: 'prefork',
    label: `Python Celery -P prefork -c ${C}`,
    processes: 1 + C,
    cmd: join(env.venvBin, 'celery'),
    args: ['-A', 'pybench', 'worker', '-P', 'prefork', '-c', String(C), '-l', 'warning', '-n', 'bench-prefork@%h', '--without-mingle', '--without-gossip', '--without-heartbeat'],
    cwd: BENCH_DIR,
    env: pyEnv(DB_BROKER),
  };
  const contenders = [prefork, celeriac('processes'), celeriac('threads'), celeriac('async')].filter((c) => !only || only.has(c.id));

  const clientList = async (): Promise<string> => String(await broker.call('CLIENT', 'LIST'));

  /** Every result stored, and equal to the expected value? */
  async function checkResults(w: Workload): Promise<{ bad: number; example: string }> {
    let cursor = '0';
    let seen = 0;
    let badCount = 0;
    let example = '';
    do {
      const [next, keys] = await results.scan(cursor, 'MATCH', 'celery-task-meta-*', 'COUNT', 1000);
      cursor = next;
      if (!keys.length) continue;
      for (const raw of await results.mget(...keys)) {
        seen++;
        const meta = JSON.parse(raw ?? '{}') as { status?: unknown; result?: unknown };
        if (meta.status !== 'SUCCESS' || meta.result !== w.expected) {
          badCount++;
          example ||= (raw ?? '(missing)').slice(0, 300);
        }
      }
    } while (cursor !== '0');
    return { bad: badCount + Math.max(0, N - seen), example };
  }

  async function measure(w: Workload, c: Contender): Promise<Measurement> {
    await broker.flushdb();
    await results.flushdb();
    // The previous worker's BRPOP connection must be gone, or it would pass for this one's.
    for (let i = 0; someoneBlocked(await clientList()); i++) {
      if (i > 100) throw new Error('a client is still blocked in BRPOP 5 s after the last worker stopped');
      await sleep(50);
    }
    const spawnedAt = performance.now();
    const worker = start(c.label, c.cmd, c.args, { cwd: c.cwd, env: c.env });
    try {
      // Ready: consuming (blocked in BRPOP on the empty queue) with the whole pool up.
      while (!(someoneBlocked(await clientList()) && groupMemory(worker.pid).length >= c.processes)) {
        if (worker.exited) throw new Error(`${c.label} exited before it was ready:\n${worker.output()}`);
        if (performance.now() - spawnedAt > 60_000) throw new Error(`${c.label}: not consuming after 60 s; output:\n${worker.output()}`);
        await sleep(50);
      }
      const readyS = (performance.now() - spawnedAt) / 1000;
      await sleep(settleMs);
      const idle = memoryOf(groupMemory(worker.pid));

      let loaded = idle;
      let samples = 0;
      const sample = (): void => {
        const m = memoryOf(groupMemory(worker.pid));
        samples++;
        if (samples === 1 || m.rssKiB > loaded.rssKiB) loaded = m;
      };
      const sampler = setInterval(sample, sampleMs);
      let startedAt = 0;
      let cpuAtStart = 0;
      let redisAtStart = 0;
      let busyAtStart = 0;
      const redisCpu = (): number => procStat(server.proc.pid)?.cpu ?? 0;
      try {
        await stashes.get(w.id)!.call('COPY', QUEUE, QUEUE, 'DB', String(DB_BROKER));
        for (;;) {
          const [len, size] = await Promise.all([broker.llen(QUEUE), results.dbsize()]);
          const now = performance.now();
          if (!startedAt && len < N) {
            startedAt = now;
            cpuAtStart = groupCpu(worker.pid);
            redisAtStart = redisCpu();
            busyAtStart = machineBusy();
          }
          if (startedAt && size >= N) {
            const workerCpuS = groupCpu(worker.pid) - cpuAtStart;
            const drainS = (now - startedAt) / 1000;
            const otherCores = (machineBusy() - busyAtStart - workerCpuS - (redisCpu() - redisAtStart)) / drainS;
            sample();
            const check = await checkResults(w);
            return { workload: w, contender: c, readyS, drainS, rate: N / drainS, workerCpuS, otherCores, idle, loaded, samples, badResults: check.bad, badExample: check.example };
          }
          if (worker.exited) throw new Error(`${c.label} exited during the drain:\n${worker.output()}`);
          if (now - spawnedAt > drainTimeoutMs) throw new Error(`${c.label}: ${size}/${N} results after ${drainTimeoutMs / 1000} s; output:\n${worker.output()}`);
          await sleep(pollMs);
        }
      } finally {
        clearInterval(sampler);
      }
    } finally {
      await stop(worker);
      logWorkerOutput(worker);
    }
  }

  const measured: Measurement[] = [];
  for (const w of workloads) {
    for (const c of contenders) {
      log(`pools: ${w.label}: ${c.label}: starting on an empty queue, then draining ${N} tasks...`);
      const m = await measure(w, c);
      measured.push(m);
      log(
        `pools: ${w.label}: ${c.label}: ${m.rate.toFixed(1)} tasks/s (${m.drainS.toFixed(2)} s, worker CPU ${m.workerCpuS.toFixed(2)} s, consuming ${m.readyS.toFixed(2)} s after spawn); ` +
          `RSS idle ${mib(m.idle.rssKiB)} MiB [${breakdown(m.idle)}], loaded ${mib(m.loaded.rssKiB)} MiB [${breakdown(m.loaded)}] over ${m.samples} samples` +
          (m.badResults ? `; ${m.badResults} WRONG result(s), e.g. ${m.badExample}` : ''),
      );
    }
  }

  const version = (await broker.info('server')).match(/redis_version:(\S+)/)?.[1] ?? '?';
  const py = execFileSync(env.python, ['-c', 'import sys, celery, kombu, billiard; print(sys.version.split()[0], celery.__version__, kombu.__version__, billiard.__version__)'], { encoding: 'utf8' }).trim().split(' ');
  await stopPools();
  const header = [
    `Celeriac pools bench: ${N} tasks per drain per workload, one drain per contender; every worker at -c ${C}; ` +
      `primes = bench.primes(${bound}) (trial division, ${countPrimes(bound)} primes), sha256 = bench.sha256(${shaK}) (64 KiB buffer, ${shaK} times)`,
    `${env.code}; machine: nproc ${availableParallelism()}, load average at start ${loadAtStart}, node ${process.version}, ` +
      `python ${py[0]} (celery ${py[1]}, kombu ${py[2]}, billiard ${py[3]}), redis ${version}`,
  ];
  return report(measured, header, N, (performance.now() - t0) / 1000);
}

function report(rows: Measurement[], header: string[], n: number, seconds: number): string {
  const fmt = (v: number, d: number): string => (Number.isFinite(v) ? v.toFixed(d) : '-');
  const base = (m: Measurement): Measurement | undefined => rows.find((r) => r.workload.id === m.workload.id && r.contender.id === 'prefork');
  const ratio = (a: number, b: number | undefined): string => (b ? `${(a / b).toFixed(2)}x` : '-');
  const head = ['workload', 'contender', 'tasks/s', 'vs prefork', 'drain s', 'worker CPU ms/task', 'other load (cores)', 'idle RSS MiB', 'loaded RSS MiB', 'RSS vs prefork (idle / loaded)', 'idle PSS MiB', 'loaded PSS MiB', 'processes'];
  const table = rows.map((m) => {
    const p = base(m);
    return [
      m.workload.label,
      m.contender.label,
      fmt(m.rate, 1),
      m.contender.id === 'prefork' ? '' : ratio(m.rate, p?.rate),
      fmt(m.drainS, 2),
      fmt((m.workerCpuS / n) * 1000, 2),
      fmt(Math.max(0, m.otherCores), 2),
      mib(m.idle.rssKiB),
      mib(m.loaded.rssKiB),
      m.contender.id === 'prefork' ? '' : `${ratio(m.idle.rssKiB, p?.idle.rssKiB)} / ${ratio(m.loaded.rssKiB, p?.loaded.rssKiB)}`,
      mib(m.idle.pssKiB),
      mib(m.loaded.pssKiB),
      String(m.loaded.procs.length),
    ];
  });
  const widths = head.map((h, i) => Math.max(h.length, ...table.map((r) => r[i]!.length)));
  const left = new Set([0, 1]);
  const line = (cells: string[]): string => `| ${cells.map((c, i) => (left.has(i) ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(' | ')} |`;
  const out = [
    ...header,
    '',
    line(head),
    `|${widths.map((w, i) => (left.has(i) ? '-'.repeat(w + 2) : `${'-'.repeat(w + 1)}:`)).join('|')}|`,
    ...table.map(line),
    '',
    'RSS and PSS: the sum over the worker\'s process group (the worker and its pool processes), idle = after start-up, before any task; loaded = the largest sample during the drain.',
    'RSS counts pages shared between processes (prefork children share the parent\'s pages copy-on-write; every node process maps the node binary) once per process; PSS splits each shared page among the processes that map it.',
    'Idle processes, RSS MiB each:',
  ];
  const seen = new Set<string>();
  for (const m of rows) {
    if (seen.has(m.contender.id)) continue;
    seen.add(m.contender.id);
    out.push(`  ${m.contender.label}: ${breakdown(m.idle)}`);
  }
  const wrong = rows.filter((m) => m.badResults);
  for (const m of wrong) out.push(`WARNING: ${m.workload.label} / ${m.contender.label}: ${m.badResults} of ${n} results missing or wrong, e.g. ${m.badExample}`);
  if (!wrong.length) out.push(`Every result checked: all ${n} per drain are SUCCESS with the expected value (the same for Python and Celeriac).`);
  out.push(`(pools suite ${seconds.toFixed(0)} s)`);
  return `\n${out.join('\n')}\n`;
}
