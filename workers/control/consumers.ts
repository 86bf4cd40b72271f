/**
 * add_consumer / cancel_consumer (celery/worker/control.py): start or stop consuming one queue
 * while the worker runs. Celery replies before the consumer changes (call_soon); here the change
 * is made first, so a caller that got the reply can rely on it.
 */
import type { ControlContext, ControlHandler } from './commands';
import type { QueueDefinition } from '../../config/types';
import { declarationFor } from '../worker/queues';

const EXCHANGE_TYPES = ['direct', 'topic', 'fanout'] as const;
type ExchangeType = (typeof EXCHANGE_TYPES)[number];

/** A string argument, or undefined for None / absent / '' (Celery's `exchange or queue`). */
function optional(v: unknown): string | undefined {
  return v === undefined || v === null || v === '' ? undefined : String(v);
}

function queueName(args: Record<string, unknown>): string {
  const queue = optional(args.queue);
  if (!queue) throw Object.assign(new Error("missing 1 required positional argument: 'queue'"), { name: 'TypeError' });
  return queue;
}

/**
 * Celery's add_task_queue: a queue in task_queues is used as configured; any other is declared
 * with the exchange, type and routing key given (each defaults to the queue's name / 'direct',
 * as kombu's Queues.add_compat does), keeping the policy's arguments (max priority, quorum).
 */
function definitionFor(ctx: ControlContext, queue: string, args: Record<string, unknown>): QueueDefinition | undefined {
  const policy = ctx.worker.options.queuePolicy ?? { definitions: null, maxPriority: null, missingQueueType: 'classic' };
  if (policy.definitions?.some((q) => q.name === queue)) return undefined;
  const type = optional(args.exchange_type) ?? 'direct';
  if (!(EXCHANGE_TYPES as readonly string[]).includes(type)) {
    throw Object.assign(new Error(`exchange type ${type} is not supported (direct, topic or fanout)`), { name: 'ValueError' });
  }
  const base = declarationFor(queue, policy);
  return {
    name: queue,
    exchange: optional(args.exchange) ?? queue,
    exchange_type: type as ExchangeType,
    routing_key: optional(args.routing_key) ?? queue,
    queue_arguments: base.arguments,
    durable: base.durable,
    auto_delete: base.autoDelete,
  };
}

export const CONSUMER_COMMANDS: Readonly<Record<string, ControlHandler>> = {
  add_consumer: async (ctx, args) => {
    const queue = queueName(args);
    await ctx.worker.addConsumer(queue, definitionFor(ctx, queue, args));
    return { ok: `add consumer ${queue}` };
  },

  cancel_consumer: async (ctx, args) => {
    const queue = queueName(args);
    await ctx.worker.cancelConsumer(queue);
    return { ok: `no longer consuming from ${queue}` };
  },
};
