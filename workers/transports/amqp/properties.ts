/**
 * A delivered message's AMQP basic properties under py-amqp's names, as kombu's pyamqp Message
 * hands them to Celery (`message.properties`, which a task reads as `self.request.properties`):
 * only the properties the message carries.
 */
import type { MessageProperties as AmqplibProperties } from 'amqplib';
import type { MessageProperties } from '../transport';

const PY_NAMES: [keyof AmqplibProperties, string][] = [
  ['contentType', 'content_type'],
  ['contentEncoding', 'content_encoding'],
  ['headers', 'application_headers'],
  ['deliveryMode', 'delivery_mode'],
  ['priority', 'priority'],
  ['correlationId', 'correlation_id'],
  ['replyTo', 'reply_to'],
  ['expiration', 'expiration'],
  ['messageId', 'message_id'],
  ['timestamp', 'timestamp'],
  ['type', 'type'],
  ['userId', 'user_id'],
  ['appId', 'app_id'],
  ['clusterId', 'cluster_id'],
];

export function pyAmqpProperties(p: AmqplibProperties): MessageProperties {
  const out: MessageProperties = {};
  for (const [js, py] of PY_NAMES) {
    const value: unknown = p[js];
    if (value !== undefined) out[py] = value;
  }
  // The worker reads a missing priority as 0 (kombu's default_priority).
  out.priority ??= 0;
  return out;
}
