// Fuzzing decode → validate → dispatch on a real Redis: 10,000 generated messages
// (tests/helpers/fuzzMessages.ts: random bytes, truncated and wrongly shaped bodies, bad headers and
// dates, unknown content types/encodings/compressions, zlib bombs, huge and deep args), 1,000 Redis
// list payloads that are not (quite) envelopes, the regression fixtures of tests/fixtures/fuzz, and
// 1,000 valid messages interleaved, all in one queue, consumed by an in-process Worker (-c 8, task
// events on). Invariants:
//   - no crash, no unhandled rejection or uncaught exception (jest fails the test on either one in
//     this process: tried with a deliberate Promise.reject), the event loop never blocked long;
//   - every message is accounted for, exactly once: rejected with a logged reason, dropped by the
//     transport with a logged reason, run, discarded as expired, refused as unregistered, or held
//     for a future eta — and Redis agrees (queue empty, only the held ones still unacked);
//   - every valid message ran once and has its SUCCESS result;
//   - afterwards the worker still runs new tasks at once.
// FUZZ_SEED=<n> replays a run, FUZZ_RUNS=<n> changes the 10,000. Redis dbs 124 (broker) and 125 (results).
import { monitorEventLoopDelay } from 'node:perf_hooks';
import fc from 'fast-check';
import { Celeriac, type AppLogger } from '../../workers/app/app';
import { Worker } from '../../workers/worker/worker';
import { WorkerEvents } from '../../workers/events';
import type { TaskRequest } from '../../workers/protocol/message';
import type { Delivery } from '../../workers/transports/transport';
import { encodeEnvelope } from '../../workers/transports/virtualEnvelope';
import { testRedisUrl } from '../helpers/env';
import { redisClient, type Redis } from '../helpers/redis';
import { FUZZ_TASK, fuzzCase, rawPayload, validCase } from '../helpers/fuzzMessages';
import { fixtureMessages } from '../fixtures/fuzz/fixtures';
import { metas, waitFor } from '../helpers/faults';

const BROKER_DB = 124;
const RESULTS_DB = 125;
const FUZZ = process.env.FUZZ_RUNS ? Number(process.env.FUZZ_RUNS) : 10_000;
const RAW = FUZZ / 10;
const VALID = FUZZ / 10;
const seed = process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : Date.now() % 2 ** 31;

let broker: Redis;
let results: Redis;

beforeAll(async () => {
  [broker, results] = [redisClient(BROKER_DB), redisClient(RESULTS_DB)];
  await Promise.all([broker.flushdb(), results.flushdb()]);
});

afterAll(async () => {
  await Promise.all([broker.quit(), results.quit()]);
});

/** The queue, as a list of payloads (LPUSH order) and what we know of each. */
function buildQueue(): { payloads: string[]; validIds: string[] } {
  const cases = fc.sample(fuzzCase(), { numRuns: FUZZ, seed });
  const valid = fc.sample(validCase(), { numRuns: VALID, seed: seed + 1 });
  const raw = fc.sample(rawPayload(), { numRuns: RAW, seed: seed + 2 });
  const envelope = (m: (typeof cases)[number]['message']): string => JSON.stringify(encodeEnvelope(m, '', 'celery'));
  const payloads: string[] = [];
  const validIds: string[] = [];
  cases.forEach((c, i) => {
    payloads.push(envelope(c.message));
    if (c.expect === 'valid') validIds.push(String(c.message.headers.id));
    // Interleaved: a known-good message every 10, a raw payload every 10.
    if (i % 10 === 0) {
      const v = valid[i / 10]!;
      payloads.push(envelope(v.message));
      validIds.push(String(v.message.headers.id));
      payloads.push(raw[i / 10]!);
    }
  });
  for (const f of fixtureMessages()) payloads.push(f.raw ?? envelope(f.message!));
  return { payloads, validIds };
}

it(`${FUZZ + RAW + VALID} hostile and valid messages through a Worker on Redis: each accounted for, valid ones all run`, async () => {
  const logs: string[] = [];
  const logger: AppLogger = {
    isLevelEnabled: (level) => level !== 'debug',
    info: (m) => void logs.push(`INFO ${m}`),
    warn: (m) => void logs.push(`WARN ${m}`),
    error: (m) => void logs.push(`ERROR ${m}`),
    debug: () => undefined,
  };
  const app = new Celeriac({ brokerUrl: testRedisUrl(BROKER_DB), resultBackend: testRedisUrl(RESULTS_DB), logger });
  // Echoes its arguments: the result path gets the generated values too (BigInts, deep, huge).
  app.task(FUZZ_TASK, (...args: unknown[]) => args);
  const worker = new Worker(app, { hostname: 'fuzz@host', queues: ['celery'], concurrency: 8, prefetchMultiplier: 4, accept: ['json', 'msgpack', 'yaml'] });
  const events = new WorkerEvents(worker, { taskEvents: true, heartbeat: false });

  const outcome = { rejected: 0, unregistered: 0, expired: 0, succeeded: 0, failed: 0 };
  const reasons: string[] = [];
  const succeededIds = new Map<string, number>();
  worker.on('task-rejected', (p: { delivery?: Delivery; reason?: string }) => {
    outcome.rejected++;
    reasons.push(p.reason ?? '');
  });
  worker.on('task-revoked', (p: { expired?: boolean }) => void (p.expired ? outcome.expired++ : undefined));
  worker.on('task-failed', (p: { exception?: string }) => void (/^NotRegistered/.test(p.exception ?? '') ? outcome.unregistered++ : outcome.failed++));
  worker.on('task-succeeded', (p: { request: TaskRequest }) => {
    outcome.succeeded++;
    succeededIds.set(p.request.id, (succeededIds.get(p.request.id) ?? 0) + 1);
  });

  const lag = monitorEventLoopDelay({ resolution: 20 });
  lag.enable();
  const { payloads, validIds } = buildQueue();
  await worker.start();
  try {
    // Pushed while the worker consumes: a stream, not a backlog read at start.
    for (let i = 0; i < payloads.length; i += 500) await broker.lpush('celery', ...payloads.slice(i, i + 500));
    const scheduled = (): number => worker.controlRequests().filter((r) => r.state === 'scheduled').length;
    const drained = async (): Promise<boolean> =>
      (await broker.llen('celery')) === 0 && worker.activeCount === 0 && worker.reservedCount === scheduled() && (await broker.hlen('unacked')) === scheduled();
    await waitFor(drained, 60_000, 'every message to be settled').catch(async (err: Error) => {
      const heldTags = new Set(worker.controlRequests().map((r) => r.delivery.deliveryTag));
      const stray = Object.entries(await broker.hgetall('unacked')).filter(([tag]) => !heldTags.has(tag)).map(([tag, v]) => `${JSON.stringify(tag)}: ${v.slice(0, 300)}`);
      const state = { queue: await broker.llen('celery'), unacked: await broker.hlen('unacked'), active: worker.activeCount, reserved: worker.reservedCount, scheduled: scheduled(), stray };
      throw new Error(`${err.message}: ${JSON.stringify(state)} (seed ${seed}); last log lines:\n${logs.slice(-30).join('\n')}`, { cause: err });
    });
    lag.disable();

    const dropped = logs.filter((l) => /^ERROR dropped a (non-message|malformed envelope)/.test(l)).length;
    const held = scheduled();
    const accounted = outcome.rejected + dropped + outcome.unregistered + outcome.expired + outcome.succeeded + outcome.failed + held;
    const summary = { seed, payloads: payloads.length, ...outcome, dropped, held, accounted };
    // One outcome per message: nothing lost, nothing counted twice.
    expect(summary).toEqual({ ...summary, accounted: payloads.length });
    // Each rejection has a reason, in the event and in the log.
    expect(reasons.filter((r) => r.trim().length < 5)).toEqual([]);
    expect(logs.filter((l) => /^ERROR Received invalid task message from celery: .+\. The message has been rejected\.$/s.test(l))).toHaveLength(outcome.rejected);
    // Every task that ran got to an outcome: none died between running and storing its result
    // (a result too deep to encode is an EncodeError FAILURE, see tests/fixtures/fuzz).
    expect(logs.filter((l) => /could not be completed/.test(l))).toEqual([]);
    const deep = await metas(results, ['5b0e2f1e-7d63-4f0e-9a53-3c2f4f0e8d11']);
    expect(deep[0]).toMatchObject({ status: 'FAILURE', result: { exc_type: 'EncodeError' } });

    // Every valid message ran exactly once and its result is SUCCESS.
    expect(validIds.filter((id) => succeededIds.get(id) !== 1)).toEqual([]);
    const docs = await metas(results, validIds);
    expect(validIds.filter((_, i) => docs[i]?.status !== 'SUCCESS')).toEqual([]);

    // Never wedged: no single message held the event loop for long.
    expect(lag.max / 1e6).toBeLessThan(2_000);

    // And still working: new tasks run at once.
    const producer = new Celeriac({ brokerUrl: testRedisUrl(BROKER_DB), resultBackend: testRedisUrl(RESULTS_DB) });
    try {
      const after = await Promise.all(Array.from({ length: 20 }, (_, i) => producer.sendTask(FUZZ_TASK, [i])));
      expect(await Promise.all(after.map((r) => r.get({ timeout: 10 })))).toEqual(Array.from({ length: 20 }, (_, i) => [i]));
    } finally {
      await producer.close();
    }
  } finally {
    lag.disable();
    events.close();
    await worker.shutdown('warm');
    await worker.close();
  }
}, 180_000);
