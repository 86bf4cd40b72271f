/**
 * Helpers for AmqpTransport: basic.publish properties from a BrokerMessage, the once-per-
 * connection declaration of broadcast exchanges (kombu's maybe_declare of Celery's `celeryev`),
 * and waiting for unconfirmed broadcasts before a close.
 */
import type { ChannelModel, ConfirmChannel, Options } from 'amqplib';
import type { BroadcastExchange, BrokerMessage } from '../transport';

/** AMQP basic properties as kombu sends them; delivery_mode defaults to persistent (2) like Celery's tasks. */
export function publishOptions(m: BrokerMessage): Options.Publish {
  const p = m.properties;
  return {
    contentType: m.contentType,
    contentEncoding: m.contentEncoding,
    headers: m.headers,
    correlationId: p.correlation_id,
    replyTo: p.reply_to,
    priority: typeof p.priority === 'number' ? p.priority : undefined,
    deliveryMode: typeof p.delivery_mode === 'number' ? p.delivery_mode : 2,
  };
}

interface Warner {
  warn(msg: string): void;
}

/** Per connection: a new connection (reconnect) declares again, as kombu's declared-entities cache does. */
const declared = new WeakMap<ChannelModel, Map<string, Promise<void>>>();

/** Declare `ex` once on this connection; concurrent first sends share the one declaration. */
export function ensureExchange(model: ChannelModel, ex: BroadcastExchange, logger?: Warner): Promise<void> {
  let known = declared.get(model);
  if (!known) declared.set(model, (known = new Map()));
  let done = known.get(ex.name);
  if (!done) {
    const table = known;
    done = declareExchange(model, ex, logger);
    table.set(ex.name, done);
    done.catch(() => table.delete(ex.name)); // try again on the next send
  }
  return done;
}

/**
 * On a channel of its own: an exchange that already exists with another type or flags fails with
 * PRECONDITION_FAILED, which closes the channel — that must not be the publish channel. Publishing
 * to the existing exchange still works, so that case is a warning.
 */
async function declareExchange(model: ChannelModel, ex: BroadcastExchange, logger?: Warner): Promise<void> {
  const ch = await model.createChannel();
  ch.on('error', () => undefined);
  try {
    await ch.assertExchange(ex.name, ex.type, { durable: ex.durable, autoDelete: ex.autoDelete ?? false });
  } catch (err) {
    if ((err as { code?: number }).code !== 406) throw err;
    logger?.warn(`exchange ${ex.name} exists with other flags than ${ex.type}/durable=${ex.durable}; publishing to it as it is (${(err as Error).message})`);
  } finally {
    await ch.close().catch(() => undefined);
  }
}

/**
 * Wait, at most `timeoutMs`, until the broker confirmed everything published on `ch`. Broadcasts
 * are not waited for when sent, so without this the last ones before a close (worker-offline)
 * are lost with the connection.
 */
export async function settlePublishes(ch: ConfirmChannel | null, timeoutMs: number): Promise<void> {
  if (!ch) return;
  let timer: NodeJS.Timeout | undefined;
  const gaveUp = new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)));
  await Promise.race([ch.waitForConfirms().catch(() => undefined), gaveUp]);
  clearTimeout(timer);
}
