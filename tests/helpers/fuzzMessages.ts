/**
 * Generators (fast-check) of hostile task messages for the message-path fuzz tests
 * (tests/unit/fuzz-protocol.test.ts: decode + validate; tests/integration/fuzz-message-path.test.ts:
 * through a Worker on a real Redis). Each case is a broker message plus what must become of it:
 *   'valid'  a well-formed message for FUZZ_TASK: must run to SUCCESS;
 *   'any'    anything (random bytes, truncated bodies, wrong shapes, bad headers, invalid dates,
 *            unknown content types/encodings/compressions, zlib bombs, huge and deep args): may
 *            be rejected with a reason, run, be discarded as expired, or be held for its ETA —
 *            never crash or wedge anything.
 * rawPayload() makes strings for a Redis queue list that are not (quite) kombu envelopes.
 *
 *   fuzzCase(): fc.Arbitrary<FuzzCase>      one case, any category (weighted)
 *   validCase(): fc.Arbitrary<FuzzCase>     only valid ones
 *   rawPayload(): fc.Arbitrary<string>      Redis list garbage
 *   FUZZ_TASK                               the task name valid cases call (registered by the tests)
 */
import { deflateSync, gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { buildTaskMessage } from '../../workers/protocol/message';
import { encodeBody, type SerializerName } from '../../workers/protocol/serializers';
import type { BrokerMessage } from '../../workers/transports/transport';

export const FUZZ_TASK = 'fuzz.echo';

export interface FuzzCase {
  kind: string;
  message: BrokerMessage;
  expect: 'valid' | 'any';
}

const SERIALIZERS: SerializerName[] = ['json', 'msgpack', 'yaml'];
const CONTENT_TYPES = [
  'application/json', 'application/x-msgpack', 'application/x-yaml', 'application/x-python-serialize', 'pickle',
  'application/octet-stream', 'text/plain', '', 'APPLICATION/JSON', 'json', 'application/json; charset=utf-8', 'application/data',
];
const ENCODINGS = ['utf-8', 'binary', 'latin-1', 'base64', '', 'utf-16', 'gzip', 'x-unknown'];
const COMPRESSIONS = ['application/x-gzip', 'gzip', 'zlib', 'application/zlib', 'bzip2', 'application/x-lzma', 'zstd', 'brotli', 'ZLIB', ''];
const HEADER_KEYS = [
  'id', 'task', 'retries', 'timelimit', 'root_id', 'parent_id', 'group', 'group_index', 'argsrepr', 'kwargsrepr',
  'origin', 'ignore_result', 'shadow', 'compression', 'lang', 'stamps', 'eta', 'expires', 'replaced_task_nesting',
];

// ~64 KB each, over 64 MB once inflated (the decompression cap): built once, on first use.
let bombCache: { zlib: Buffer; gzip: Buffer } | null = null;
function bombs(): { zlib: Buffer; gzip: Buffer } {
  const zeros = Buffer.alloc(65 * 1024 * 1024);
  bombCache ??= { zlib: deflateSync(zeros, { level: 9 }), gzip: gzipSync(zeros, { level: 9 }) };
  return bombCache;
}

/** Argument values a Python producer could send (incl. ints beyond 2**53 and unicode). */
const argValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }),
  // Beyond 2**53, within msgpack's 64 bits (Python's msgpack refuses bigger ints too).
  fc.bigInt({ min: 2n ** 53n, max: 2n ** 63n - 1n }),
  fc.string({ unit: 'grapheme', maxLength: 40 }),
);

const serializer = fc.constantFrom(...SERIALIZERS);

/** A well-formed message for FUZZ_TASK, in any serializer, compressed or not. */
export function validCase(): fc.Arbitrary<FuzzCase> {
  return fc
    .record({
      args: fc.array(argValue, { maxLength: 5 }),
      kwargs: fc.dictionary(fc.string({ minLength: 1, maxLength: 8 }).filter((k) => k !== '__proto__'), argValue, { maxKeys: 3 }),
      serializer,
      compression: fc.boolean(),
    })
    .map(({ args, kwargs, serializer: s, compression }) => ({
      kind: `valid/${s}${compression ? '+zlib' : ''}`,
      message: buildTaskMessage(FUZZ_TASK, args, kwargs, { serializer: s, compression }).message,
      expect: 'valid' as const,
    }));
}

const base = (args: unknown[] = [1], s: SerializerName = 'json'): BrokerMessage => buildTaskMessage(FUZZ_TASK, args, {}, { serializer: s }).message;

const any = (kind: string, message: BrokerMessage): FuzzCase => ({ kind, message, expect: 'any' });

const randomBytes = fc.record({ bytes: fc.uint8Array({ maxLength: 300 }), type: fc.constantFrom(...CONTENT_TYPES) }).map(({ bytes, type }) =>
  any(`random-bytes/${type || 'none'}`, { ...base(), body: Buffer.from(bytes), contentType: type }),
);

const truncated = fc
  .record({ valid: validCase(), cut: fc.double({ min: 0, max: 1, noNaN: true }) })
  .map(({ valid, cut }) => {
    const m = valid.message;
    const raw = m.headers.compression ? deflateSync(Buffer.from('x')) : m.body;
    return any(`truncated/${m.contentType}`, { ...m, body: raw.subarray(0, Math.floor(raw.length * cut)) });
  });

const SHAPES: unknown[] = [null, 'str', 42, {}, [], [1], ['a', {}], [[], []], [{}, {}], [[], {}, 5], [[], {}, { callbacks: 5 }], [[], { a: 1 }, []], [[], 'kwargs']];
const wrongShape = fc
  .record({ body: fc.oneof(fc.constantFrom(...SHAPES), fc.jsonValue({ maxDepth: 4 })), s: serializer })
  .map(({ body, s }) => any(`wrong-shape/${s}`, { ...base(), ...encoded(body, s) }));

function encoded(value: unknown, s: SerializerName): Pick<BrokerMessage, 'body' | 'contentType' | 'contentEncoding'> {
  return encodeBody(value, s);
}

const BAD_DATES: unknown[] = [
  'not a date', '', 'NaN', '2024-13-45T99:99:99', '2024-02-30', '9999-12-31T23:59:59', '0000-00-00', 'tomorrow',
  '1970-01-01T00:00:00', '2000-01-01T00:00:00+25:00', 1e20, -1e20, 0, -1, 1.5, true, [], {}, [2024, 1, 1], { __type__: 'datetime' },
];
const badDates = fc
  .record({ field: fc.constantFrom('eta', 'expires'), value: fc.oneof(fc.constantFrom(...BAD_DATES), fc.jsonValue({ maxDepth: 2 }), fc.string()) })
  .map(({ field, value }) => {
    const m = base();
    return any(`bad-${field}`, { ...m, headers: { ...m.headers, [field]: value } });
  });

const badHeaders = fc
  .record({
    changes: fc.array(fc.tuple(fc.constantFrom(...HEADER_KEYS), fc.option(fc.jsonValue({ maxDepth: 3 }), { nil: undefined })), { minLength: 1, maxLength: 4 }),
    s: serializer,
  })
  .map(({ changes, s }) => {
    const m = base([1], s);
    const headers: Record<string, unknown> = { ...m.headers };
    for (const [k, v] of changes) {
      if (v === undefined) delete headers[k];
      else headers[k] = v;
    }
    return any(`bad-headers/${changes.map(([k]) => k).join(',')}`, { ...m, headers });
  });

const weirdEncoding = fc
  .record({
    type: fc.oneof(fc.constantFrom(...CONTENT_TYPES), fc.string({ maxLength: 30 })),
    encoding: fc.oneof(fc.constantFrom(...ENCODINGS), fc.string({ maxLength: 10 })),
  })
  .map(({ type, encoding }) => any(`content-type/${type}`, { ...base(), contentType: type, contentEncoding: encoding }));

const compression = fc
  .record({
    kind: fc.oneof(fc.constantFrom(...COMPRESSIONS), fc.string({ maxLength: 12 }), fc.jsonValue({ maxDepth: 1 })),
    body: fc.constantFrom('plain', 'compressed', 'random'),
    bytes: fc.uint8Array({ maxLength: 64 }),
  })
  .map(({ kind, body, bytes }) => {
    const m = base();
    const payload = body === 'compressed' ? deflateSync(m.body) : body === 'random' ? Buffer.from(bytes) : m.body;
    // A JSON kind may be an object String() cannot convert (a key named toString): label it as JSON.
    return any(`compression/${typeof kind === 'string' ? kind : JSON.stringify(kind)}/${body}`, { ...m, body: payload, headers: { ...m.headers, compression: kind } });
  });

/** Over the decompression cap once inflated (each costs ~50 ms of inflating: kept rare). */
const bomb = fc
  .record({ framing: fc.constantFrom('zlib', 'gzip'), kind: fc.constantFrom('application/x-gzip', 'gzip', 'zlib') })
  .map(({ framing, kind }) => {
    const m = base();
    return any(`bomb/${framing}`, { ...m, body: framing === 'zlib' ? bombs().zlib : bombs().gzip, headers: { ...m.headers, compression: kind } });
  });

/** Valid shapes with hostile sizes: deep nesting, long lists, long strings, many kwargs. */
const hugeOrDeep = fc
  .record({
    shape: fc.constantFrom('deep-list', 'deep-dict', 'long-list', 'long-string', 'many-kwargs', 'deep-kwargs'),
    n: fc.integer({ min: 1_000, max: 50_000 }),
    s: fc.constantFrom<SerializerName>('json', 'msgpack'),
  })
  .map(({ shape, n, s }) => {
    const m = base();
    if (shape === 'deep-list' || shape === 'deep-dict' || shape === 'deep-kwargs') {
      // Built as text: encoders (rightly) refuse to write values this deep.
      const deep = shape === 'deep-list' ? `${'['.repeat(n)}${']'.repeat(n)}` : `${'{"a":'.repeat(n)}1${'}'.repeat(n)}`;
      const text = shape === 'deep-kwargs' ? `[[], {"k": ${deep}}, {}]` : `[[${deep}], {}, {}]`;
      return any(`huge/${shape}/${n}`, { ...m, body: Buffer.from(text), contentType: 'application/json', contentEncoding: 'utf-8' });
    }
    const args = shape === 'long-list' ? [Array.from({ length: n * 2 }, (_, i) => i)] : shape === 'long-string' ? ['x'.repeat(n * 10)] : [];
    const kwargs = shape === 'many-kwargs' ? Object.fromEntries(Array.from({ length: n / 10 }, (_, i) => [`k${i}`, i])) : {};
    return any(`huge/${shape}/${n}`, { ...m, ...encoded([args, kwargs, {}], s) });
  });

/** Protocol 1 (no task header): the whole request in a body dict, with random fields. */
const protocol1 = fc
  .record({
    body: fc.record(
      {
        id: fc.oneof(fc.uuid(), fc.jsonValue({ maxDepth: 1 })),
        task: fc.oneof(fc.constant(FUZZ_TASK), fc.jsonValue({ maxDepth: 1 })),
        args: fc.jsonValue({ maxDepth: 2 }),
        kwargs: fc.jsonValue({ maxDepth: 2 }),
        eta: fc.constantFrom(...BAD_DATES),
        callbacks: fc.jsonValue({ maxDepth: 1 }),
      },
      { requiredKeys: [] },
    ),
    s: serializer,
  })
  .map(({ body, s }) => {
    const m = base();
    const headers = { ...m.headers };
    delete headers.task;
    return any(`protocol1/${s}`, { ...m, headers, ...encoded(body, s) });
  });

/** One case of any category; valid messages are one in five. */
export function fuzzCase(): fc.Arbitrary<FuzzCase> {
  return fc.oneof(
    { arbitrary: validCase(), weight: 20 },
    { arbitrary: randomBytes, weight: 10 },
    { arbitrary: truncated, weight: 10 },
    { arbitrary: wrongShape, weight: 10 },
    { arbitrary: badDates, weight: 10 },
    { arbitrary: badHeaders, weight: 15 },
    { arbitrary: weirdEncoding, weight: 8 },
    { arbitrary: compression, weight: 8 },
    { arbitrary: bomb, weight: 1 },
    { arbitrary: hugeOrDeep, weight: 1 },
    { arbitrary: protocol1, weight: 7 },
  );
}

/** Strings in a Redis queue list that are not (all) kombu envelopes. */
export function rawPayload(): fc.Arbitrary<string> {
  const tag = fc.oneof(fc.uuid(), fc.constantFrom('a"b', 'back\\slash', 'é', ''), fc.string({ maxLength: 10 }));
  const envelope = fc
    .record({
      tag,
      body: fc.oneof(fc.base64String({ maxLength: 40 }), fc.jsonValue({ maxDepth: 2 })),
      headers: fc.oneof(fc.constant({}), fc.jsonValue({ maxDepth: 2 })),
      contentType: fc.oneof(fc.constantFrom(...CONTENT_TYPES), fc.jsonValue({ maxDepth: 1 })),
      bodyEncoding: fc.oneof(fc.constantFrom('base64', 'utf-8', ''), fc.jsonValue({ maxDepth: 1 })),
      info: fc.oneof(fc.constant({ exchange: '', routing_key: 'celery' }), fc.jsonValue({ maxDepth: 2 })),
    })
    .map(({ tag: t, body, headers, contentType, bodyEncoding, info }) =>
      JSON.stringify({
        body,
        'content-encoding': 'utf-8',
        'content-type': contentType,
        headers,
        properties: { delivery_tag: t, body_encoding: bodyEncoding, delivery_info: info, priority: 0 },
      }),
    );
  return fc.oneof(
    fc.string({ maxLength: 80 }),
    fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)),
    fc.constantFrom('{"properties": {}}', '{"properties": {"delivery_tag": 5}}', '{"body": "e30=", "properties": null}', '[]', 'null', '{'),
    envelope,
  );
}
