/**
 * Celery's rpc:// result backend: a result is a message sent to the caller's reply_to queue with
 * correlation_id = task id (celery/backends/rpc.py). Nothing is stored server-side: a caller sees
 * states on its own reply queue, the worker only publishes.
 *
 * Publisher confirms: a result whose task message is still unacknowledged (acks_late) is confirmed
 * by the broker before store() resolves, so the message is acked only once its result is known to
 * be at the broker. A result of a task whose message is already acked (early ack, the default) is
 * published without a confirm, as Celery does (kombu's confirm_publish is off by default), unless
 * confirmPublish is set: a confirm per result cost RabbitMQ and the worker about 15% of an rpc://
 * drain (#16).
 */
import { randomUUID } from 'node:crypto';
import type { Channel, ChannelModel, ConfirmChannel, Options } from 'amqplib';
import { READY_STATES, type ResultBackend, type ResultMeta, type StoreContext } from './backend';
import { ResultWaiters } from './waiters';
import { parseJson, stringifyJson } from '../protocol/serializers';
import { BrokerRing, connectAnyOf, failoverUrls, type FailoverStrategy } from '../transports/amqp/failover';
import { batchFrameWrites } from '../transports/amqp/writeBatch';

export interface RpcBackendOptions {
  /** The broker URL (or failover list): rpc:// results travel over the broker. */
  brokerUrl: string;
  /** Celery's broker_failover_strategy, for a failover list. */
  failoverStrategy?: FailoverStrategy;
  /** result_expires (seconds): the reply queue's x-expires, as Celery declares it. */
  expires?: number | null;
  /** result_persistent: delivery_mode 2 instead of Celery's default 1. */
  persistent?: boolean;
  /** Celery's broker_use_ssl (rpc results share the broker's connection settings). */
  ssl?: Record<string, unknown> | null;
  /** kombu's confirm_publish (broker_transport_options): confirm every result, acked task or not. */
  confirmPublish?: boolean;
}

const MAX_BACKOFF_MS = 30_000;

export class RpcBackend implements ResultBackend {
  readonly kind = 'rpc';
  private model: ChannelModel | null = null;
  private ready: Promise<void> = Promise.resolve();
  private closing = false;
  /** Results that something waits on (an unacked message, or confirmPublish). */
  private confirmChannel: ConfirmChannel | null = null;
  /** Results of tasks whose message is already acked: nothing waits on them. */
  private plainChannel: Channel | null = null;
  private replyChannel: Channel | null = null;
  private replyQueueName: string | null = null;
  private readonly latest = new Map<string, ResultMeta>();
  private readonly waiters = new ResultWaiters();

  private readonly ring: BrokerRing;

  constructor(private readonly opts: RpcBackendOptions) {
    this.ring = new BrokerRing(failoverUrls(opts.brokerUrl), opts.failoverStrategy);
  }

  async connect(): Promise<void> {
    this.ready = this.open();
    await this.ready;
  }

  /** Connect, and after a broker restart reconnect (backoff + jitter) and re-attach the reply queue. */
  private async open(): Promise<void> {
    const { model } = await connectAnyOf(this.ring, 60, this.opts.ssl ?? {});
    model.on('error', () => undefined);
    model.on('close', () => {
      if (this.closing || this.model !== model) return;
      this.model = null;
      this.confirmChannel = null;
      this.plainChannel = null;
      this.ready = this.reconnect();
    });
    this.model = model;
    batchFrameWrites(model);
    this.confirmChannel = await model.createConfirmChannel();
    this.confirmChannel.on('error', () => undefined);
    this.plainChannel = await model.createChannel();
    this.plainChannel.on('error', () => undefined);
    if (this.replyQueueName) await this.attachReplyQueue(this.replyQueueName);
  }

  private async reconnect(): Promise<void> {
    for (let attempt = 0; !this.closing; attempt++) {
      try {
        await this.open();
        return;
      } catch {
        const base = Math.min(MAX_BACKOFF_MS, 200 * 2 ** Math.min(attempt, 8));
        await new Promise((r) => setTimeout(r, base / 2 + Math.random() * (base / 2)));
      }
    }
  }

  /** The queue results for tasks this process sends come back on (Celery's app.thread_oid). */
  async replyQueue(): Promise<string> {
    await this.ready;
    if (this.replyQueueName) return this.replyQueueName;
    const name = randomUUID();
    await this.attachReplyQueue(name);
    this.replyQueueName = name;
    return name;
  }

  /** Declare (auto_delete: it goes with our connection, so again after a reconnect) and consume. */
  private async attachReplyQueue(name: string): Promise<void> {
    if (!this.model) throw new Error('rpc backend is not connected');
    const ch = await this.model.createChannel();
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
  }

  async store(meta: ResultMeta, context?: StoreContext): Promise<void> {
    // Celery sends nothing when the caller gave no reply_to (it could never be read).
    const replyTo = context?.replyTo;
    if (!replyTo) return;
    const body = Buffer.from(stringifyJson(meta), 'utf8');
    const options: Options.Publish = {
      contentType: 'application/json',
      contentEncoding: 'utf-8',
      correlationId: context.correlationId ?? meta.task_id,
      deliveryMode: this.opts.persistent ? 2 : 1,
    };
    const confirm = this.opts.confirmPublish === true || context.messageAcked !== true;
    // During a broker outage results wait for the reconnect instead of failing the task; a
    // confirmed publish caught by the connection closing is sent again on the next one.
    for (let attempt = 1; ; attempt++) {
      await this.ready;
      try {
        if (confirm) await this.publishConfirmed(replyTo, body, options);
        else await this.publishPlain(replyTo, body, options);
        return;
      } catch (err) {
        if (attempt >= 5 || this.closing) throw err;
        await new Promise((r) => setTimeout(r, 100 * attempt));
      }
    }
  }

  private publishConfirmed(queue: string, body: Buffer, options: Options.Publish): Promise<void> {
    const ch = this.confirmChannel;
    if (!ch) return Promise.reject(new Error('rpc backend is not connected'));
    return new Promise<void>((resolve, reject) => {
      ch.publish('', queue, body, options, (err) => (err ? reject(err instanceof Error ? err : new Error(String(err))) : resolve()));
    });
  }

  /** Written to the connection, no confirm; waits only while the channel's write buffer is full. */
  private publishPlain(queue: string, body: Buffer, options: Options.Publish): Promise<void> | undefined {
    const ch = this.plainChannel;
    if (!ch) return Promise.reject(new Error('rpc backend is not connected'));
    if (ch.publish('', queue, body, options)) return undefined;
    return new Promise<void>((resolve) => {
      const done = (): void => {
        ch.off('drain', done);
        ch.off('close', done);
        resolve();
      };
      ch.on('drain', done);
      ch.on('close', done);
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
    this.closing = true;
    await this.replyChannel?.close().catch(() => undefined);
    await this.model?.close().catch(() => undefined);
    this.model = null;
  }
}
