/**
 * kombu's "virtual transport" envelope: the JSON document that the Redis and filesystem transports
 * store per message. Byte layout follows kombu.transport.virtual.Channel.prepare_message and
 * _inplace_augment_message: body base64-encoded, properties carrying body_encoding, delivery_tag,
 * delivery_info {exchange, routing_key} and priority.
 */
import { randomUUID } from 'node:crypto';
import { numberOrNull } from '../protocol/number';
import type { BrokerMessage, MessageProperties } from './transport';

export interface VirtualEnvelope {
  body: string;
  'content-encoding': string;
  'content-type': string;
  headers: Record<string, unknown>;
  properties: MessageProperties & {
    body_encoding: string;
    delivery_tag: string;
    delivery_info: { exchange: string; routing_key: string; [key: string]: unknown };
    priority: number;
  };
}

export class EnvelopeError extends Error {
  override name = 'EnvelopeError';
}

/** Build the envelope kombu would write for `message` published to exchange/routingKey. */
export function encodeEnvelope(message: BrokerMessage, exchange: string, routingKey: string): VirtualEnvelope {
  const { priority, ...rest } = message.properties;
  return {
    body: message.body.toString('base64'),
    'content-encoding': message.contentEncoding,
    'content-type': message.contentType,
    headers: message.headers,
    properties: {
      ...rest,
      delivery_info: { exchange, routing_key: routingKey },
      priority: typeof priority === 'number' ? priority : 0,
      body_encoding: 'base64',
      delivery_tag: randomUUID(),
    },
  };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Parse a stored envelope. Throws EnvelopeError with a reason when it is not one. */
export function decodeEnvelope(raw: string): VirtualEnvelope {
  let doc: unknown;
  try {
    doc = JSON.parse(raw);
  } catch (err) {
    throw new EnvelopeError(`envelope is not JSON: ${(err as Error).message}`);
  }
  if (!isRecord(doc)) throw new EnvelopeError('envelope is not a JSON object');
  const props = doc.properties;
  if (!isRecord(props)) throw new EnvelopeError('envelope has no properties object');
  if (typeof props.delivery_tag !== 'string') throw new EnvelopeError('envelope has no delivery_tag');
  if (doc.headers !== undefined && doc.headers !== null && !isRecord(doc.headers)) {
    throw new EnvelopeError('envelope headers is not an object');
  }
  if (!isRecord(props.delivery_info)) props.delivery_info = { exchange: '', routing_key: '' };
  if (doc.headers == null) doc.headers = {};
  return doc as unknown as VirtualEnvelope;
}

/** The broker message inside an envelope (body decoded per body_encoding). */
export function envelopeToMessage(env: VirtualEnvelope): BrokerMessage {
  const encoding = env.properties.body_encoding;
  const bodyText = typeof env.body === 'string' ? env.body : JSON.stringify(env.body ?? '');
  const body = encoding === 'base64' ? Buffer.from(bodyText, 'base64') : Buffer.from(bodyText, 'utf8');
  return {
    body,
    contentType: env['content-type'] ?? 'application/json',
    contentEncoding: env['content-encoding'] ?? 'utf-8',
    headers: env.headers,
    properties: env.properties,
  };
}

/** kombu's virtual Channel._get_message_priority (reverse=False): clamp to 0..9, default 0. */
export function envelopePriority(env: VirtualEnvelope): number {
  const p = numberOrNull(env.properties.priority);
  if (p === null) return 0;
  return Math.max(0, Math.min(9, Math.trunc(p)));
}
