// Fuzzing decode → validate (workers/protocol) with fast-check: 10,000 generated messages
// (tests/helpers/fuzzMessages.ts) and 2,000 Redis list payloads. Each either parses into a
// well-formed TaskRequest or is refused with a ContentError whose message says why — never a
// TypeError/RangeError from deep inside (those would be logged as nonsense, or crash a caller that
// only expects ContentError), never slow. Valid messages always parse. The inputs that once broke
// these rules are replayed from tests/fixtures/fuzz/. The worker side (dispatch, on a real Redis)
// is tests/integration/fuzz-message-path.test.ts.
// FUZZ_SEED=<n> replays a run (fast-check prints the seed and the shrunk input of a failure);
// FUZZ_RUNS=<n> runs more (or fewer) than 10,000.
import fs from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { parseTaskMessage, type TaskRequest } from '../../workers/protocol/message';
import { ContentError, stringifyJson } from '../../workers/protocol/serializers';
import { decodeEnvelope, EnvelopeError, envelopePriority, envelopeToMessage, type VirtualEnvelope } from '../../workers/transports/virtualEnvelope';
import type { BrokerMessage } from '../../workers/transports/transport';
import { deliveryTagOf } from '../../workers/transports/redis/redisTransport';
import { FUZZ_TASK, fuzzCase, rawPayload } from '../helpers/fuzzMessages';
import { fixtureMessages, type FuzzFixture } from '../fixtures/fuzz/fixtures';

const seed = process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : undefined;
const RUNS = process.env.FUZZ_RUNS ? Number(process.env.FUZZ_RUNS) : 10_000;
/** Longest a single message may take to decode and validate (a 64 MB zlib bomb is the slowest). */
const MAX_MS = 2_000;

function isValidDate(d: Date | null): boolean {
  return d === null || (d instanceof Date && !Number.isNaN(d.getTime()));
}

/** What the worker relies on in a request that passed validation. */
function expectWellFormed(r: TaskRequest): void {
  expect(typeof r.id === 'string' && r.id.length > 0).toBe(true);
  expect(typeof r.task === 'string' && r.task.length > 0).toBe(true);
  expect(Array.isArray(r.args)).toBe(true);
  expect(typeof r.kwargs === 'object' && r.kwargs !== null && !Array.isArray(r.kwargs)).toBe(true);
  expect(isValidDate(r.eta) && isValidDate(r.expires)).toBe(true);
  expect(Number.isFinite(r.retries)).toBe(true);
  for (const t of r.timeLimit) expect(t === null || Number.isFinite(t)).toBe(true);
  expect(typeof r.argsrepr === 'string' && typeof r.kwargsrepr === 'string').toBe(true);
  expect(r.argsrepr.length + r.kwargsrepr.length).toBeLessThanOrEqual(2 * 1024 + 8);
  for (const v of [r.rootId, r.parentId, r.group, r.origin, r.shadow, r.replyTo, r.correlationId]) expect(v === null || typeof v === 'string').toBe(true);
  expect(typeof r.ignoreResult).toBe('boolean');
}

/** Parse; a refusal must be a ContentError with a reason. Returns the request or the reason. */
function parseOrReason(message: BrokerMessage): TaskRequest | string {
  const t0 = performance.now();
  try {
    const request = parseTaskMessage(message);
    expectWellFormed(request);
    return request;
  } catch (err) {
    if (!(err instanceof ContentError)) throw new Error(`not a ContentError: ${(err as Error)?.name}: ${(err as Error)?.message}`, { cause: err });
    expect(err.message.trim().length).toBeGreaterThan(5);
    return err.message;
  } finally {
    expect(performance.now() - t0).toBeLessThan(MAX_MS);
  }
}

it('10,000 generated messages: each parses well-formed or is refused with a reason; valid ones parse', () => {
  const seen = new Map<string, number>();
  fc.assert(
    fc.property(fuzzCase(), (c) => {
      const kind = c.kind.split('/')[0]!;
      seen.set(kind, (seen.get(kind) ?? 0) + 1);
      const out = parseOrReason(c.message);
      if (c.expect === 'valid') {
        if (typeof out === 'string') throw new Error(`valid message refused: ${out}`);
        expect(out.task).toBe(FUZZ_TASK);
      }
    }),
    { numRuns: RUNS, seed },
  );
  // Every category was exercised (a generator that silently stopped producing one would not be).
  for (const kind of ['valid', 'random-bytes', 'truncated', 'wrong-shape', 'bad-eta', 'bad-expires', 'bad-headers', 'content-type', 'compression', 'bomb', 'huge', 'protocol1']) {
    expect([kind, seen.get(kind) ?? 0]).toEqual([kind, expect.any(Number)]);
    expect(seen.get(kind) ?? 0).toBeGreaterThan(0);
  }
}, 600_000);

it('2,000 Redis list payloads: an envelope or an EnvelopeError, then a request or a ContentError', () => {
  fc.assert(
    fc.property(rawPayload(), (raw) => {
      let message: BrokerMessage;
      let envelope: VirtualEnvelope;
      try {
        envelope = decodeEnvelope(raw);
        message = envelopeToMessage(envelope);
      } catch (err) {
        if (!(err instanceof EnvelopeError)) throw new Error(`not an EnvelopeError: ${(err as Error).name}: ${(err as Error).message}`, { cause: err });
        return;
      }
      // Every restore of the message reads it: it must never throw.
      expect([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]).toContain(envelopePriority(envelope));
      parseOrReason(message);
    }),
    { numRuns: RUNS / 5, seed },
  );
}, 600_000);

it("envelopePriority: kombu's 0..9 clamp, and 0 for anything int() refuses (never a throw)", () => {
  const withPriority = (priority: unknown): VirtualEnvelope => decodeEnvelope(JSON.stringify({ body: '', headers: {}, properties: { delivery_tag: 't', priority } }));
  expect([3, '7', 12, -1, 4.9, true].map((p) => envelopePriority(withPriority(p)))).toEqual([3, 7, 9, 0, 4, 1]);
  expect([null, 'x', [5], { toString: 0 }].map((p) => envelopePriority(withPriority(p)))).toEqual([0, 0, 0, 0]);
});

it('deliveryTagOf finds the tag claim.lua recorded, whatever characters it holds', () => {
  fc.assert(
    fc.property(fc.string({ unit: 'binary', maxLength: 20 }), fc.jsonValue({ maxDepth: 2 }), (tag, headers) => {
      const payload = JSON.stringify({ body: '', headers, properties: { delivery_tag: tag } });
      expect(deliveryTagOf(payload)).toBe(tag);
      // Not JSON to JS (a hex number, which cjson takes): found by hand, escapes decoded.
      expect(deliveryTagOf(payload.replace(/^\{/, '{"n": 0x10, '))).toBe(tag);
    }),
    { numRuns: 1_000, seed },
  );
});

it('stringifyJson: a value too deep to write is a TypeError (stored as EncodeError), not a RangeError', () => {
  const deep = JSON.parse(`${'['.repeat(100_000)}${']'.repeat(100_000)}`) as unknown;
  expect(() => stringifyJson(deep)).toThrow(TypeError);
  expect(() => stringifyJson([2n ** 60n, deep])).toThrow(/too deeply nested/);
  expect(stringifyJson([2n ** 60n, { a: 1 }])).toBe('[1152921504606846976,{"a":1}]');
});

describe('regression fixtures (tests/fixtures/fuzz)', () => {
  const fixtures = fixtureMessages();
  it('has some', () => expect(fixtures.length).toBeGreaterThan(0));
  it.each(fixtures.map((f): [string, FuzzFixture] => [f.name, f]))('%s', (_name, f) => {
    if (f.expectTag !== undefined) expect(deliveryTagOf(f.raw!)).toBe(f.expectTag);
    let message: BrokerMessage;
    try {
      message = f.message ?? envelopeToMessage(decodeEnvelope(f.raw!));
    } catch (err) {
      expect(err).toBeInstanceOf(EnvelopeError);
      return;
    }
    const out = parseOrReason(message);
    if (f.expectReason) expect(out).toEqual(expect.stringMatching(new RegExp(f.expectReason)));
  });
});

it('the fixture folder only holds what fixtures.ts reads', () => {
  const dir = path.join(__dirname, '..', 'fixtures', 'fuzz');
  for (const file of fs.readdirSync(dir)) expect(file).toMatch(/\.(json|ts)$/);
});
