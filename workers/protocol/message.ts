/**
 * Celery task message protocol: parse v2 (headers carry the task metadata, body is
 * [args, kwargs, embed]) and v1 (everything in the body dict), build v2 messages as Celery 5's
 * app.amqp.as_task_v2 does.
 */
import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import type { BrokerMessage } from '../transports/transport';
import { decodeBody, decompress, encodeBody, compress as compressBody, ContentError, type SerializerName } from './serializers';
import { argsRepr, pyRepr } from './repr';
import { numberOrNull } from './number';

export interface Embed {
  callbacks: unknown[] | null;
  errbacks: unknown[] | null;
  chain: unknown[] | null;
  chord: unknown | null;
  [key: string]: unknown;
}

/** Everything the worker needs from one task message, whatever its protocol version. */
export interface TaskRequest {
  protocol: 1 | 2;
  id: string;
  task: string;
  args: unknown[];
  kwargs: Record<string, unknown>;
  embed: Embed;
  retries: number;
  eta: Date | null;
  expires: Date | null;
  /**
   * eta/expires as Celery echoes them (inspect scheduled, events, a retry's message): Python's
   * isoformat() of the value the producer sent, microseconds kept (a Date holds milliseconds).
   */
  etaIso: string | null;
  expiresIso: string | null;
  rootId: string | null;
  parentId: string | null;
  group: string | null;
  groupIndex: number | null;
  /** [hard, soft] seconds, as Celery's timelimit header: [time_limit, soft_time_limit]. */
  timeLimit: [number | null, number | null];
  argsrepr: string;
  kwargsrepr: string;
  origin: string | null;
  ignoreResult: boolean;
  shadow: string | null;
  replyTo: string | null;
  correlationId: string | null;
  /** The raw headers, for anything not modelled above (stamps, custom headers). */
  headers: Record<string, unknown>;
  /**
   * The message's properties as kombu hands them to Celery (Celery's `request.properties`):
   * app_id, correlation_id, reply_to, priority, delivery_info (virtual transports), ...
   */
  properties: Record<string, unknown>;
}

/** Malformed, refused or unparseable message: logged with its reason and rejected. */
export class InvalidMessageError extends ContentError {
  override name = 'InvalidMessageError';
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !Buffer.isBuffer(v);
}

function optString(v: unknown, field: string): string | null {
  if (v === undefined || v === null) return null;
  if (typeof v !== 'string') throw new InvalidMessageError(`${field} must be a string, got ${typeof v}`);
  return v;
}

/** eta/expires: ISO 8601 strings (v2), or numbers (seconds since epoch) some producers send. */
function optDate(v: unknown, field: string): Date | null {
  if (v === undefined || v === null || v === '') return null;
  const d = typeof v === 'number' ? new Date(v * 1000) : typeof v === 'string' ? parseIsoDate(v) : null;
  if (!d || Number.isNaN(d.getTime())) throw new InvalidMessageError(`${field} is not a valid date: ${pyRepr(v)}`);
  return d;
}

/** Python isoformat without an offset means UTC for Celery (utc is the default). */
function parseIsoDate(s: string): Date {
  const hasZone = /(Z|[+-]\d\d:?\d\d)$/i.test(s);
  return new Date(hasZone ? s : `${s}Z`);
}

/**
 * req.eta.isoformat() in Celery: the datetime parsed from the message, made aware. The message's
 * own ISO string is kept when it has an offset (it came from isoformat() already, microseconds
 * and all); a naive one is UTC, as everywhere in Celeriac; a number goes through the Date.
 */
export function pyIsoOf(raw: unknown, parsed: Date | null): string | null {
  if (!parsed) return null;
  if (typeof raw === 'string' && /^\d{4}-\d\d-\d\dT/.test(raw)) {
    if (/[zZ]$/.test(raw)) return `${raw.slice(0, -1)}+00:00`;
    return /[+-]\d\d:?\d\d$/.test(raw) ? raw : `${raw}+00:00`;
  }
  return `${parsed.toISOString().slice(0, 23)}000+00:00`;
}

function parseTimeLimit(v: unknown): [number | null, number | null] {
  if (!Array.isArray(v)) return [null, null];
  return [numberOrNull(v[0]), numberOrNull(v[1])];
}

const EMPTY_EMBED: Embed = { callbacks: null, errbacks: null, chain: null, chord: null };

function parseV2(headers: Record<string, unknown>, body: unknown, message: BrokerMessage): TaskRequest {
  if (!Array.isArray(body) || body.length < 2) {
    throw new InvalidMessageError('protocol 2 body must be [args, kwargs, embed]');
  }
  const [args, kwargs, embed] = body as unknown[];
  if (!Array.isArray(args)) throw new InvalidMessageError('args must be a list');
  if (!isRecord(kwargs)) throw new InvalidMessageError('kwargs must be a dict');
  if (embed !== undefined && embed !== null && !isRecord(embed)) throw new InvalidMessageError('embed must be a dict');
  const id = optString(headers.id, 'id');
  const task = optString(headers.task, 'task');
  if (!id) throw new InvalidMessageError('message has no task id');
  if (!task) throw new InvalidMessageError('message has no task name');
  const eta = optDate(headers.eta, 'eta');
  const expires = optDate(headers.expires, 'expires');
  return {
    protocol: 2,
    id,
    task,
    args,
    kwargs,
    embed: { ...EMPTY_EMBED, ...(embed as Partial<Embed> | undefined) },
    retries: numberOrNull(headers.retries) ?? 0,
    eta,
    expires,
    etaIso: pyIsoOf(headers.eta, eta),
    expiresIso: pyIsoOf(headers.expires, expires),
    rootId: optString(headers.root_id, 'root_id'),
    parentId: optString(headers.parent_id, 'parent_id'),
    group: optString(headers.group, 'group'),
    groupIndex: numberOrNull(headers.group_index),
    timeLimit: parseTimeLimit(headers.timelimit),
    argsrepr: typeof headers.argsrepr === 'string' ? headers.argsrepr : argsRepr(args),
    kwargsrepr: typeof headers.kwargsrepr === 'string' ? headers.kwargsrepr : pyRepr(kwargs),
    origin: typeof headers.origin === 'string' ? headers.origin : null,
    ignoreResult: headers.ignore_result === true,
    shadow: typeof headers.shadow === 'string' ? headers.shadow : null,
    replyTo: typeof message.properties.reply_to === 'string' ? message.properties.reply_to : null,
    correlationId: typeof message.properties.correlation_id === 'string' ? message.properties.correlation_id : null,
    headers,
    properties: message.properties,
  };
}

function parseV1(body: unknown, message: BrokerMessage): TaskRequest {
  if (!isRecord(body)) throw new InvalidMessageError('message has no task header and its body is not a protocol 1 dict');
  const id = optString(body.id, 'id');
  const task = optString(body.task, 'task');
  if (!id || !task) throw new InvalidMessageError('protocol 1 body needs id and task');
  const args = body.args ?? [];
  const kwargs = body.kwargs ?? {};
  if (!Array.isArray(args)) throw new InvalidMessageError('args must be a list');
  if (!isRecord(kwargs)) throw new InvalidMessageError('kwargs must be a dict');
  const chord = body.chord ?? null;
  const eta = optDate(body.eta, 'eta');
  const expires = optDate(body.expires, 'expires');
  return {
    protocol: 1,
    id,
    task,
    args,
    kwargs,
    embed: {
      callbacks: Array.isArray(body.callbacks) ? body.callbacks : null,
      errbacks: Array.isArray(body.errbacks) ? body.errbacks : null,
      chain: null,
      chord,
    },
    retries: numberOrNull(body.retries) ?? 0,
    eta,
    expires,
    etaIso: pyIsoOf(body.eta, eta),
    expiresIso: pyIsoOf(body.expires, expires),
    rootId: null,
    parentId: null,
    group: optString(body.taskset, 'taskset'),
    groupIndex: null,
    timeLimit: parseTimeLimit(body.timelimit),
    argsrepr: argsRepr(args),
    kwargsrepr: pyRepr(kwargs),
    origin: null,
    ignoreResult: false,
    shadow: null,
    replyTo: typeof message.properties.reply_to === 'string' ? message.properties.reply_to : null,
    correlationId: typeof message.properties.correlation_id === 'string' ? message.properties.correlation_id : null,
    headers: message.headers,
    properties: message.properties,
  };
}

/** Decode and validate a broker message into a TaskRequest; throws ContentError subclasses. */
export function parseTaskMessage(message: BrokerMessage, accept?: ReadonlySet<SerializerName>): TaskRequest {
  const raw = decompress(message.body, message.headers.compression);
  const body = decodeBody(raw, message.contentType, accept);
  const headers = message.headers;
  return 'task' in headers && headers.task !== undefined ? parseV2(headers, body, message) : parseV1(body, message);
}

export interface TaskMessageOptions {
  id?: string;
  countdown?: number;
  eta?: Date | string | null;
  expires?: Date | string | number | null;
  retries?: number;
  priority?: number;
  rootId?: string | null;
  parentId?: string | null;
  group?: string | null;
  groupIndex?: number | null;
  /** [hard, soft] seconds: the timelimit header, [time_limit, soft_time_limit]. */
  timeLimit?: [number | null, number | null];
  ignoreResult?: boolean;
  shadow?: string | null;
  replyTo?: string;
  serializer?: SerializerName;
  compression?: boolean;
  embed?: Partial<Embed>;
  /** Extra headers merged over the standard ones (stamps, custom). */
  headers?: Record<string, unknown>;
}

/** Python's socket-style origin: "gen<pid>@<host>", as Celery's anon_nodename writes it. */
export const ORIGIN = `gen${process.pid}@${hostname()}`;

function toIso(d: Date | string | number, field: string): string {
  // A producer's own isoformat() string (a retry's expires) goes out as it came, microseconds kept.
  const date = d instanceof Date ? d : typeof d === 'number' ? new Date(Date.now() + d * 1000) : parseIsoDate(d);
  if (Number.isNaN(date.getTime())) throw new TypeError(`${field} is not a valid date`);
  if (typeof d === 'string') return pyIsoOf(d, date)!;
  return date.toISOString().replace('Z', '+00:00');
}

/** Build a protocol 2 task message, as Celery 5's AMQP.as_task_v2 does. */
export function buildTaskMessage(
  task: string,
  args: readonly unknown[] = [],
  kwargs: Record<string, unknown> = {},
  opts: TaskMessageOptions = {},
): { id: string; message: BrokerMessage } {
  const id = opts.id ?? randomUUID();
  let eta: string | null = null;
  if (opts.countdown !== undefined && opts.countdown !== null) eta = toIso(new Date(Date.now() + opts.countdown * 1000), 'countdown');
  else if (opts.eta) eta = toIso(opts.eta, 'eta');
  const expires = opts.expires === undefined || opts.expires === null ? null : toIso(opts.expires, 'expires');
  const headers: Record<string, unknown> = {
    lang: 'py',
    task,
    id,
    shadow: opts.shadow ?? null,
    eta,
    expires,
    group: opts.group ?? null,
    group_index: opts.groupIndex ?? null,
    retries: opts.retries ?? 0,
    timelimit: opts.timeLimit ?? [null, null],
    root_id: opts.rootId ?? id,
    parent_id: opts.parentId ?? null,
    argsrepr: argsRepr(args),
    kwargsrepr: pyRepr(kwargs),
    origin: ORIGIN,
    ignore_result: opts.ignoreResult ?? false,
    replaced_task_nesting: 0,
    stamped_headers: null,
    stamps: {},
    ...opts.headers,
  };
  const embed: Embed = { ...EMPTY_EMBED, ...opts.embed };
  const encoded = encodeBody([args, kwargs, embed], opts.serializer ?? 'json');
  let body = encoded.body;
  if (opts.compression) {
    const c = compressBody(body);
    body = c.body;
    headers.compression = c.compression;
  }
  const properties: Record<string, unknown> = {
    correlation_id: id,
    delivery_mode: 2,
    priority: opts.priority ?? 0,
  };
  if (opts.replyTo) properties.reply_to = opts.replyTo;
  return {
    id,
    message: { body, contentType: encoded.contentType, contentEncoding: encoded.contentEncoding, headers, properties },
  };
}

