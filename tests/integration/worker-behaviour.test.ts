// The worker's scheduling rules on a real Redis, in process: concurrency and prefetch bounds, time
// limits, ETA, expires, retries, Reject, track_started and warm/cold shutdown. Redis dbs 50-59.
import { Celeriac, type AppLogger } from '../../workers/app/app';
import { Worker, type WorkerOptions } from '../../workers/worker/worker';
import { PythonError, Reject } from '../../workers/app/errors';
import { join } from 'node:path';
import { PROJECT_ROOT, testRedisUrl } from '../helpers/env';
import { flushDb, redisClient, type Redis } from '../helpers/redis';
import { startPrivateRedis } from '../helpers/privateRedis';
import IORedis from 'ioredis';
import { LuaScript } from '../../workers/redis/script';

let nextDb = 50;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Rig {
  app: Celeriac;
  producer: Celeriac;
  worker: Worker;
  broker: Redis;
  results: Redis;
  logs: string[];
  stop(): Promise<void>;
}

async function rig(setup: (app: Celeriac) => void, opts: Partial<WorkerOptions> = {}, appOpts: Partial<ConstructorParameters<typeof Celeriac>[0]> = {}): Promise<Rig> {
  // Broker and results share a db per rig: their keys never collide, and dbs are few.
  const b = nextDb++;
  const r = b;
  await flushDb(b);
  const logs: string[] = [];
  const logger: AppLogger = { info: (m) => logs.push(m), warn: (m) => logs.push(m), error: (m) => logs.push(m), debug: () => undefined };
  const urls = { brokerUrl: testRedisUrl(b), resultBackend: testRedisUrl(r) };
  const app = new Celeriac({ ...urls, logger, ...appOpts });
  setup(app);
  const worker = new Worker(app, { hostname: 'test@host', queues: ['celery'], concurrency: 2, prefetchMultiplier: 4, accept: ['json'], ...opts });
  await worker.start();
  const producer = new Celeriac(urls);
  const broker = redisClient(b);
  const results = redisClient(r);
  let stopped = false;
  return {
    app, producer, worker, broker, results, logs,
    async stop() {
      if (stopped) return;
      stopped = true;
      await worker.shutdown('warm');
      await worker.close();
      await producer.close();
      await Promise.all([broker.quit(), results.quit()]);
    },
  };
}

async function meta(results: Redis, id: string): Promise<Record<string, unknown> | null> {
  const raw = await results.get(`celery-task-meta-${id}`);
  return raw ? (JSON.parse(raw) as Record<string, unknown>) : null;
}

it('never runs more than concurrency tasks, nor holds more than concurrency x prefetch unacked', async () => {
  let running = 0;
  let maxRunning = 0;
  const t = await rig(
    (app) =>
      app.task('t.busy', async () => {
        maxRunning = Math.max(maxRunning, ++running);
        await sleep(100);
        running--;
      }, { acks_late: true }),
    { concurrency: 3, prefetchMultiplier: 2 },
  );
  let maxUnacked = 0;
  const sent = await Promise.all(Array.from({ length: 30 }, () => t.producer.sendTask('t.busy')));
  const sampler = setInterval(() => void t.broker.hlen('unacked').then((n) => (maxUnacked = Math.max(maxUnacked, n))), 10);
  await Promise.all(sent.map((s) => s.get({ timeout: 20 })));
  clearInterval(sampler);
  expect(maxRunning).toBe(3);
  expect(maxUnacked).toBeGreaterThan(0);
  expect(maxUnacked).toBeLessThanOrEqual(6);
  await t.stop();
});

it('soft time limit aborts the signal; hard time limit fails with TimeLimitExceeded and frees the slot', async () => {
  const t = await rig((app) => {
    app.task('t.soft', async function () {
      await new Promise((resolve) => this.signal.addEventListener('abort', resolve));
      return (this.signal.reason as Error).name;
    }, { soft_time_limit: 0.2 });
    app.task('t.stuck', () => new Promise(() => undefined), { time_limit: 0.3 });
    app.task('t.quick', () => 'quick');
  }, { concurrency: 1 });
  const soft = await t.producer.sendTask('t.soft');
  expect(await soft.get({ timeout: 10 })).toBe('SoftTimeLimitExceeded');
  const stuck = await t.producer.sendTask('t.stuck');
  const quick = await t.producer.sendTask('t.quick');
  await expect(stuck.get({ timeout: 10 })).rejects.toMatchObject({ name: 'TimeLimitExceeded', pyModule: 'billiard.exceptions' });
  expect(await quick.get({ timeout: 10 })).toBe('quick');
  await t.stop();
});

it('an ETA task waits without blocking others; an expired task is REVOKED and never runs', async () => {
  const ran: string[] = [];
  const t = await rig((app) => app.task('t.mark', (tag: string) => void ran.push(tag)), { concurrency: 1 });
  const later = await t.producer.sendTask('t.mark', ['later'], {}, { countdown: 1 });
  const now = await t.producer.sendTask('t.mark', ['now']);
  const expired = await t.producer.sendTask('t.mark', ['expired'], {}, { countdown: 0.5, expires: 0.1 });
  await now.get({ timeout: 10 });
  expect(ran).toEqual(['now']);
  await later.get({ timeout: 10 });
  expect(ran).toEqual(['now', 'later']);
  await expect(expired.get({ timeout: 10 })).rejects.toMatchObject({ name: 'TaskRevokedError' });
  expect(await expired.state()).toBe('REVOKED');
  expect(ran).not.toContain('expired');
  await t.stop();
});

it('retries: autoretry_for re-sends until it works; running out stores MaxRetriesExceededError', async () => {
  let calls = 0;
  const t = await rig((app) => {
    app.task('t.flaky', () => {
      if (++calls < 3) throw new TypeError('not yet');
      return calls;
    }, { autoretry_for: [TypeError], default_retry_delay: 0.05 });
    app.task('t.always', function () {
      this.retry({ countdown: 0.05 });
    }, { max_retries: 2 });
    app.task('t.capped', function () {
      this.retry({ countdown: 0.05, exc: new PythonError('KeyError', 'gone') });
    }, { max_retries: 1 });
  });
  expect(await (await t.producer.sendTask('t.flaky')).get({ timeout: 10 })).toBe(3);
  const always = await t.producer.sendTask('t.always');
  await expect(always.get({ timeout: 10 })).rejects.toMatchObject({ name: 'MaxRetriesExceededError', pyModule: 'celery.exceptions' });
  const stored = await meta(t.results, always.id);
  expect(stored?.result).toMatchObject({ exc_type: 'MaxRetriesExceededError', exc_module: 'celery.exceptions' });
  await expect((await t.producer.sendTask('t.capped')).get({ timeout: 10 })).rejects.toMatchObject({ name: 'KeyError', message: 'gone' });
  // t.flaky retried twice, t.always twice (max_retries 2), t.capped once.
  expect(t.logs.filter((l) => l.includes('retry: Retry in 0.05s')).length).toBe(5);
  await t.stop();
});

it('track_started stores STARTED with pid and hostname; result_extended adds request fields', async () => {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const t = await rig((app) => app.task('t.gated', async (x: number) => {
    await gate;
    return x;
  }, { track_started: true }), {}, { resultExtended: true });
  const r = await t.producer.sendTask('t.gated', [7], {}, { queue: 'celery' });
  for (let i = 0; i < 100 && (await r.state()) !== 'STARTED'; i++) await sleep(20);
  expect(await r.info()).toEqual({ pid: process.pid, hostname: 'test@host' });
  release();
  expect(await r.get({ timeout: 10 })).toBe(7);
  expect(await meta(t.results, r.id)).toMatchObject({ status: 'SUCCESS', name: 't.gated', args: [7], kwargs: {}, worker: 'test@host', retries: 0, queue: 'celery' });
  await t.stop();
});

it('warm shutdown finishes running tasks and gives reserved ones back', async () => {
  const t = await rig((app) => app.task('t.slow', async () => {
    await sleep(400);
    return 'done';
  }, { acks_late: true }), { concurrency: 1, prefetchMultiplier: 4 });
  const sent = await Promise.all(Array.from({ length: 5 }, () => t.producer.sendTask('t.slow')));
  for (let i = 0; i < 100 && t.worker.activeCount === 0; i++) await sleep(10);
  await sleep(50);
  expect(t.worker.activeCount).toBe(1);
  expect(t.worker.reservedCount).toBe(3);
  await t.worker.shutdown('warm');
  expect(await sent[0]!.state()).toBe('SUCCESS');
  await t.worker.close();
  expect(await t.broker.llen('celery')).toBe(4);
  expect(await t.broker.hlen('unacked')).toBe(0);
  await t.stop();
});

it('cold shutdown aborts the running acks_late task and its message goes back to the queue', async () => {
  const t = await rig((app) => app.task('t.long', async function () {
    await new Promise((resolve) => this.signal.addEventListener('abort', resolve));
  }, { acks_late: true }), { concurrency: 1 });
  const r = await t.producer.sendTask('t.long');
  for (let i = 0; i < 100 && t.worker.activeCount === 0; i++) await sleep(10);
  await t.worker.shutdown('cold');
  await t.worker.close();
  expect(await t.broker.llen('celery')).toBe(1);
  const back = JSON.parse((await t.broker.lindex('celery', 0))!) as { headers: { id: string; redelivered?: boolean } };
  expect(back.headers).toMatchObject({ id: r.id, redelivered: true });
  await t.stop();
});

it('a copy redelivered while the task still runs here is not run twice, and both are acked', async () => {
  let runs = 0;
  const t = await rig((app) => app.task('t.once', async () => {
    runs++;
    await sleep(300);
    return runs;
  }, { acks_late: true }), { concurrency: 4 });
  const r = await t.producer.sendTask('t.once');
  for (let i = 0; i < 100 && t.worker.activeCount === 0; i++) await sleep(10);
  // What a broker does after a channel loss: the same message again, flagged redelivered.
  await t.producer.sendTask('t.once', [], {}, { id: r.id, headers: { redelivered: true } });
  expect(await r.get({ timeout: 10 })).toBe(1);
  await sleep(100);
  expect(runs).toBe(1);
  expect(await t.broker.hlen('unacked')).toBe(0);
  expect(t.logs.some((l) => l.includes('redelivered while running here'))).toBe(true);
  await t.stop();
});

it('every ack reaches Redis under load: nothing is left in unacked after a burst', async () => {
  const t = await rig((app) => app.task('t.quick', (i: number) => i), { concurrency: 50, prefetchMultiplier: 4 });
  const sent = await Promise.all(Array.from({ length: 2000 }, (_, i) => t.producer.sendTask('t.quick', [i])));
  await Promise.all(sent.map((s) => s.get({ timeout: 30 })));
  for (let i = 0; i < 40 && (await t.broker.hlen('unacked')) > 0; i++) await sleep(50);
  expect(await t.broker.hlen('unacked')).toBe(0);
  expect(await t.broker.zcard('unacked_index')).toBe(0);
  await t.stop();
});

/**
 * While `during` runs, on the rig's db: the Redis times (ms) of each client EVALSHA, by script sha
 * (waiting.lua's, which rides behind each BRPOP, left out), and how many BRPOPs went out.
 */
async function watchScripts(t: Rig, during: () => Promise<void>): Promise<{ scripts: Map<string, number[]>; calls: number; brpops: number; waitings: number }> {
  const monitor = await t.broker.monitor();
  const seen = { scripts: new Map<string, number[]>(), calls: 0, brpops: 0, waitings: 0 };
  const db = String(t.broker.options.db);
  monitor.on('monitor', (time: string, args: string[], source: string, database: string) => {
    if (database !== db || source === 'lua') return;
    const command = (args[0] ?? '').toLowerCase();
    if (command === 'brpop') seen.brpops++;
    else if (command === 'evalsha' && args[1] === WAITING_SHA) seen.waitings++;
    else if (command === 'evalsha' || command === 'eval') {
      const times = seen.scripts.get(args[1]!) ?? [];
      times.push(Number(time) * 1000);
      seen.scripts.set(args[1]!, times);
      seen.calls++;
    }
  });
  await sleep(50);
  await during();
  await sleep(100);
  monitor.disconnect();
  return seen;
}

const scriptSha = (name: string): string => LuaScript.fromFile(name, join(PROJECT_ROOT, `workers/transports/redis/commands/${name}.lua`)).sha;
const CLAIM_SHA = scriptSha('claim');
const WAITING_SHA = scriptSha('waiting');

it('a lone early-acked task costs BRPOP and its stored result: its unacked record and its ack never go to Redis', async () => {
  const t = await rig((app) => app.task('t.lone', (i: number) => i), { concurrency: 1, prefetchMultiplier: 1 });
  await sleep(200); // idle in BRPOP
  const n = 30;
  const seen = await watchScripts(t, async () => {
    for (let i = 0; i < n; i++) expect(await (await t.producer.sendTask('t.lone', [i])).get({ timeout: 10 })).toBe(i);
  });
  // One script call per task, all the result store's; a record (claim.lua) or an ack (ack.lua)
  // would add one each. waiting.lua rides behind each BRPOP, and tells the worker to BRPOP again
  // rather than claim.
  expect(seen.calls).toBe(n);
  expect(seen.scripts.size).toBe(1);
  expect(seen.scripts.has(CLAIM_SHA)).toBe(false);
  expect(seen.brpops).toBeGreaterThanOrEqual(n);
  expect(seen.brpops).toBeLessThanOrEqual(n + 2);
  expect(seen.waitings).toBe(seen.brpops);
  expect(await t.broker.hlen('unacked')).toBe(0);
  await t.stop();
});

it('a burst landing on an idle worker is claimed in batches: BRPOP takes the first message, and waiting.lua sends the worker on to claim the rest', async () => {
  const t = await rig((app) => app.task('t.burst', (i: number) => i), { concurrency: 20, prefetchMultiplier: 4 });
  await sleep(200); // idle in BRPOP
  const n = 400;
  let results: unknown[] = [];
  const seen = await watchScripts(t, async () => {
    // Sent in one go: most are waiting in the queue by the time BRPOP's reply reaches the worker.
    const sent = await Promise.all(Array.from({ length: n }, (_, i) => t.producer.sendTask('t.burst', [i])));
    results = await Promise.all(sent.map((s) => s.get({ timeout: 30 })));
  });
  expect(results).toEqual(Array.from({ length: n }, (_, i) => i));
  // BRPOP's first message started at once and was acked without a record; without waiting.lua's
  // answer the worker would go back to BRPOP, one message per round trip while slots are free.
  expect(seen.brpops).toBeLessThan(20);
  await t.stop();
});

it('a lone acks_late task is recorded as unacked before its body runs, even a body that never yields, and acked after its result', async () => {
  const bodies: { start: number; end: number }[] = [];
  const t = await rig((app) => {
    app.task('t.late_sync', (i: number) => {
      // Synchronous on purpose: nothing else on the worker's event loop runs until it returns, so
      // a record sent after the handler returned would reach Redis only after the body ended.
      const start = Date.now();
      while (Date.now() - start < 100) {
        // busy
      }
      bodies.push({ start, end: Date.now() });
      return i;
    }, { acks_late: true });
  }, { concurrency: 1, prefetchMultiplier: 1 });
  await sleep(200); // idle in BRPOP
  const n = 5;
  const seen = await watchScripts(t, async () => {
    for (let i = 0; i < n; i++) expect(await (await t.producer.sendTask('t.late_sync', [i])).get({ timeout: 10 })).toBe(i);
  });
  const recordedAt = seen.scripts.get(CLAIM_SHA) ?? [];
  expect(recordedAt).toHaveLength(n);
  expect(bodies).toHaveLength(n);
  // Redis ran each record while its body was still busy (monitor times are Redis's clock, the
  // same machine's as Date.now()).
  for (let i = 0; i < n; i++) expect(recordedAt[i]!).toBeLessThan(bodies[i]!.end - 50);
  // Per task: the record, the result, the ack.
  expect(seen.calls).toBe(3 * n);
  for (let i = 0; i < 40 && (await t.broker.hlen('unacked')) > 0; i++) await sleep(50);
  expect(await t.broker.hlen('unacked')).toBe(0);
  expect(await t.broker.zcard('unacked_index')).toBe(0);
  await t.stop();
});

it('bad payloads popped by BRPOP on an idle queue are dropped with an error, and the valid task behind them runs', async () => {
  const t = await rig((app) => app.task('t.after_bad', (i: number) => i), { concurrency: 1, prefetchMultiplier: 1 });
  await sleep(200); // the worker is idle in BRPOP: each payload below is popped alone
  const bad = ['not json at all', '{"body": "e30=", "properties": {}}', '{"body": "e30=", "properties": {"delivery_tag": "tag-1"}, "headers": 7}'];
  for (const payload of bad) {
    await t.broker.lpush('celery', payload);
    await sleep(100);
  }
  expect(await (await t.producer.sendTask('t.after_bad', [5])).get({ timeout: 10 })).toBe(5);
  const dropped = t.logs.filter((l) => /^dropped a (non-message|malformed envelope) from celery/.test(l));
  expect(dropped).toHaveLength(3);
  expect(await t.broker.llen('celery')).toBe(0);
  for (let i = 0; i < 40 && (await t.broker.hlen('unacked')) > 0; i++) await sleep(50);
  // The one with a delivery_tag was recorded by the claim script and is forgotten there too.
  expect(await t.broker.hlen('unacked')).toBe(0);
  expect(await t.broker.zcard('unacked_index')).toBe(0);
  await t.stop();
});

it('Reject(requeue=True) runs the task again at once; Reject(requeue=False) stores FAILURE, as Celery 5.7', async () => {
  let runs = 0;
  const t = await rig((app) => {
    app.task('t.reject_once', () => {
      // Its copy may come back before this run has wound down (pools.test.ts, processes, hits that
      // race): it must run again, not be taken for a redelivered duplicate.
      if (++runs === 1) throw new Reject('not yet', true);
      return 'second run';
    }, { acks_late: true });
    app.task('t.reject_for_good', () => {
      throw new Reject('bad input', false);
    }, { acks_late: true });
  });
  const again = await t.producer.sendTask('t.reject_once');
  await expect(again.get({ timeout: 10 })).resolves.toBe('second run');
  expect(runs).toBe(2);
  const never = await t.producer.sendTask('t.reject_for_good');
  await expect(never.get({ timeout: 10 })).rejects.toMatchObject({ name: 'Reject' });
  expect((await meta(t.results, never.id))?.status).toBe('FAILURE');
  expect(await t.broker.llen('celery')).toBe(0);
  expect(await t.broker.hlen('unacked')).toBe(0);
  await t.stop();
});

it('after SCRIPT FLUSH (as after a Redis restart) a lone task still runs, and waiting.lua is loaded again', async () => {
  // A server of its own: SCRIPT FLUSH empties the cache of the whole server, and every other
  // client's next script call would go out twice (EVALSHA, then EVAL), upsetting counts elsewhere.
  const server = await startPrivateRedis('worker-behaviour-noscript');
  const urls = { brokerUrl: server.url(0), resultBackend: server.url(0) };
  const app = new Celeriac({ ...urls, logger: { info: () => undefined, warn: () => undefined, error: () => undefined, debug: () => undefined } });
  app.task('t.flushed', (i: number) => i);
  const worker = new Worker(app, { hostname: 'test@host', queues: ['celery'], concurrency: 1, prefetchMultiplier: 1, accept: ['json'] });
  const producer = new Celeriac(urls);
  const admin = new IORedis(server.url(0));
  try {
    await worker.start();
    await sleep(200); // idle in BRPOP, waiting.lua queued behind it
    await admin.script('FLUSH');
    for (let i = 0; i < 3; i++) expect(await (await producer.sendTask('t.flushed', [i])).get({ timeout: 10 })).toBe(i);
    const [loaded] = (await admin.script('EXISTS', WAITING_SHA)) as number[];
    expect(loaded).toBe(1);
  } finally {
    await worker.shutdown('warm');
    await worker.close();
    await producer.close();
    admin.disconnect();
    await server.stop();
  }
});
