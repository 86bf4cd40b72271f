/**
 * kombu's pidbox Mailbox as Celery configures it (kombu/pidbox.py, celery/app/control.py): the
 * names, flags and message shapes of Celery's remote control, so `celery inspect` / `celery
 * control` (and app.control) reach a Celeriac worker like a Python one.
 *
 *   request  -> exchange `celery.pidbox` (fanout, non-durable), body {method, arguments,
 *               destination, pattern, matcher[, ticket, reply_to: {exchange, routing_key}]},
 *               header clock
 *   node     <- queue `<hostname>.celery.pidbox` (exclusive, auto-delete, x-expires 10 s,
 *               x-message-ttl 300 s); on Redis a PUB/SUB subscription to the exchange's channel
 *   reply    -> exchange `reply.celery.pidbox` (direct, non-durable), routing key
 *               reply_to.routing_key, body {<hostname>: <result>}, headers {ticket, clock}
 */
import type { BroadcastExchange, BrokerMessage } from '../transports/transport';

/** Celery's control_exchange default. */
export const CONTROL_NAMESPACE = 'celery';

/** Mailbox._get_exchange: Exchange('celery.pidbox', type='fanout', durable=False). */
export const PIDBOX_EXCHANGE: BroadcastExchange = { name: `${CONTROL_NAMESPACE}.pidbox`, type: 'fanout', durable: false, autoDelete: false };

/** Mailbox._get_reply_exchange: Exchange('reply.celery.pidbox', type='direct', durable=False). */
export const REPLY_EXCHANGE: BroadcastExchange = { name: `reply.${CONTROL_NAMESPACE}.pidbox`, type: 'direct', durable: false, autoDelete: false };

/** control_queue_expires (10.0 s) and control_queue_ttl (300.0 s), as kombu's Queue turns them into AMQP arguments. */
export const NODE_QUEUE_ARGUMENTS: Readonly<Record<string, unknown>> = { 'x-expires': 10_000, 'x-message-ttl': 300_000 };

/** Mailbox.get_queue: `<hostname>.celery.pidbox`. */
export function nodeQueueName(hostname: string): string {
  return `${hostname}.${CONTROL_NAMESPACE}.pidbox`;
}

export interface ControlRequest {
  method: string;
  arguments: Record<string, unknown>;
  destination: string[] | null;
  pattern: string | null;
  matcher: string | null;
  ticket: string | null;
  replyTo: { exchange: string; routing_key: string } | null;
  clock: number;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Decode a pidbox message (Mailbox.accept is json). Throws on anything else. */
export function parseControlRequest(message: BrokerMessage): ControlRequest {
  if (message.contentType !== 'application/json') throw new Error(`unsupported content type ${message.contentType}`);
  const body: unknown = JSON.parse(message.body.toString('utf8'));
  if (!isRecord(body) || typeof body.method !== 'string') throw new Error('not a control message (no method)');
  const replyTo = isRecord(body.reply_to) && typeof body.reply_to.exchange === 'string' && typeof body.reply_to.routing_key === 'string'
    ? { exchange: body.reply_to.exchange, routing_key: body.reply_to.routing_key }
    : null;
  const destination = Array.isArray(body.destination) ? body.destination.map(String) : null;
  return {
    method: body.method,
    arguments: isRecord(body.arguments) ? body.arguments : {},
    destination,
    pattern: typeof body.pattern === 'string' ? body.pattern : null,
    matcher: typeof body.matcher === 'string' ? body.matcher : null,
    ticket: typeof body.ticket === 'string' ? body.ticket : null,
    replyTo,
    clock: Number(message.headers.clock ?? 0) || 0,
  };
}

/** kombu.matcher.match: 'glob' (fnmatch) or 'pcre' (re.match, anchored at the start). */
function matches(hostname: string, pattern: string, matcher: string): boolean {
  if (matcher === 'pcre') {
    try {
      return new RegExp(`^(?:${pattern})`).test(hostname);
    } catch {
      return false;
    }
  }
  if (matcher !== 'glob') return false;
  const re = pattern.replace(/[.+^${}()|\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${re}$`).test(hostname);
}

/** Node.handle_message: destination list, else pattern+matcher, else everyone. */
export function isForNode(req: ControlRequest, hostname: string): boolean {
  if (req.destination && req.destination.length) return req.destination.includes(hostname);
  if (req.pattern && req.matcher) return matches(hostname, req.pattern, req.matcher);
  return true;
}

/** Mailbox._publish_reply's message: json body {hostname: reply}, headers ticket and clock, transient. */
export function replyMessage(hostname: string, reply: unknown, ticket: string | null, clock: number): BrokerMessage {
  return {
    body: Buffer.from(JSON.stringify({ [hostname]: reply ?? null }), 'utf8'),
    contentType: 'application/json',
    contentEncoding: 'utf-8',
    headers: { ticket, clock },
    properties: { delivery_mode: 1, priority: 0 },
  };
}
