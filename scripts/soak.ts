/**
 * `npm run soak -- --minutes 10 [--rate 100] [--pool async]`
 *
 * A steady mixed load on one Celeriac worker with --autoscale 8,2, on a private redis-server:
 * short tasks (demo.add), long ones (demo.sleep 1-2 s), failing (demo.fail), retrying
 * (demo.retry), progress reports and ETA tasks (countdown 5 s). Every minute it prints the tasks
 * done and waiting, the worker's RSS and event-loop lag p99 (read from its /metrics endpoint) and
 * the pool size.
 * At the end every task id sent must have its expected final state; it fails (exit 1) when one is
 * missing or wrong, or when RSS keeps growing (last fifth of the run well above the second fifth).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Celeriac } from '../workers/app/app';
import type { AsyncResult } from '../workers/producer/asyncResult';
import { cleanEnv, freePorts, log, sleep, start, stop, type Proc } from './bench/common';

const { values: flags } = parseArgs({
  options: {
    minutes: { type: 'string', default: '10' },
    rate: { type: 'string', default: '100' },
    pool: { type: 'string', default: 'async' },
  },
  strict: true,
});
const MINUTES = Number(flags.minutes);
const RATE = Number(flags.rate);
if (!(MINUTES > 0) || !(RATE > 0)) throw new Error('--minutes and --rate must be positive numbers');

interface Sent {
  result: AsyncResult;
  expect: 'SUCCESS' | 'FAILURE';
}

/** One task of the mix, by weight: mostly short, some long, failing, retrying, progress, ETA. */
function pick(i: number): { name: string; args: unknown[]; countdown?: number; expect: Sent['expect'] } {
  const r = i % 100;
  // Long tasks are 3% at 1-2 s: about 4.5 of the 8 slots at 100 tasks/s, so the load stays within
  // what --autoscale 8,2 can serve (and the pool moves) instead of building a backlog.
  if (r < 72) return { name: 'demo.add', args: [i, 1], expect: 'SUCCESS' };
  if (r < 75) return { name: 'demo.sleep', args: [1 + (i % 2)], expect: 'SUCCESS' };
  if (r < 82) return { name: 'demo.fail', args: [`soak ${i}`], expect: 'FAILURE' };
  if (r < 90) return { name: 'demo.retry', args: [2], expect: 'SUCCESS' };
  if (r < 95) return { name: 'demo.progress', args: [3], expect: 'SUCCESS' };
  return { name: 'demo.add', args: [i, 2], countdown: 5, expect: 'SUCCESS' };
}

/** One sample value from Prometheus text, by metric name (first series). */
function metric(text: string, name: string): number {
  const m = new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.e+-]+)$`, 'm').exec(text);
  return m ? Number(m[1]) : NaN;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'celeriac-soak-'));
  const [redisPort, metricsPort] = await freePorts(2);
  const procs: Proc[] = [];
  const redis = start('redis-server', 'redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir]);
  procs.push(redis);
  await sleep(300);
  const broker = `redis://127.0.0.1:${redisPort}/0`;
  const backend = `redis://127.0.0.1:${redisPort}/1`;
  const worker = start('celeriac', process.execPath, [
    '-r', 'tsx/cjs', 'workers/cli/main.ts', 'worker', '-b', broker, '--result-backend', backend, '-P', String(flags.pool),
    '--autoscale', '8,2', '--metrics-port', String(metricsPort), '-l', 'warning', '-n', 'soak@%h',
  ], { env: { ...cleanEnv(), APP_ENV: 'development', CELERIAC_AUTOSCALE_KEEPALIVE: '10' } });
  procs.push(worker);
  const app = new Celeriac({ brokerUrl: broker, resultBackend: backend });
  const sent: Sent[] = [];
  const samples: { at: number; rss: number; lag: number; pool: number; done: number }[] = [];
  let failed: boolean;
  try {
    for (let i = 0; ; i++) {
      try {
        if ((await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).ok) break;
      } catch {
        if (i > 100 || worker.exited) throw new Error(`worker did not come up:\n${worker.output()}`);
        await sleep(200);
      }
    }
    const t0 = Date.now();
    const end = t0 + MINUTES * 60_000;
    let nextSample = t0 + 10_000;
    let i = 0;
    log(`soak: ${MINUTES} min at ${RATE} tasks/s, -P ${flags.pool} --autoscale 8,2`);
    while (Date.now() < end) {
      // Send what is due by now, in small bursts (steady on average).
      const due = Math.floor(((Date.now() - t0) / 1000) * RATE);
      for (; i < due; i++) {
        const t = pick(i);
        sent.push({ result: await app.sendTask(t.name, t.args, {}, { countdown: t.countdown }), expect: t.expect });
      }
      if (Date.now() >= nextSample) {
        nextSample += 10_000;
        const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
        const done = metric(text, 'celeriac_tasks_succeeded_total') + metric(text, 'celeriac_tasks_failed_total');
        const s = {
          at: (Date.now() - t0) / 1000,
          rss: metric(text, 'celeriac_process_resident_memory_bytes') / 1e6,
          lag: metric(text, 'celeriac_nodejs_eventloop_lag_p99_seconds') * 1000,
          pool: metric(text, 'celeriac_worker_concurrency'),
          done,
        };
        samples.push(s);
        const backlog = metric(text, 'celeriac_queue_depth');
        if (samples.length % 6 === 0 || samples.length === 1) log(`t=${s.at.toFixed(0)}s sent=${sent.length} done=${s.done} backlog=${backlog} rss=${s.rss.toFixed(1)} MB lag p99=${s.lag.toFixed(1)} ms pool=${s.pool}`);
      }
      await sleep(20);
    }
    log(`sending stopped after ${sent.length} tasks; waiting for every result (the backlog drains first)`);
    let lost = 0;
    let wrong = 0;
    for (const s of sent) {
      let state: string;
      try {
        await s.result.get({ timeout: 60, propagate: false });
        state = await s.result.state();
      } catch {
        state = 'MISSING';
      }
      if (state === 'MISSING' || state === 'PENDING') lost++;
      else if (state !== s.expect) wrong++;
    }
    const seconds = MINUTES * 60;
    const fifth = Math.max(1, Math.floor(samples.length / 5));
    const early = median(samples.slice(fifth, 2 * fifth).map((s) => s.rss));
    const late = median(samples.slice(-fifth).map((s) => s.rss));
    const lags = samples.map((s) => s.lag);
    const growing = late > early * 1.5 + 20;
    process.stdout.write(
      [
        '',
        `soak: ${MINUTES} min, ${sent.length} tasks sent (${(sent.length / seconds).toFixed(0)}/s), -P ${flags.pool} --autoscale 8,2`,
        `  lost: ${lost}   wrong final state: ${wrong}`,
        `  RSS MB: start ${samples[0]?.rss.toFixed(1)}, second fifth ${early.toFixed(1)}, last fifth ${late.toFixed(1)}, max ${Math.max(...samples.map((s) => s.rss)).toFixed(1)}${growing ? '  <- GROWING' : ''}`,
        `  event-loop lag p99 ms: median ${median(lags).toFixed(1)}, max ${Math.max(...lags).toFixed(1)}`,
        `  pool size seen: ${Math.min(...samples.map((s) => s.pool))}-${Math.max(...samples.map((s) => s.pool))}`,
        '',
      ].join('\n'),
    );
    failed = lost > 0 || wrong > 0 || growing;
  } finally {
    await app.close();
    for (const p of procs.reverse()) await stop(p, 30_000);
    rmSync(dir, { recursive: true, force: true });
  }
  if (failed) {
    process.stderr.write('soak FAILED\n');
    process.exit(1);
  }
}

main().catch((err: Error) => {
  process.stderr.write(`soak failed: ${err.stack ?? err.message}\n`);
  process.exit(1);
});
