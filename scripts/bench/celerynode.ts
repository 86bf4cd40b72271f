/**
 * The celery-node 0.5.9 contender of `npm run bench` (see docs/benchmarks.md), through its own
 * public API only (createWorker/createClient, register, start, sendTask, AsyncResult.get):
 *
 *   worker  BROKER_URL BACKEND_URL [--log] [--nodelay]
 *       A celery-node worker with `demo.noop` registered, consuming the `celery` queue. celery-node
 *       has no log level: it writes two console.info lines per task. The other contenders run at
 *       `-l warning` (no per-task lines), so console.info is silenced unless --log is given.
 *       celery-node has no stop() (it throws "not implemented yet"): on SIGTERM this waits for the
 *       running tasks (its whenCurrentJobsFinished), gives their result writes a moment, and exits.
 *
 *   latency BROKER_URL BACKEND_URL N WARMUP [--nodelay]
 *       N sequential sendTask('demo.noop').get() round trips through celery-node's own client,
 *       after WARMUP uncounted ones; prints {"ms": [...]}. Its get() polls the backend on a timer
 *       (500 ms by default); the bench asks for the shortest useful interval, POLL_MS.
 *
 *   --nodelay sets TCP_NODELAY through celery-node's public conf (CELERY_BROKER_OPTIONS and
 *   CELERY_BACKEND_OPTIONS are handed to amqplib / ioredis as they are). ioredis sets it anyway;
 *   amqplib 0.8 does not, and on AMQP Nagle's algorithm then holds small writes back until the
 *   peer's delayed ACK (~40 ms). Off by default: the bench measures celery-node as shipped.
 *
 * Started as its own process (`node -r tsx/cjs`, like Celeriac, so both carry the same loader).
 */
import { performance } from 'node:perf_hooks';
import { createClient, createWorker } from 'celery-node';
import type { CeleryConf } from 'celery-node/dist/app/conf';

/** AsyncResult.get's poll interval for the round trips: 1 ms, timers do not go finer. */
const POLL_MS = 1;
/** After the last task, how long its fire-and-forget result write gets before the exit. */
const FLUSH_MS = 200;

function usage(): never {
  process.stderr.write('usage: celerynode.ts worker BROKER BACKEND [--log] [--nodelay] | latency BROKER BACKEND N WARMUP [--nodelay]\n');
  process.exit(2);
}

/** Before the broker and backend are first used: they are created lazily from the conf. */
function tune(conf: CeleryConf, noDelay: boolean): void {
  if (!noDelay) return;
  conf.CELERY_BROKER_OPTIONS = { noDelay: true };
  conf.CELERY_BACKEND_OPTIONS = { noDelay: true };
}

function runWorker(broker: string, backend: string, log: boolean, noDelay: boolean): void {
  if (!log) console.info = (): void => undefined;
  const worker = createWorker(broker, backend, 'celery');
  tune(worker.conf, noDelay);
  worker.register('demo.noop', () => null);
  let stopping = false;
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    void worker
      .whenCurrentJobsFinished()
      .then(() => new Promise((r) => setTimeout(r, FLUSH_MS)))
      .finally(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  void worker.start();
}

async function runLatency(broker: string, backend: string, n: number, warmup: number, noDelay: boolean): Promise<void> {
  const client = createClient(broker, backend, 'celery');
  tune(client.conf, noDelay);
  await client.isReady();
  const ms: number[] = [];
  for (let i = 0; i < warmup + n; i++) {
    const t = performance.now();
    // get() rejects on TIMEOUT, FAILURE and REVOKED, so only a SUCCESS counts as a round trip.
    await client.sendTask('demo.noop', [], {}).get(30_000, POLL_MS);
    if (i >= warmup) ms.push(performance.now() - t);
  }
  process.stdout.write(`${JSON.stringify({ ms })}\n`);
  await client.disconnect();
}

const [mode, broker, backend, ...rest] = process.argv.slice(2);
const noDelay = rest.includes('--nodelay');
const positional = rest.filter((a) => !a.startsWith('--'));
if (!broker || !backend) usage();
if (mode === 'worker') {
  runWorker(broker, backend, rest.includes('--log'), noDelay);
} else if (mode === 'latency') {
  const n = Number(positional[0]);
  const warmup = Number(positional[1] ?? 0);
  if (!Number.isInteger(n) || !Number.isInteger(warmup)) usage();
  runLatency(broker, backend, n, warmup, noDelay).then(
    () => process.exit(0),
    (err: Error) => {
      process.stderr.write(`celerynode latency: ${err.stack ?? err.message}\n`);
      process.exit(1);
    },
  );
} else {
  usage();
}
