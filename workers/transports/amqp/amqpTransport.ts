/**
 * AMQP 0-9-1 transport (RabbitMQ) on amqplib, matching what kombu/py-amqp do for Celery:
 * queues and exchanges declared with Celery's flags, basic.qos as Celery's consumer sets it
 * (global on RabbitMQ, per consumer for quorum queues), publisher confirms for everything sent
 * except broadcast monitoring events (Celery does not confirm those either),
 * and reconnection with exponential backoff and jitter that re-declares and resumes consuming.
 * Deliveries from a connection that died are never acked on the new one: RabbitMQ has already
 * put them back, so they come again. A failover list (`amqp://h1//;amqp://h2//`) is tried node by
 * node (failover.ts): on the loss of a node the worker moves to the next one, re-declares its
 * queues, exchanges and mailbox, and resumes consuming there.
 */
import type { Channel, ChannelModel, ConfirmChannel, ConsumeMessage } from 'amqplib';
import type { BroadcastExchange, BrokerMessage, Delivery, DeliveryHandler, PublishRequest, QueueCounts, QueueDeclaration, Transport } from '../transport';
import { maskUrl } from '../../log/mask';
import { BrokerRing, connectAnyOf, failoverUrls, type FailoverStrategy } from './failover';
import { batchFrameWrites } from './writeBatch';
import { ensureExchange, publishOptions, settlePublishes } from './broadcast';
import { pyAmqpProperties } from './properties';
import { NO_BROKER_API, unackedFromApi } from './management';

export interface AmqpLogger {
  info(msg: string): void;
  warn(msg: string): void;
  error(msg: string): void;
}

export interface AmqpTransportOptions {
  url: string;
  heartbeat?: number;
  /** Celery's broker_use_ssl for amqps://. */
  ssl?: Record<string, unknown> | null;
  logger?: AmqpLogger;
  /** Celery's broker_failover_strategy, for a ';'-separated list of URLs. */
  failoverStrategy?: FailoverStrategy;
  /** Flower's broker_api: the management API that queueCounts asks for unacked counts. */
  brokerApi?: string | null;
}

/** A delivery remembers the connection generation it came from. */
interface AmqpDelivery extends Delivery {
  generation: number;
  raw: ConsumeMessage;
}

const MAX_BACKOFF_MS = 30_000;

interface BroadcastListener {
  exchange: BroadcastExchange;
  queue: { name: string; arguments?: Record<string, unknown> };
  onMessage: (message: BrokerMessage) => void;
  channel: Channel | null;
}

export class AmqpTransport implements Transport {
  readonly kind = 'amqp';
  private model: ChannelModel | null = null;
  private consumeChannel: Channel | null = null;
  private publishChannel: ConfirmChannel | null = null;
  private generation = 0;
  private readonly declared = new Map<string, QueueDeclaration>();
  private consuming: { queues: string[]; onDelivery: DeliveryHandler } | null = null;
  /** Queue name -> its basic.consume tag on the current consume channel. */
  private consumerTags = new Map<string, string>();
  private prefetch = 0;
  private qosScheduled = false;
  private closing = false;
  private ready: Promise<void> | null = null;
  /** Quorum queues reject global QoS: once one is declared, prefetch is set per consumer. */
  private perConsumerQos = false;
  /** The node whose connection was lost last (a reconnect elsewhere logs it as a failover). */
  private lostUrl: string | null = null;
  /** Fanout listeners (remote control), set up again on every new connection. */
  private readonly listeners = new Set<BroadcastListener>();

  /** The failover list, standing on the node connected to (or to be tried next). */
  private readonly ring: BrokerRing;

  constructor(private readonly opts: AmqpTransportOptions) {
    this.ring = new BrokerRing(failoverUrls(opts.url), opts.failoverStrategy);
  }

  connectedUrl(): string {
    return this.ring.current;
  }

  /** The node connected to now (or tried next), for log lines. */
  private get where(): string {
    return maskUrl(this.ring.current);
  }

  async connect(): Promise<void> {
    this.ready = this.establish(false);
    await this.ready;
  }

  /** Open connection and channels, re-declare, resume consuming. Retries forever when reconnecting. */
  private async establish(retry: boolean): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        await this.open();
        const failover = retry && this.lostUrl !== null && this.lostUrl !== this.ring.current ? ` (failover from ${maskUrl(this.lostUrl)})` : '';
        if (attempt > 0 || retry) this.opts.logger?.info(`amqp ${this.where}: reconnected${failover}`);
        return;
      } catch (err) {
        if (!retry || this.closing) throw err;
        if (attempt === 0) this.opts.logger?.warn(`amqp ${this.where}: cannot connect (${(err as Error).message}); retrying with backoff`);
        const base = Math.min(MAX_BACKOFF_MS, 200 * 2 ** Math.min(attempt, 8));
        await new Promise((r) => setTimeout(r, base / 2 + Math.random() * (base / 2)));
      }
    }
  }

  private async open(): Promise<void> {
    const { model } = await connectAnyOf(this.ring, this.opts.heartbeat ?? 60, this.opts.ssl ?? {});
    const generation = ++this.generation;
    model.on('error', () => undefined); // 'close' follows; handled there
    model.on('close', () => this.onConnectionLost(generation));
    this.model = model;
    batchFrameWrites(model);
    try {
      await this.setUp(model, generation);
    } catch (err) {
      // Half set up (say the node is shutting down, or a queue has no leader yet): drop this
      // connection quietly (its close is no loss to report) and let the caller try again.
      this.generation++;
      this.model = null;
      this.consumeChannel = null;
      this.publishChannel = null;
      await model.close().catch(() => undefined);
      throw err;
    }
  }

  /** Channels, declarations, QoS, consumers and mailbox listeners on a fresh connection. */
  private async setUp(model: ChannelModel, generation: number): Promise<void> {
    this.publishChannel = await model.createConfirmChannel();
    this.publishChannel.on('error', () => undefined);
    this.consumeChannel = await model.createChannel();
    // A channel closed by the broker (e.g. consumer_timeout, a PRECONDITION_FAILED) takes the
    // connection's work down with it: start over on a fresh connection.
    this.consumeChannel.on('error', (err: Error) => this.opts.logger?.warn(`amqp channel error: ${err.message}`));
    this.consumeChannel.on('close', () => {
      if (generation === this.generation && !this.closing) void model.close().catch(() => undefined);
    });
    for (const q of this.declared.values()) await this.declareOn(model, q);
    await this.applyQos();
    if (this.consuming) await this.startConsumers(this.consuming.queues, this.consuming.onDelivery);
    for (const l of this.listeners) await this.listenOn(model, l);
  }

  private onConnectionLost(generation: number): void {
    if (generation !== this.generation || this.closing) return;
    this.lostUrl = this.ring.current;
    this.opts.logger?.warn(`amqp ${this.where}: connection lost; reconnecting`);
    this.model = null;
    this.consumeChannel = null;
    this.publishChannel = null;
    this.ready = this.establish(true);
    this.ready.catch((err: Error) => this.opts.logger?.error(`amqp reconnect gave up: ${err.message}`));
  }

  /**
   * Celery's declaration: exchange (direct/topic/fanout, durable), queue, binding — on a channel
   * of its own, because a queue that already exists with other arguments (a Python worker declared
   * it with x-max-priority, say) closes the channel with PRECONDITION_FAILED. That queue is then
   * used as it is, with a warning, instead of taking the consumer down.
   */
  private async declareOn(model: ChannelModel, q: QueueDeclaration): Promise<void> {
    const args: Record<string, unknown> = { ...q.arguments };
    const durable = q.durable ?? true;
    let ch = await model.createChannel();
    ch.on('error', () => undefined);
    try {
      await ch.assertQueue(q.name, { durable, autoDelete: q.autoDelete ?? false, arguments: args });
    } catch (err) {
      if ((err as { code?: number }).code !== 406) throw err;
      this.opts.logger?.warn(`queue ${q.name} exists with other arguments than ${JSON.stringify(args)}; using it as declared (${(err as Error).message})`);
      ch = await model.createChannel();
      ch.on('error', () => undefined);
      await ch.checkQueue(q.name);
    }
    try {
      if (q.exchange) {
        await ch.assertExchange(q.exchange, q.exchangeType, { durable, autoDelete: false });
        await ch.bindQueue(q.name, q.exchange, q.routingKey);
      }
    } finally {
      await ch.close().catch(() => undefined);
    }
  }

  async declareQueue(q: QueueDeclaration): Promise<void> {
    this.declared.set(q.name, q);
    if (q.arguments?.['x-queue-type'] === 'quorum') this.perConsumerQos = true;
    await this.ready;
    if (!this.model) throw new Error('amqp transport is not connected');
    await this.declareOn(this.model, q);
  }

  setPrefetch(count: number): void {
    this.prefetch = Math.max(0, Math.floor(count));
    // Celery raises/lowers QoS once per ETA message; coalesce bursts into one basic.qos.
    if (this.qosScheduled) return;
    this.qosScheduled = true;
    setImmediate(() => {
      this.qosScheduled = false;
      void this.applyQos().catch((err: Error) => this.opts.logger?.warn(`basic.qos failed: ${err.message}`));
    });
  }

  private async applyQos(): Promise<void> {
    const ch = this.consumeChannel;
    if (!ch) return;
    // RabbitMQ's global=true is per channel (all our consumers share it), as Celery sets it;
    // quorum queues reject global QoS, so there it is per consumer.
    await ch.prefetch(this.prefetch, !this.perConsumerQos);
  }

  async consume(queues: string[], onDelivery: DeliveryHandler): Promise<void> {
    // A copy: add_consumer / cancel_consumer change it, and a reconnect resumes what it says.
    const consuming = { queues: [...new Set(queues)], onDelivery };
    this.consuming = consuming;
    await this.ready;
    await this.startConsumers(consuming.queues, onDelivery);
  }

  private async startConsumers(queues: string[], onDelivery: DeliveryHandler): Promise<void> {
    const ch = this.consumeChannel;
    if (!ch) return;
    // basic.qos must be in force before basic.consume, or a backlog arrives all at once.
    await this.applyQos();
    this.consumerTags = new Map();
    // Over a copy: add_consumer may append to the list meanwhile (it consumes that queue itself).
    for (const queue of [...queues]) await this.consumeOne(ch, queue, onDelivery);
  }

  private async consumeOne(ch: Channel, queue: string, onDelivery: DeliveryHandler): Promise<void> {
    const generation = this.generation;
    const { consumerTag } = await ch.consume(queue, (msg) => {
      if (!msg) return; // consumer cancelled by the broker (queue deleted): reconnect handles it
      onDelivery(this.toDelivery(msg, queue, generation));
    });
    this.consumerTags.set(queue, consumerTag);
  }

  async addQueue(queue: string): Promise<void> {
    const consuming = this.consuming;
    if (!consuming || consuming.queues.includes(queue)) return;
    consuming.queues.push(queue);
    await this.ready;
    // No channel now: the reconnect starts a consumer for every queue in the list.
    if (this.consumeChannel && !this.consumerTags.has(queue)) await this.consumeOne(this.consumeChannel, queue, consuming.onDelivery);
  }

  /** basic.cancel of the queue's consumer; what it already delivered stays ours to ack. */
  async cancelQueue(queue: string): Promise<void> {
    if (this.consuming) this.consuming.queues = this.consuming.queues.filter((q) => q !== queue);
    const tag = this.consumerTags.get(queue);
    this.consumerTags.delete(queue);
    // A failed cancel means the channel is gone; the reconnect resumes only the queues listed.
    if (tag && this.consumeChannel) await this.consumeChannel.cancel(tag).catch(() => undefined);
  }

  /**
   * Ready messages in the queue (queue.declare passive's message_count), on a channel of its own:
   * a queue that does not exist closes the channel it is asked on (404).
   */
  async queueDepth(queue: string): Promise<number> {
    return this.onOwnChannel(async (ch) => (await ch.checkQueue(queue)).messageCount);
  }

  /**
   * Ready from queue.declare passive (now), unacked from the management API (its last sample) of
   * the node connected to, when broker_api is set.
   */
  async queueCounts(queue: string): Promise<QueueCounts> {
    const api = this.opts.brokerApi;
    const [ready, unacked] = await Promise.all([this.queueDepth(queue), api ? unackedFromApi(api, this.ring.current, queue) : NO_BROKER_API]);
    return { ready, unacked };
  }

  /** queue.purge (ready messages only; unacked ones stay with their consumers), on its own channel. */
  async purgeQueue(queue: string): Promise<number> {
    return this.onOwnChannel(async (ch) => (await ch.purgeQueue(queue)).messageCount);
  }

  private async onOwnChannel<T>(fn: (ch: Channel) => Promise<T>): Promise<T> {
    await this.ready;
    if (!this.model) throw new Error('amqp transport is not connected');
    const ch = await this.model.createChannel();
    ch.on('error', () => undefined);
    try {
      return await fn(ch);
    } finally {
      await ch.close().catch(() => undefined);
    }
  }

  private toDelivery(msg: ConsumeMessage, queue: string, generation: number): AmqpDelivery {
    const p = msg.properties;
    const message: BrokerMessage = {
      body: msg.content,
      contentType: p.contentType ?? 'application/json',
      contentEncoding: p.contentEncoding ?? 'utf-8',
      headers: (p.headers ?? {}) as Record<string, unknown>,
      properties: pyAmqpProperties(p),
    };
    return {
      message,
      deliveryTag: String(msg.fields.deliveryTag),
      queue,
      exchange: msg.fields.exchange,
      routingKey: msg.fields.routingKey,
      redelivered: msg.fields.redelivered,
      generation,
      raw: msg,
    };
  }

  isLive(d: Delivery): boolean {
    return this.live(d);
  }

  /** True when the delivery's channel is still the live one (else RabbitMQ already requeued it). */
  private live(d: Delivery): d is AmqpDelivery {
    const a = d as AmqpDelivery;
    return a.generation === this.generation && this.consumeChannel !== null;
  }

  async stopConsuming(): Promise<void> {
    const ch = this.consumeChannel;
    const tags = [...this.consumerTags.values()];
    this.consuming = null;
    this.consumerTags = new Map();
    if (!ch) return;
    for (const tag of tags) await ch.cancel(tag).catch(() => undefined);
  }

  async ack(d: Delivery): Promise<void> {
    if (!this.live(d)) return;
    this.consumeChannel!.ack(d.raw);
  }

  async reject(d: Delivery, requeue: boolean): Promise<void> {
    if (!this.live(d)) return;
    this.consumeChannel!.reject(d.raw, requeue);
  }

  async publish(req: PublishRequest): Promise<void> {
    await this.ready;
    const ch = this.publishChannel;
    if (!ch) throw new Error('amqp transport is not connected');
    await new Promise<void>((resolve, reject) => {
      ch.publish(req.exchange, req.routingKey, req.message.body, publishOptions(req.message), (err) =>
        err ? reject(err instanceof Error ? err : new Error(String(err))) : resolve(),
      );
    });
  }

  /**
   * Celery's events: the exchange declared first (kombu's maybe_declare), then published without
   * waiting for the confirm — Celery does not confirm events (py-amqp's confirm_publish is off), and
   * a heartbeat every 2 s must not queue up behind a slow broker.
   */
  async broadcast(exchange: BroadcastExchange, routingKey: string, message: BrokerMessage): Promise<void> {
    await this.ready;
    const model = this.model;
    const ch = this.publishChannel;
    if (!model || !ch) throw new Error('amqp transport is not connected');
    await ensureExchange(model, exchange, this.opts.logger);
    ch.publish(exchange.name, routingKey, message.body, publishOptions(message));
  }

  /**
   * kombu's pidbox Node: a non-durable, exclusive, auto-delete queue bound to the fanout exchange
   * (declared non-durable, as kombu's Mailbox does), consumed with no_ack on a channel of its own.
   */
  async subscribeBroadcast(
    exchange: BroadcastExchange,
    queue: { name: string; arguments?: Record<string, unknown> },
    onMessage: (message: BrokerMessage) => void,
  ): Promise<() => Promise<void>> {
    await this.ready;
    const model = this.model;
    if (!model) throw new Error('amqp transport is not connected');
    const listener: BroadcastListener = { exchange, queue, onMessage, channel: null };
    this.listeners.add(listener);
    await this.listenOn(model, listener);
    return async () => {
      this.listeners.delete(listener);
      await listener.channel?.close().catch(() => undefined);
      listener.channel = null;
    };
  }

  private async listenOn(model: ChannelModel, l: BroadcastListener): Promise<void> {
    const ch = await model.createChannel();
    ch.on('error', (err: Error) => this.opts.logger?.warn(`amqp ${l.exchange.name} channel error: ${err.message}`));
    await ch.assertExchange(l.exchange.name, l.exchange.type, { durable: l.exchange.durable, autoDelete: l.exchange.autoDelete ?? false });
    await ch.assertQueue(l.queue.name, { durable: false, exclusive: true, autoDelete: true, arguments: l.queue.arguments ?? {} });
    await ch.bindQueue(l.queue.name, l.exchange.name, '');
    await ch.consume(
      l.queue.name,
      (msg) => {
        if (msg) l.onMessage(this.toDelivery(msg, l.queue.name, this.generation).message);
      },
      { noAck: true, exclusive: true },
    );
    l.channel = ch;
  }

  async declareExchange(exchange: BroadcastExchange): Promise<void> {
    await this.ready;
    if (!this.model) throw new Error('amqp transport is not connected');
    await ensureExchange(this.model, exchange, this.opts.logger);
  }

  async close(): Promise<void> {
    this.closing = true;
    await this.stopConsuming().catch(() => undefined);
    await settlePublishes(this.publishChannel, 2_000);
    // The consume channel first, on its own: amqplib queues each channel's frames and writes
    // channel 0's Connection.Close straight away, so closing the connection right after the last
    // acks (a warm shutdown) could overtake them and those messages would run twice. Channel.Close
    // goes out behind the channel's acks, and RabbitMQ answers it once it has processed them.
    // Closing the channel returns every unacked delivery to its queue (RabbitMQ's own rule).
    // Bounded: a broker that stopped answering must not hold the shutdown (the connection close
    // below still returns the deliveries).
    let timer: NodeJS.Timeout | undefined;
    const bound = new Promise<void>((resolve) => (timer = setTimeout(resolve, 2_000)));
    await Promise.race([this.consumeChannel?.close().catch(() => undefined), bound]);
    clearTimeout(timer);
    await this.model?.close().catch(() => undefined);
    this.model = null;
    this.consumeChannel = null;
    this.publishChannel = null;
  }
}
