/**
 * Which queues a worker declares, as Celery's app.amqp.Queues does: the task_queues entry of a
 * consumed name, else a "missing queue" (exchange and routing key named after the queue, direct),
 * with task_queue_max_priority added where a queue sets no x-max-priority.
 */
import type { QueueDeclaration } from '../transports/transport';
import type { QueueDefinition } from '../../config/types';

export interface QueuePolicy {
  definitions: readonly QueueDefinition[] | null;
  maxPriority: number | null;
  missingQueueType: 'classic' | 'quorum';
}

export function declarationFor(name: string, policy: QueuePolicy): QueueDeclaration {
  const def = policy.definitions?.find((q) => q.name === name);
  const args: Record<string, unknown> = { ...def?.queue_arguments };
  if (!def && policy.missingQueueType === 'quorum') args['x-queue-type'] = 'quorum';
  if (policy.maxPriority !== null && args['x-max-priority'] === undefined && args['x-queue-type'] !== 'quorum') {
    args['x-max-priority'] = policy.maxPriority;
  }
  return {
    name,
    exchange: def?.exchange ?? name,
    exchangeType: def?.exchange_type ?? 'direct',
    routingKey: def?.routing_key ?? name,
    durable: def?.durable ?? true,
    autoDelete: def?.auto_delete ?? false,
    arguments: args,
  };
}
