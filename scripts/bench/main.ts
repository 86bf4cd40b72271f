/**
 * `npm run bench [-- --broker redis|amqp|all --n 20000 --latency 500 --profile ...]`
 *
 * Celeriac against Python Celery and celery-node on the same machine, same broker, same
 * messages, in one run:
 *   - Redis (redis.ts): a private redis-server, results in Redis and results ignored, and the
 *     physical reference: redis-benchmark for the commands a task costs (redisref.ts);
 *   - AMQP (amqp.ts): a private RabbitMQ node, once with results ignored and once with Celery's
 *     rpc:// result backend.
 * Each worker drains N pre-enqueued `demo.noop` tasks (start-up excluded). Round trips: on AMQP
 * the worker, still running after its last drain, answers sequential apply_async().get() calls; on
 * Redis every contender's worker runs idle at once and the Python client takes turns between them
 * in blocks of 20 (redis.ts, roundTrips). Its RSS is read idle (a worker of its own
 * on an empty queue) and at the end of each drain. The per-contender table, then one table with
 * Celeriac against every peer and the ratios (peers.ts). With --profile, one more Celeriac drain
 * per broker under `node --cpu-prof`, summarized.
 * Nothing is written to the repository. See docs/benchmarks.md for the method and a recorded run.
 *
 * `--suite pools` runs pools.ts instead: CPU-bound tasks per Celeriac execution pool against
 * Python Celery prefork, with the workers' memory (`--suite brokers`, the default, is the above).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { BENCH_DIR, ROOT, live, positiveInt, stop, type Row } from './common';
import { rabbitStoppers } from './rabbit';
import { runRedis, stopRedis, type BenchOutcome, type RedisMode } from './redis';
import { runAmqp, stopAmqp, type AmqpMode } from './amqp';
import { fmt, peersReport, renderTable } from './peers';
import { POOLS_HELP, POOLS_OPTIONS, runPools, stopPools } from './pools';
import { CLIMATE_HELP, CLIMATE_OPTIONS, runClimate, stopClimate } from './climate';
import { runMd5Bench } from './md5';
import { runWorkflowStepsBench } from './workflowSteps';

const { values: flags } = parseArgs({
  options: {
    suite: { type: 'string', default: 'brokers' },
    broker: { type: 'string', default: 'all' },
    // n and poll-ms: no default here, each suite has its own.
    n: { type: 'string' },
    latency: { type: 'string', default: '500' },
    warmup: { type: 'string', default: '20' },
    'celeriac-concurrency': { type: 'string', default: '100' },
    only: { type: 'string' },
    profile: { type: 'boolean', default: false },
    'poll-ms': { type: 'string' },
    'drain-timeout': { type: 'string', default: '300' },
    repeat: { type: 'string', default: '3' },
    'amqp-repeat': { type: 'string', default: '1' },
    'amqp-celeriac-repeat': { type: 'string', default: '3' },
    'amqp-modes': { type: 'string', default: 'ignored,rpc' },
    'redis-modes': { type: 'string', default: 'redis,ignored' },
    'redis-benchmark-n': { type: 'string', default: '100000' },
    'celerynode-nodelay': { type: 'boolean', default: false },
    'celerynode-amqp-n': { type: 'string', default: '2000' },
    'celeriac-node-arg': { type: 'string', multiple: true, default: [] },
    compiled: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
    'md5-mib': { type: 'string', default: '256' },
    workflows: { type: 'string', default: '20' },
    'wf-warmup': { type: 'string', default: '2' },
    ...POOLS_OPTIONS,
    ...CLIMATE_OPTIONS,
  },
  strict: true,
});

if (flags.help) {
  process.stdout.write(
    [
      'npm run bench -- [options]',
      '  --suite S                 brokers (the no-op broker bench below), pools (CPU-bound tasks per pool), climate (NetCDF area statistics), workflows (step-to-step overhead vs sca-rhythm, inspect_dataset md5 vs hashlib), rq or curation (own flags: scripts/bench/rq.ts, curation.ts) (brokers)',
      '  --md5-mib N               workflows: MiB of files inspect_dataset md5s against Python hashlib (256)',
      '  --workflows N             workflows: counted 6-step workflows per contender, one at a time (20: 100 transitions each)',
      '  --wf-warmup N             workflows: uncounted workflows per contender before those (2)',
      '  --broker B                redis, amqp or all (all)',
      '  --n N                     tasks per drain (20000)',
      '  --latency N               round trips per worker (500; 0 = skip); on Redis the Python client takes turns between the workers',
      '  --warmup N                uncounted round trips before those (20)',
      '  --celeriac-concurrency N  Celeriac -c for the main contender (100); -c 8 always runs too',
      '  --only a,b                contenders: celeriac, celeriac8, prefork, threads, celerynode; references ioredis (redis), amqplib (amqp)',
      '  --profile                 one more Celeriac drain per broker (and AMQP mode) under node --cpu-prof, summarized',
      '  --celeriac-node-arg A     extra node argument for Celeriac workers, repeatable (experiments: -r preload.js)',
      '  --compiled                brokers suite: run Celeriac from dist/ (npm run build first) instead of the source under tsx',
      '  --poll-ms N               Redis: queue/results poll interval (2)',
      '  --drain-timeout S         give up on a drain after S seconds (300)',
      '  --repeat R                Redis: drains per contender, interleaved; the median is reported (3)',
      '  --amqp-repeat R           AMQP: drains per Python and celery-node contender per mode (1)',
      '  --amqp-celeriac-repeat R  AMQP: drains per Celeriac (and reference) contender per mode (3; ~2 s each)',
      '  --amqp-modes list         AMQP result modes: ignored, rpc (both)',
      '  --redis-modes list        Redis result modes: redis (results in Redis), ignored (both)',
      '  --redis-benchmark-n N     redis-benchmark requests per test for the physical reference (100000; 0 = skip)',
      '  --settle-ms MS            quiet time before each idle RSS reading (1000; the pools suite reads it too)',
      '  --celerynode-nodelay      celery-node with TCP_NODELAY (its conf; amqplib 0.8 leaves Nagle on by default)',
      '  --celerynode-amqp-n N     tasks per celery-node drain on AMQP, at most --n (2000: it runs at tens of tasks/s there)',
      ...POOLS_HELP,
      ...CLIMATE_HELP,
      '',
    ].join('\n'),
  );
  process.exit(0);
}

const SUITE = flags.suite;
if (SUITE !== 'brokers' && SUITE !== 'pools' && SUITE !== 'climate' && SUITE !== 'workflows') {
  process.stderr.write(`--suite: expected brokers, pools, climate, workflows, rq or curation, got ${JSON.stringify(SUITE)}\n`);
  process.exit(2);
}
const BROKER = flags.broker;
if (!['redis', 'amqp', 'all'].includes(BROKER)) {
  process.stderr.write(`--broker: expected redis, amqp or all, got ${JSON.stringify(BROKER)}\n`);
  process.exit(2);
}
const AMQP_MODES = flags['amqp-modes'].split(',').map((s) => s.trim()).filter(Boolean) as AmqpMode[];
if (!AMQP_MODES.length || AMQP_MODES.some((m) => m !== 'ignored' && m !== 'rpc')) {
  process.stderr.write(`--amqp-modes: expected ignored and/or rpc, got ${JSON.stringify(flags['amqp-modes'])}\n`);
  process.exit(2);
}
const REDIS_MODES = flags['redis-modes'].split(',').map((s) => s.trim()).filter(Boolean) as RedisMode[];
if (!REDIS_MODES.length || REDIS_MODES.some((m) => m !== 'redis' && m !== 'ignored')) {
  process.stderr.write(`--redis-modes: expected redis and/or ignored, got ${JSON.stringify(flags['redis-modes'])}\n`);
  process.exit(2);
}
const N = positiveInt('n', flags.n ?? '20000');
const LATENCY_N = positiveInt('latency', flags.latency, true);
const WARMUP = positiveInt('warmup', flags.warmup, true);
const CELERIAC_C = positiveInt('celeriac-concurrency', flags['celeriac-concurrency']);
const POLL_MS = positiveInt('poll-ms', flags['poll-ms'] ?? '2');
const DRAIN_TIMEOUT_MS = positiveInt('drain-timeout', flags['drain-timeout']) * 1000;
const REPEAT = positiveInt('repeat', flags.repeat);
const AMQP_REPEAT = positiveInt('amqp-repeat', flags['amqp-repeat']);
const AMQP_CELERIAC_REPEAT = positiveInt('amqp-celeriac-repeat', flags['amqp-celeriac-repeat']);
const REFERENCE_N = positiveInt('redis-benchmark-n', flags['redis-benchmark-n'], true);
const SETTLE_MS = positiveInt('settle-ms', flags['settle-ms'], true);
const CELERYNODE_AMQP_N = positiveInt('celerynode-amqp-n', flags['celerynode-amqp-n']);
const ONLY = flags.only ? new Set(flags.only.split(',').map((s) => s.trim())) : null;
const LOAD_AT_START = loadavg().map((x) => x.toFixed(2)).join(' ');

let tempDir: string | null = null;

/** Stop workers, then the brokers (RabbitMQ cleanly, then its epmd), remove the temp dir. Once. */
let cleaning: Promise<void> | null = null;
function cleanup(graceMs = 15_000): Promise<void> {
  cleaning ??= (async () => {
    const infra = new Set(['redis-server', 'rabbitmq-server', 'epmd', 'mongo-server']);
    for (const p of [...live]) if (!infra.has(p.name)) await stop(p, graceMs);
    await stopRedis().catch(() => undefined);
    await stopAmqp().catch(() => undefined);
    await stopPools().catch(() => undefined);
    await stopClimate().catch(() => undefined);
    for (const s of [...rabbitStoppers]) await s().catch(() => undefined);
    for (const p of [...live]) await stop(p, 2_000);
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
    process.stderr.write(`\n[bench] ${sig}: stopping workers and brokers\n`);
    void cleanup(5_000).finally(() => process.exit(130));
  });
}

/** The code measured: HEAD, and whether workers/ differs from it (uncommitted work is measured too). */
function codeVersion(): string {
  try {
    const git = (args: string[]): string => execFileSync('git', args, { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    const dirty = git(['status', '--porcelain', '--', 'workers']).split('\n').filter(Boolean).length;
    const how = flags.compiled && SUITE === 'brokers' ? ' (Celeriac run from dist/, --compiled)' : ' (Celeriac run from source under tsx)';
    return `code ${git(['rev-parse', '--short', 'HEAD'])}${dirty ? ` + ${dirty} uncommitted change(s) under workers/` : ''}${how}`;
  } catch {
    return 'code: not a git checkout';
  }
}

function report(rows: Row[], outcomes: BenchOutcome[], pyVersion: string[], seconds: number, code: string): string {
  const perTask = (s: number, tasks: number): number => (s / tasks) * 1e6;
  const mib = (kib: number | null): string => (kib ? (kib / 1024).toFixed(1) : '-');
  const peer = (r: Row, id: string): Row | undefined => rows.find((x) => x.broker === r.broker && x.results === r.results && x.contender.id === id);
  const ratio = (r: Row, id: string): string => {
    if (r.contender.kind === 'python' || r.contender.id === id) return '';
    if (id === 'celerynode' && r.contender.kind !== 'celeriac') return '';
    const other = peer(r, id);
    return other ? `${(r.drain.rate / other.drain.rate).toFixed(1)}x` : '-';
  };
  const header = ['broker', 'results', 'contender', 'tasks/s', 'min-max (drains)', 'drain s', 'worker CPU µs/task', 'broker CPU µs/task', 'other load (cores)', 'RTT p50 ms', 'RTT p99 ms', 'RSS idle MiB', 'RSS end MiB', 'vs prefork', 'vs threads', 'vs celery-node'];
  const table: string[][] = [];
  for (const r of rows) {
    const rates = r.runs.map((x) => x.rate);
    table.push([
      r.broker,
      r.results,
      r.contender.label,
      fmt(r.drain.rate, 0),
      `${fmt(Math.min(...rates), 0)}-${fmt(Math.max(...rates), 0)} (${rates.length})`,
      fmt(r.drain.drainS, 2),
      fmt(perTask(r.drain.workerCpuS, r.drain.tasks), 0),
      fmt(perTask(r.drain.brokerCpuS, r.drain.tasks), 0),
      fmt(Math.max(0, r.drain.otherCores), 2),
      fmt(r.latency?.p50, 2),
      fmt(r.latency?.p99, 2),
      mib(r.idleRssKiB),
      mib(r.drain.rssEndKiB),
      ratio(r, 'prefork'),
      ratio(r, 'threads'),
      ratio(r, 'celerynode'),
    ]);
    const own = r.ownLatency;
    if (own) table.push([r.broker, r.results, `  ${own.client} -> ${r.contender.label}`, '', '', '', '', '', '', fmt(own.result.p50, 2), fmt(own.result.p99, 2), '', '', '', '', '']);
  }
  const gaps = outcomes.flatMap((o) => o.gaps);
  for (const g of gaps) table.push([g.broker, g.results, `${g.contender.label}: not run (see below)`, 'n/a', '', '', '', '', '', '', '', '', '', '', '', '']);
  const out: string[] = [
    `Celeriac bench: ${N} demo.noop tasks per drain; median drain shown; ${LATENCY_N} round trips (+${WARMUP} warm-up) per worker` +
      ` (redis: ${REPEAT} drain(s) per contender; amqp: ${AMQP_REPEAT} per Python and celery-node contender, ${Math.max(AMQP_REPEAT, AMQP_CELERIAC_REPEAT)} per Celeriac contender, per mode)`,
    `${code}; machine: nproc ${availableParallelism()}, load average at start ${LOAD_AT_START}, node ${process.version}, python ${pyVersion[0]} (celery ${pyVersion[1]}, kombu ${pyVersion[2]}, py-amqp ${pyVersion[3]}), ${outcomes.map((x) => x.version).join(', ')}`,
    '',
    ...renderTable(header, table, new Set([0, 1, 2])),
    ...gaps.map((g) => `  not run: ${g.broker}/${g.results}: ${g.contender.label}: ${g.why}`),
    '',
    'Celeriac tasks/s over each peer\'s tasks/s, same broker and results (medians; then each Celeriac drain over the peer\'s median):',
  ];
  for (const cel of rows.filter((r) => r.contender.kind !== 'python')) {
    for (const id of ['prefork', 'threads', 'celerynode']) {
      const other = peer(cel, id);
      if (!other || other === cel || (id === 'celerynode' && cel.contender.kind !== 'celeriac')) continue;
      const each = cel.runs.map((run) => (run.rate / other.drain.rate).toFixed(1)).join(', ');
      out.push(`  ${cel.broker}/${cel.results}: ${cel.contender.label} / ${other.contender.label}: ${(cel.drain.rate / other.drain.rate).toFixed(1)}x (${each})`);
    }
  }
  // The bare references (rawredis.ts, rawconsumer.ts) set the floor a Node consumer can reach.
  for (const cel of rows.filter((r) => r.contender.kind === 'celeriac')) {
    const ref = rows.find((x) => x.broker === cel.broker && x.results === cel.results && x.contender.kind === 'reference');
    if (!ref) continue;
    const cpu = (r: Row): string => fmt(perTask(r.drain.workerCpuS, r.drain.tasks), 0);
    out.push(
      `  ${cel.broker}/${cel.results}: ${cel.contender.label} / ${ref.contender.label}: ${((cel.drain.rate / ref.drain.rate) * 100).toFixed(1)}% of its tasks/s; ` +
        `worker CPU ${cpu(cel)} against ${cpu(ref)} µs/task`,
    );
  }
  const amqpMain = rows.filter((r) => r.broker === 'amqp' && r.contender.id === 'celeriac');
  if (amqpMain.length) {
    const parts: string[] = [];
    let min = Infinity;
    for (const r of amqpMain) {
      for (const id of ['prefork', 'threads']) {
        const py = peer(r, id);
        if (!py) continue;
        const x = r.drain.rate / py.drain.rate;
        min = Math.min(min, x);
        parts.push(`${r.results}/${id} ${x.toFixed(1)}x`);
      }
    }
    if (parts.length) out.push('', `AMQP target >= 10x Python Celery: ${min >= 10 ? 'MET' : 'NOT MET'} (lowest ratio ${min.toFixed(1)}x; ${parts.join(', ')})`);
  }
  for (const o of outcomes) if (o.notes.length) out.push('', ...o.notes);
  const redis = outcomes.find((o) => o.version.startsWith('redis'));
  out.push('', ...peersReport({ rows, gaps, n: N, reference: redis?.reference, redisVersion: redis?.version.replace(/^redis /, '') ?? '?' }));
  out.push(`(whole bench ${seconds.toFixed(0)} s)`);
  return `\n${out.join('\n')}\n${outcomes.map((o) => o.profileText).join('')}`;
}

async function main(): Promise<void> {
  const t0 = performance.now();
  const code = codeVersion();
  const python = execFileSync('bash', [join(BENCH_DIR, 'ensure-venv.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] })
    .trim()
    .split('\n')
    .pop()!;
  const venvBin = resolve(python, '..');
  tempDir = mkdtempSync(join(tmpdir(), 'celeriac-bench-'));
  if (SUITE === 'pools') {
    process.stdout.write(await runPools(flags, { python, venvBin, tempDir, code }));
    return;
  }
  if (SUITE === 'climate') {
    process.stdout.write(await runClimate(flags, { python, tempDir, code }));
    return;
  }
  if (SUITE === 'workflows') {
    const workflows = { workflows: positiveInt('workflows', flags.workflows), warmup: positiveInt('wf-warmup', flags['wf-warmup'], true), steps: 6 };
    process.stdout.write(await runWorkflowStepsBench({ python, tempDir, ...workflows }));
    process.stdout.write(await runMd5Bench({ python, tempDir, totalMiB: positiveInt('md5-mib', flags['md5-mib']), fileMiB: 16, repeat: REPEAT }));
    return;
  }
  const common = {
    n: N, latencyN: LATENCY_N, warmup: WARMUP, celeriacC: CELERIAC_C, celeriacNodeArgs: flags['celeriac-node-arg'], compiled: flags.compiled, drainTimeoutMs: DRAIN_TIMEOUT_MS,
    only: ONLY, profile: flags.profile, settleMs: SETTLE_MS, celerynodeNoDelay: flags['celerynode-nodelay'], python, venvBin, tempDir,
  };
  const outcomes: BenchOutcome[] = [];
  if (BROKER === 'redis' || BROKER === 'all') outcomes.push(await runRedis({ ...common, pollMs: POLL_MS, repeat: REPEAT, modes: REDIS_MODES, referenceN: REFERENCE_N }));
  if (BROKER === 'amqp' || BROKER === 'all') {
    outcomes.push(await runAmqp({ ...common, repeat: AMQP_REPEAT, celeriacRepeat: AMQP_CELERIAC_REPEAT, modes: AMQP_MODES, celerynodeN: CELERYNODE_AMQP_N }));
  }
  const pyVersion = execFileSync(python, ['-c', 'import sys, celery, kombu, amqp; print(sys.version.split()[0], celery.__version__, kombu.__version__, amqp.__version__)'], { encoding: 'utf8' })
    .trim()
    .split(' ');
  process.stdout.write(report(outcomes.flatMap((o) => o.rows), outcomes, pyVersion, (performance.now() - t0) / 1000, code));
}

main()
  .catch((err: Error) => {
    if (interrupted) return; // the signal handler is already cleaning up and exits 130
    process.stderr.write(`[bench] failed: ${err.stack ?? err.message}\n`);
    process.exitCode = 1;
  })
  .finally(() => cleanup());
