/**
 * Body codecs, as kombu's serialization registry names them. Pickle is recognised only to be
 * refused: deserializing it would let any producer run code in the worker.
 */
import { inflateSync, gunzipSync, deflateSync } from 'node:zlib';
import type { Packr } from 'msgpackr';
import { lazyModule } from '../lazy';

// Loaded on the first message that needs them: most workers only ever see JSON (issue #16).
const msgpackr = lazyModule<typeof import('msgpackr')>('msgpackr');
const yaml = lazyModule<typeof import('yaml')>('yaml');
const losslessJson = lazyModule<typeof import('lossless-json')>('lossless-json');

export type SerializerName = 'json' | 'msgpack' | 'yaml';

export const CONTENT_TYPES: Record<SerializerName, string> = {
  json: 'application/json',
  msgpack: 'application/x-msgpack',
  yaml: 'application/x-yaml',
};

const PICKLE = 'application/x-python-serialize';

/** The largest body we inflate: a zlib bomb fails here instead of eating the heap. */
export const MAX_DECOMPRESSED_BYTES = 64 * 1024 * 1024;

/** A message we will not decode; `reason` is logged, the message rejected without requeue. */
export class ContentError extends Error {
  override name = 'ContentError';
}

// useRecords:false keeps plain msgpack maps, which is what Python's msgpack writes and reads.
// int64AsType 'auto': integers beyond 2**53 arrive as BigInt instead of silently losing digits.
// msgpackr supports 'auto' at run time but its typings omit it.
let packrInstance: Packr | undefined;
const packr = (): Packr =>
  (packrInstance ??= new (msgpackr().Packr)({ useRecords: false, mapsAsObjects: true, int64AsType: 'auto' as 'bigint' }));

const SERIALIZER_BY_TYPE: Record<string, SerializerName> = {
  'application/json': 'json',
  json: 'json',
  'application/x-msgpack': 'msgpack',
  'application/msgpack': 'msgpack',
  msgpack: 'msgpack',
  'application/x-yaml': 'yaml',
  'application/yaml': 'yaml',
  yaml: 'yaml',
};

export function serializerFor(contentType: string): SerializerName | undefined {
  return SERIALIZER_BY_TYPE[contentType.toLowerCase()];
}

/** kombu/utils/json.py wraps non-JSON types as {"__type__": t, "__value__": v}. */
function reviveKombuType(_key: string, value: unknown): unknown {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return value;
  const obj = value as Record<string, unknown>;
  const keys = Object.keys(obj);
  if (keys.length !== 2 || !('__type__' in obj) || !('__value__' in obj)) return value;
  const v = obj.__value__;
  switch (obj.__type__) {
    case 'bytes':
      return Buffer.from(String(v), 'utf8');
    case 'base64':
      return Buffer.from(String(v), 'base64');
    default:
      // datetime, date, time, decimal, uuid: their ISO/text form is the useful JS value.
      return v;
  }
}

/** Python ints are unbounded: an integer JS cannot hold exactly becomes a BigInt. */
function parseNumber(literal: string): number | bigint {
  if (/^-?\d+$/.test(literal)) {
    const n = Number(literal);
    return Number.isSafeInteger(n) ? n : BigInt(literal);
  }
  return Number(literal);
}

/** 16+ digits in a row may be an integer beyond 2**53: only then pay for the lossless parser. */
const MAYBE_UNSAFE_INT = /\d{16}/;

export function parseJson(text: string): unknown {
  // The reviver costs a call per value; only pay it when a marker can be present.
  const reviver = text.includes('"__type__"') ? reviveKombuType : undefined;
  if (MAYBE_UNSAFE_INT.test(text)) return losslessJson().parse(text, reviver ?? null, parseNumber);
  return reviver ? JSON.parse(text, reviver) : JSON.parse(text);
}

/** JSON as kombu's encoder writes it: Buffers as bytes/base64 markers, Dates as datetime. */
function kombuReplacer(this: Record<string, unknown>, key: string, v: unknown): unknown {
  const raw = this[key];
  if (raw instanceof Date) return { __type__: 'datetime', __value__: raw.toISOString() };
  if (Buffer.isBuffer(raw)) return { __type__: 'base64', __value__: raw.toString('base64') };
  return v;
}

export function stringifyJson(value: unknown): string {
  try {
    return writeJson(value);
  } catch (err) {
    // Too deep for the (recursive) writers: a value that cannot be encoded, as a cycle is (both
    // TypeErrors, which callers storing a result turn into an EncodeError FAILURE). As a RangeError
    // it escaped them: the task's result was never stored (and an acks_late one was requeued forever).
    // By name: the overflow may be raised in another realm's code (node:buffer under jest's vm).
    if ((err as Error)?.name === 'RangeError') throw new TypeError(`value is too deeply nested to encode as JSON (${(err as Error).message})`, { cause: err });
    throw err;
  }
}

/**
 * True when native JSON.stringify writes `value` exactly as it would with kombuReplacer: only
 * primitives, arrays and plain objects without toJSON (no Date, Buffer, BigInt, class instance),
 * within a small size. A replacer is a call from C++ into JS per value; most results (every
 * stored meta document) need none, and skipping it saved ~3% of a busy worker's main thread (#16).
 */
function isPlainJson(value: unknown, budget = { nodes: 256 }, depth = 0): boolean {
  if (value === null) return true;
  switch (typeof value) {
    case 'string':
    case 'number':
    case 'boolean':
    case 'undefined':
      return true;
    case 'object':
      break;
    default:
      return false;
  }
  if (depth > 16 || --budget.nodes < 0) return false;
  if (Array.isArray(value)) {
    for (const item of value) if (!isPlainJson(item, budget, depth + 1)) return false;
    return true;
  }
  const proto: unknown = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return false;
  const record = value as Record<string, unknown>;
  if ('toJSON' in record) return false;
  for (const key in record) if (!isPlainJson(record[key], budget, depth + 1)) return false;
  return true;
}

function writeJson(value: unknown): string {
  if (isPlainJson(value)) return JSON.stringify(value);
  try {
    return JSON.stringify(value, kombuReplacer);
  } catch (err) {
    // Native JSON cannot write a BigInt; the lossless writer prints its digits (a Python int).
    if (!(err instanceof TypeError) || !/BigInt/i.test(err.message)) throw err;
    return losslessJson().stringify(value, kombuReplacer) ?? 'null';
  }
}

export function decompress(body: Buffer, compression: unknown): Buffer {
  if (compression === undefined || compression === null || compression === '') return body;
  // kombu sends a string; anything else (an object with a hostile toString, an array) is refused
  // without being converted, since String() of such a value can itself throw.
  if (typeof compression !== 'string') {
    throw new ContentError(`compression header must be a string, got ${Array.isArray(compression) ? 'an array' : typeof compression}`);
  }
  const kind = compression.toLowerCase();
  const opts = { maxOutputLength: MAX_DECOMPRESSED_BYTES };
  try {
    // kombu registers zlib under 'application/x-gzip' (and aliases gzip/zlib): accept both framings.
    if (['application/x-gzip', 'gzip', 'zlib', 'application/zlib', 'application/gzip'].includes(kind)) {
      const isGzip = body.length > 1 && body[0] === 0x1f && body[1] === 0x8b;
      return isGzip ? gunzipSync(body, opts) : inflateSync(body, opts);
    }
  } catch (err) {
    throw new ContentError(`cannot decompress ${kind} body: ${(err as Error).message}`);
  }
  throw new ContentError(`unsupported compression ${JSON.stringify(kind)}`);
}

export function compress(body: Buffer): { body: Buffer; compression: string } {
  return { body: deflateSync(body), compression: 'application/x-gzip' };
}

/**
 * Decode a message body per its content type; throws ContentError with the reason. contentType is
 * `unknown` on purpose: it comes from the producer as is (a Redis envelope's "content-type" can be a
 * number or an object), and a non-string once surfaced as a TypeError from .toLowerCase().
 */
export function decodeBody(body: Buffer, contentType: unknown, accept?: ReadonlySet<SerializerName>): unknown {
  if (contentType !== undefined && contentType !== null && typeof contentType !== 'string') {
    throw new ContentError(`content type must be a string, got ${Array.isArray(contentType) ? 'array' : typeof contentType}`);
  }
  const type = (contentType || 'application/json').toLowerCase();
  if (type === PICKLE || type === 'pickle') {
    throw new ContentError('refusing to deserialize pickle (application/x-python-serialize): use json, msgpack or yaml');
  }
  const serializer = serializerFor(type);
  if (!serializer) throw new ContentError(`unknown content type ${JSON.stringify(contentType)}`);
  if (accept && !accept.has(serializer)) {
    throw new ContentError(`content type ${contentType} is not in accept_content`);
  }
  try {
    switch (serializer) {
      case 'json':
        return parseJson(body.toString('utf8'));
      case 'msgpack':
        return packr().unpack(body);
      case 'yaml':
        // The yaml package never constructs arbitrary objects: the core schema is a safe load.
        return yaml().parse(body.toString('utf8'), { schema: 'core', maxAliasCount: 100 });
    }
  } catch (err) {
    throw new ContentError(`malformed ${serializer} body: ${(err as Error).message}`);
  }
}

export function encodeBody(value: unknown, serializer: SerializerName): { body: Buffer; contentType: string; contentEncoding: string } {
  switch (serializer) {
    case 'json':
      return { body: Buffer.from(stringifyJson(value), 'utf8'), contentType: CONTENT_TYPES.json, contentEncoding: 'utf-8' };
    case 'msgpack':
      return { body: packr().pack(value), contentType: CONTENT_TYPES.msgpack, contentEncoding: 'binary' };
    case 'yaml':
      return { body: Buffer.from(yaml().stringify(value), 'utf8'), contentType: CONTENT_TYPES.yaml, contentEncoding: 'utf-8' };
  }
}
