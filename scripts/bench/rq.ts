/**
 * `npx tsx scripts/bench/rq.ts [--jobs N] [--py-jobs M] [--concurrency C]`: drain of N no-op rq
 * jobs (Python rq's enqueue_many, JSONSerializer, `rqtasks.noop`) by `celeriac worker --rq`,
 * then M by Python `rq worker` (forking) and by `rq worker-pool -n 2`, on one private
 * redis-server in the same run. The drain is timed from the first job leaving the queue to the
 * last one in rq:finished (worker start-up excluded); M defaults to N / 10 because rq forks a
 * work horse per job (rates are compared, jobs/s).
 */
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { tmpdir } from 'node:os';
import { execFileSync } from 'node:child_process';
import { ROOT, cleanEnv, log, positiveInt, sleep, start, stop } from './common';
import { PrivateRedis } from './privateRedis';

const VENV_BIN = join(ROOT, '.venv-interop', 'bin');
const INTEROP = join(ROOT, 'tests', 'interop');
const QUEUE = 'bench';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

function enqueue(url: string, n: number): void {
  const script = `
from redis import Redis
from rq import Queue
from rq.serializers import JSONSerializer
q = Queue(${JSON.stringify(QUEUE)}, connection=Redis.from_url(${JSON.stringify(url)}), serializer=JSONSerializer)
for i in range(0, ${n}, 1000):
    q.enqueue_many([Queue.prepare_data('rqtasks.noop', result_ttl=3600) for _ in range(min(1000, ${n} - i))])
`;
  execFileSync(join(VENV_BIN, 'python'), ['-c', script], { cwd: INTEROP, stdio: 'inherit' });
}

interface Drain {
  name: string;
  jobs: number;
  seconds: number;
  rate: number;
}

async function drain(redis: PrivateRedis, db: number, name: string, n: number, cmd: string, args: string[]): Promise<Drain> {
  const client = redis.connect(db);
  await client.flushdb();
  enqueue(redis.url(db), n);
  const env = { ...cleanEnv(), PYTHONPATH: INTEROP, APP_ENV: 'development', CELERIAC_LOG_LEVEL: 'warning' };
  const proc = start(name, cmd, args.map((a) => a.replace('URL', redis.url(db))), { env, cwd: cmd.includes('.venv') ? INTEROP : ROOT });
  let t0 = 0;
  const deadline = performance.now() + 1_800_000;
  for (;;) {
    if (proc.exited && (await client.zcard(`rq:finished:${QUEUE}`)) < n) throw new Error(`${name} exited early:\n${proc.output()}`);
    if (!t0 && (await client.llen(`rq:queue:${QUEUE}`)) < n) t0 = performance.now();
    if (t0 && (await client.zcard(`rq:finished:${QUEUE}`)) >= n) break;
    if (performance.now() > deadline) throw new Error(`${name}: no full drain in 30 min`);
    await sleep(t0 ? 20 : 5);
  }
  const seconds = (performance.now() - t0) / 1000;
  await stop(proc, 15_000);
  const failed = await client.zcard(`rq:failed:${QUEUE}`);
  if (failed) throw new Error(`${name}: ${failed} jobs failed`);
  const row = { name, jobs: n, seconds, rate: n / seconds };
  log(`${name}: ${n} jobs in ${seconds.toFixed(2)} s = ${row.rate.toFixed(0)} jobs/s`);
  return row;
}

async function main(): Promise<void> {
  const jobs = positiveInt('--jobs', arg('--jobs') ?? '20000');
  const pyJobs = positiveInt('--py-jobs', arg('--py-jobs') ?? String(Math.max(100, Math.floor(jobs / 10))));
  const concurrency = positiveInt('--concurrency', arg('--concurrency') ?? '64');
  const redis = await PrivateRedis.start(join(tmpdir(), `celeriac-bench-rq-${process.pid}`));
  try {
    const rows = [
      await drain(redis, 1, `celeriac --rq -c ${concurrency}`, jobs, process.execPath, [
        '-r', 'tsx/cjs', join(ROOT, 'scripts', 'celeriac.ts'), 'worker', '--rq', '-b', 'URL', '-Q', QUEUE, '-c', String(concurrency), '-A', 'tests/fixtures/rqTasks.ts',
      ]),
      await drain(redis, 2, 'rq worker', pyJobs, join(VENV_BIN, 'rq'), ['worker', '--burst', '-u', 'URL', '--serializer', 'rq.serializers.JSONSerializer', QUEUE]),
      await drain(redis, 3, 'rq worker-pool -n 2', pyJobs, join(VENV_BIN, 'rq'), ['worker-pool', '--burst', '-n', '2', '-u', 'URL', '--serializer', 'rq.serializers.JSONSerializer', QUEUE]),
    ];
    const base = rows[0]!.rate;
    for (const r of rows) log(`${r.name.padEnd(24)} ${String(r.jobs).padStart(6)} jobs ${r.seconds.toFixed(2).padStart(8)} s ${r.rate.toFixed(0).padStart(7)} jobs/s  (celeriac is ${(base / r.rate).toFixed(1)}x)`);
  } finally {
    await redis.stop();
  }
}

main().catch((err: Error) => {
  process.stderr.write(`${err.stack ?? err.message}\n`);
  process.exit(1);
});
