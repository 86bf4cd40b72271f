/**
 * Celery's rpc:// result backend: a result is a message sent to the caller's reply_to queue with
 * correlation_id = task id (celery/backends/rpc.py). Nothing is stored server-side: a caller sees
 * states on its own reply queue, the worker only publishes.
 */
import { randomUUID } from 'node:crypto';
import amqp, { type Channel, type ChannelModel, type ConfirmChannel } from 'amqplib';
import { READY_STATES, type ResultBackend, type ResultMeta, type StoreContext } from './backend';
import { ResultWaiters } from './waiters';
import { parseJson, stringifyJson } from '../protocol/serializers';
import { amqpTargetFromUrl } from '../transports/amqp/url';

export interface RpcBackendOptions {
  /** The broker URL: rpc:// results travel over the broker. */
  brokerUrl: string;
  /** result_expires (seconds): the reply queue's x-expires, as Celery declares it. */
  expires?: number | null;
  /** result_persistent: delivery_mode 2 instead of Celery's default 1. */
  persistent?: boolean;
}

export class RpcBackend implements ResultBackend {
  readonly kind = 'rpc';
  private model: ChannelModel | null = null;
  private publishChannel: ConfirmChannel | null = null;
  private replyChannel: Channel | null = null;
  private replyQueueName: string | null = null;
  private readonly latest = new Map<string, ResultMeta>();
  private readonly waiters = new ResultWaiters();

  constructor(private readonly opts: RpcBackendOptions) {}

  async connect(): Promise<void> {
    const target = amqpTargetFromUrl(this.opts.brokerUrl);
    this.model = await amqp.connect(target.connect, target.socket);
    this.model.on('error', () => undefined);
    this.publishChannel = await this.model.createConfirmChannel();
  }

  /** The queue results for tasks this process sends come back on (Celery's app.thread_oid). */
  async replyQueue(): Promise<string> {
    if (this.replyQueueName) return this.replyQueueName;
    if (!this.model) throw new Error('rpc backend is not connected');
    const ch = await this.model.createChannel();
    const name = randomUUID();
    const args: Record<string, unknown> = {};
    if (this.opts.expires) args['x-expires'] = Math.round(this.opts.expires * 1000);
    await ch.assertQueue(name, { durable: true, autoDelete: true, arguments: args });
    await ch.consume(name, (msg) => {
      if (!msg) return;
      ch.ack(msg);
      let meta: ResultMeta;
      try {
        meta = parseJson(msg.content.toString('utf8')) as ResultMeta;
      } catch {
        return;
      }
      const id = msg.properties.correlationId ?? meta.task_id;
      if (!id) return;
      this.latest.set(id, meta);
      this.waiters.deliver(id, meta);
    });
    this.replyChannel = ch;
    this.replyQueueName = name;
    return name;
  }

  async store(meta: ResultMeta, context?: StoreContext): Promise<void> {
    // Celery sends nothing when the caller gave no reply_to (it could never be read).
    if (!context?.replyTo) return;
    const ch = this.publishChannel;
    if (!ch) throw new Error('rpc backend is not connected');
    const body = Buffer.from(stringifyJson(meta), 'utf8');
    await new Promise<void>((resolve, reject) => {
      ch.publish(
        '',
        context.replyTo!,
        body,
        {
          contentType: 'application/json',
          contentEncoding: 'utf-8',
          correlationId: context.correlationId ?? meta.task_id,
          deliveryMode: this.opts.persistent ? 2 : 1,
        },
        (err) => (err ? reject(err instanceof Error ? err : new Error(String(err))) : resolve()),
      );
    });
  }

  /** The last state seen on this process's reply queue (rpc keeps nothing server-side). */
  async get(taskId: string): Promise<ResultMeta | null> {
    return this.latest.get(taskId) ?? null;
  }

  async waitFor(taskId: string, timeoutMs = 0): Promise<ResultMeta> {
    await this.replyQueue();
    const seen = this.latest.get(taskId);
    if (seen && READY_STATES.has(seen.status)) return seen;
    return this.waiters.wait(taskId, timeoutMs);
  }

  async forget(taskId: string): Promise<void> {
    this.latest.delete(taskId);
  }

  async close(): Promise<void> {
    await this.replyChannel?.close().catch(() => undefined);
    await this.model?.close().catch(() => undefined);
    this.model = null;
  }
}
