/**
 * kombu-compatible Redis transport. Same keys and envelopes as kombu/transport/redis.py, so Python
 * producers, Python workers and Celeriac workers share queues. Differences, all safe for kombu
 * peers: messages are claimed in batches by one Lua script that pops and records them as unacked
 * atomically (kombu pops first and records after), and a worker keeps the unacked_index score of
 * messages it still holds fresh, so only a dead worker's messages are restored after
 * visibility_timeout — a long-running task is not handed to a second worker.
 */
import { join } from 'node:path';
import type Redis from 'ioredis';
import type { BroadcastExchange, BrokerMessage, Delivery, DeliveryHandler, MissingCount, PublishRequest, QueueCounts, QueueDeclaration, Transport } from '../transport';
import { decodeEnvelope, encodeEnvelope, envelopePriority, envelopeToMessage, type VirtualEnvelope } from '../virtualEnvelope';
import { closeRedis, connectRedis, redisDbFromUrl, type RedisLogger } from '../../redis/connect';
import { LuaScript } from '../../redis/script';
import { DEFAULT_KEY_OPTIONS, RedisKeys, type RedisKeyOptions } from './keys';
import { lookupQueues } from './routing';
import { DEFAULT_FANOUT, fanoutChannel, type FanoutOptions } from './fanout';

const COMMANDS = join(__dirname, 'commands');
const CLAIM = LuaScript.fromFile('claim', join(COMMANDS, 'claim.lua'));
const RESTORE = LuaScript.fromFile('restore', join(COMMANDS, 'restore.lua'));
const ACK = LuaScript.fromFile('ack', join(COMMANDS, 'ack.lua'));
const WAITING = LuaScript.fromFile('waiting', join(COMMANDS, 'waiting.lua'));

/** How long each shutdown step may wait for Redis before giving up (ms). */
const SHUTDOWN_STEP_MS = 3000;

/** True when `p` settled within `ms`; false when it is still pending (it is left to itself). */
function settledWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  return Promise.race([p.then(() => true, () => true), timeout]).finally(() => clearTimeout(timer));
}

const UNACKED_NOT_PER_QUEUE: MissingCount = {
  scope: 'broker',
  reason: "unacked is not counted per queue on Redis (kombu's unacked hash does not record the queue of a message)",
};

/** Most messages claimed per round trip (also bounds Lua's unpack() of ack batches). */
const MAX_BATCH = 500;

/** What one claim.lua call took: how many messages it tracked, and whether more are waiting. */
interface Claimed {
  count: number;
  more: boolean;
}
/** The claim skipped because the last one saw every queue empty. */
const NOTHING_CLAIMED: Claimed = Object.freeze({ count: 0, more: false });

/** BRPOP's message, and whether any queue still held one right after it was popped. */
interface Popped {
  index: number;
  payload: string;
  more: boolean;
}

/**
 * BRPOP's message while the worker's handler takes it, before its unacked record is sent: `send`
 * writes that record (with a claim of more messages behind it), `sent` once it did, `acked` when
 * the handler acked the message first and the record was never needed.
 */
interface Unrecorded {
  tag: string;
  send: () => Promise<Claimed>;
  sent: Promise<Claimed> | null;
  acked: boolean;
}

export interface RedisTransportOptions extends Partial<RedisKeyOptions> {
  url: string;
  /** Celery's broker_use_ssl for rediss://. */
  ssl?: Record<string, unknown> | null;
  /** Seconds an unacked message may stay unacked before any worker restores it. */
  visibilityTimeout?: number;
  /** Seconds between sweeps for expired unacked messages (kombu: unacked_restore_interval). */
  restoreInterval?: number;
  /** Seconds the restore mutex outlives a holder that died mid-sweep (kombu: unacked_mutex_expire, 300). */
  unackedMutexExpire?: number;
  /** BRPOP timeout in seconds while the queues are empty. */
  pollTimeout?: number;
  logger?: RedisLogger & { error(msg: string): void };
  /** kombu's fanout_prefix / fanout_patterns (see fanout.ts). */
  fanoutPrefix?: boolean | string;
  fanoutPatterns?: boolean;
  /** Celery's broker_transport_options (master_name, sentinel_kwargs for sentinel:// URLs). */
  transportOptions?: Record<string, unknown>;
}

interface Held {
  delivery: Delivery;
  envelope: VirtualEnvelope;
  key: string;
}

export class RedisTransport implements Transport {
  readonly kind = 'redis';
  private readonly keys: RedisKeys;
  private readonly client: Redis;
  private blocking: Redis | null = null;
  private readonly held = new Map<string, Held>();
  private prefetch = 0;
  private consuming = false;
  /** The queues polled; add_consumer / cancel_consumer change it while the loop runs. */
  private queues: string[] = [];
  private loopDone: Promise<void> = Promise.resolve();
  /** Wakes the loop waiting for prefetch credit, or for a queue to consume. */
  private creditWaiter: (() => void) | null = null;
  private pendingAcks: string[] = [];
  private acksInFlight = 0;
  private ackFlush: Promise<void> | null = null;
  private unrecorded: Unrecorded | null = null;
  private timers: NodeJS.Timeout[] = [];
  private queueOffset = 0;
  private readonly visibilityTimeout: number;
  private readonly fanout: FanoutOptions;

  constructor(private readonly opts: RedisTransportOptions) {
    this.keys = new RedisKeys({ ...DEFAULT_KEY_OPTIONS, ...stripUndefined(opts) });
    this.visibilityTimeout = opts.visibilityTimeout ?? 3600;
    this.client = connectRedis(opts.url, { ssl: opts.ssl, logger: opts.logger, name: 'broker', transportOptions: opts.transportOptions });
    this.fanout = {
      fanoutPrefix: opts.fanoutPrefix ?? DEFAULT_FANOUT.fanoutPrefix,
      fanoutPatterns: opts.fanoutPatterns ?? DEFAULT_FANOUT.fanoutPatterns,
      globalKeyprefix: this.keys.opts.globalKeyprefix,
      db: redisDbFromUrl(opts.url),
    };
  }

  async connect(): Promise<void> {
    await this.client.connect();
  }

  async declareQueue(q: QueueDeclaration): Promise<void> {
    // kombu's _queue_bind: the binding table is how publishers to a named exchange find the queue.
    const pattern = q.exchangeType === 'topic' ? q.routingKey : '';
    const member = this.keys.bindingMember(q.routingKey, pattern, q.name);
    await this.client
      .multi()
      .sadd(this.keys.binding(q.exchange), member)
      .sadd(this.keys.bindingPermanent(q.exchange), member)
      .exec();
  }

  setPrefetch(count: number): void {
    this.prefetch = Math.max(0, Math.floor(count));
    this.wakeForCredit();
  }

  async consume(queues: string[], onDelivery: DeliveryHandler): Promise<void> {
    if (this.consuming) throw new Error('already consuming');
    this.consuming = true;
    this.queues = [...new Set(queues)];
    this.blocking = this.client.duplicate();
    this.blocking.on('error', () => undefined); // the main client logs the outage once
    await this.blocking.connect();
    await this.restoreVisible();
    const sweepMs = Math.max(1, this.opts.restoreInterval ?? Math.min(10, this.visibilityTimeout)) * 1000;
    const refreshMs = Math.max(500, (this.visibilityTimeout * 1000) / 4);
    this.timers.push(setInterval(() => void this.restoreVisible().catch((e: Error) => this.warn(`restore failed: ${e.message}`)), sweepMs));
    this.timers.push(setInterval(() => void this.refreshHeld().catch((e: Error) => this.warn(`refresh failed: ${e.message}`)), refreshMs));
    for (const t of this.timers) t.unref();
    this.loopDone = this.loop(onDelivery);
  }

  async addQueue(queue: string): Promise<void> {
    if (this.queues.includes(queue)) return;
    // A BRPOP in flight keeps its keys until it times out (pollTimeout): kombu has the same lag.
    this.queues = [...this.queues, queue];
    this.wakeForCredit();
  }

  async cancelQueue(queue: string): Promise<void> {
    // A poll already in flight may still pop from it: dispatch() puts such messages back.
    this.queues = this.queues.filter((q) => q !== queue);
  }

  async stopConsuming(): Promise<void> {
    this.consuming = false;
    this.wakeForCredit();
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    // Normally the loop ends within one poll; with Redis down its command never returns.
    await settledWithin(this.loopDone, SHUTDOWN_STEP_MS);
  }

  ack(delivery: Delivery): Promise<void> {
    if (!this.held.delete(delivery.deliveryTag)) return Promise.resolve();
    if (this.ackedBeforeRecord(delivery.deliveryTag)) return Promise.resolve();
    this.pendingAcks.push(delivery.deliveryTag);
    // Acks made in the same tick go to Redis as one script call, and share its promise (not
    // wrapped in one more per ack: #16).
    this.ackFlush ??= new Promise<void>((resolve) => setImmediate(resolve)).then(() => this.flushAcks());
    return this.ackFlush;
  }

  /** Write BRPOP's deferred unacked record now: the worker runs the task before acking it. */
  beforeRunUnacked(delivery: Delivery): void {
    this.recordNow(delivery.deliveryTag);
  }

  async reject(delivery: Delivery, requeue: boolean): Promise<void> {
    const held = this.held.get(delivery.deliveryTag);
    if (!held) return;
    this.held.delete(delivery.deliveryTag);
    this.wakeForCredit();
    if (!requeue && this.ackedBeforeRecord(delivery.deliveryTag)) return;
    this.recordNow(delivery.deliveryTag); // restore.lua puts back only what is recorded
    if (!requeue) {
      await ACK.run(this.client, [this.keys.unacked, this.keys.unackedIndex], [delivery.deliveryTag]);
      return;
    }
    // kombu's reject(requeue=True) pushes leftmost: the back of the queue.
    await this.restore(held.envelope, [held.key], 'LPUSH');
  }

  async publish(req: PublishRequest): Promise<void> {
    const env = encodeEnvelope(req.message, req.exchange, req.routingKey);
    const queues = await this.routeQueues(req.exchange, req.routingKey);
    const payload = JSON.stringify(env);
    const pri = envelopePriority(env);
    if (queues.length === 1) {
      await this.client.lpush(this.keys.queueKey(queues[0]!, pri), payload);
      return;
    }
    const m = this.client.multi();
    for (const q of queues) m.lpush(this.keys.queueKey(q, pri), payload);
    await m.exec();
  }

  /** kombu's _put_fanout: PUBLISH the envelope; only receivers subscribed right now get it. */
  async broadcast(exchange: BroadcastExchange, routingKey: string, message: BrokerMessage): Promise<void> {
    const env = encodeEnvelope(message, exchange.name, routingKey);
    await this.client.publish(fanoutChannel(this.fanout, exchange.name, routingKey), JSON.stringify(env));
  }

  /**
   * kombu's fanout consumer: PSUBSCRIBE to the exchange's channel (routing key '' as kombu's
   * Node binds it) on a connection of its own, each message an envelope like a queued one.
   */
  async subscribeBroadcast(
    exchange: BroadcastExchange,
    _queue: { name: string; arguments?: Record<string, unknown> },
    onMessage: (message: BrokerMessage) => void,
  ): Promise<() => Promise<void>> {
    const sub = this.client.duplicate();
    sub.on('error', () => undefined); // the main client logs the outage once
    const channel = fanoutChannel(this.fanout, exchange.name, '');
    sub.on('pmessageBuffer', (_pattern: Buffer, _channel: Buffer, data: Buffer) => {
      let message: BrokerMessage;
      try {
        message = envelopeToMessage(decodeEnvelope(data.toString('utf8')));
      } catch (err) {
        this.warn(`dropped a malformed ${exchange.name} broadcast: ${(err as Error).message}`);
        return;
      }
      onMessage(message);
    });
    await sub.connect();
    await sub.psubscribe(channel);
    // Dropping the connection ends the subscription; a PUNSUBSCRIBE would wait forever while
    // Redis is down (commands queue until it is back).
    return async () => sub.disconnect();
  }

  /** Messages waiting in a queue (all priority steps), kombu's _size. */
  async queueDepth(queue: string): Promise<number> {
    const m = this.client.multi();
    for (const { key } of this.keys.consumeKeys([queue])) m.llen(key);
    const res = (await m.exec()) ?? [];
    return res.reduce((n, [, v]) => n + (typeof v === 'number' ? v : 0), 0);
  }

  /**
   * Ready as queueDepth counts it. Unacked is not counted per queue: kombu's `unacked` hash keeps
   * each message with its exchange and routing key, not the queue it was taken from, and reading
   * it means fetching every held message's body.
   */
  async queueCounts(queue: string): Promise<QueueCounts> {
    return { ready: await this.queueDepth(queue), unacked: UNACKED_NOT_PER_QUEUE };
  }

  /** kombu's _purge: every priority list of the queue, counted and deleted in one MULTI. */
  async purgeQueue(queue: string): Promise<number> {
    const keys = this.keys.consumeKeys([queue]).map(({ key }) => key);
    const m = this.client.multi();
    for (const key of keys) m.llen(key);
    m.del(...keys);
    const res = (await m.exec()) ?? [];
    return res.slice(0, keys.length).reduce((n, [, v]) => n + (typeof v === 'number' ? v : 0), 0);
  }

  async close(): Promise<void> {
    await this.stopConsuming();
    // With Redis unreachable these cannot finish: give up after a while rather than hang the
    // shutdown. Nothing is lost: unsent acks and unrestored messages stay in `unacked`, and any
    // worker restores them after visibility_timeout.
    if (!(await settledWithin(this.flushAcks(), SHUTDOWN_STEP_MS))) this.warn('acks not flushed at close: Redis did not answer');
    // kombu restores unacked messages when a channel closes (restore_at_shutdown).
    const held = [...this.held.values()];
    this.held.clear();
    const restoring = Promise.all(
      held.map((h) => this.restore(h.envelope, [h.key], 'RPUSH').catch((e: Error) => this.warn(`restore at close failed: ${e.message}`))),
    );
    if (!(await settledWithin(restoring, SHUTDOWN_STEP_MS))) this.warn(`${held.length} held message(s) left for visibility_timeout: Redis did not answer`);
    this.blocking?.disconnect();
    await closeRedis(this.client);
  }

  // ---- internals ----

  private async loop(onDelivery: DeliveryHandler): Promise<void> {
    // The last claim saw every queue empty: wait in BRPOP next rather than spend a round trip on a
    // claim that would find nothing (one script call less per task on an idle worker, #16).
    // Whatever arrives meanwhile, BRPOP returns at once and the claim that records it takes the rest.
    let queuesEmpty = false;
    while (this.consuming) {
      if (this.queues.length === 0) {
        // Every queue cancelled: BRPOP needs at least one key; wait for add_consumer.
        await new Promise<void>((resolve) => (this.creditWaiter = resolve));
        continue;
      }
      // Acks not yet flushed still count: Redis sees them as unacked until the flush lands.
      const outstanding = this.held.size + this.pendingAcks.length + this.acksInFlight;
      const credit = this.prefetch === 0 ? MAX_BATCH : Math.min(MAX_BATCH, this.prefetch - outstanding);
      if (credit <= 0) {
        await new Promise<void>((resolve) => (this.creditWaiter = resolve));
        continue;
      }
      try {
        const keys = this.rotatedKeys(this.queues);
        const claimed: Claimed = queuesEmpty ? NOTHING_CLAIMED : await this.claim(keys, credit);
        queuesEmpty = !claimed.more;
        if (claimed.count === 0 && this.consuming) {
          const popped = await this.pop(keys);
          if (popped) queuesEmpty = !(await this.deliverPopped(keys, credit, popped, onDelivery)).more;
        }
        this.dispatch(onDelivery);
      } catch (err) {
        this.warn(`consume error: ${(err as Error).message}; retrying in 1s`);
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
  }

  /**
   * BRPOP, with waiting.lua sent right behind it on the same connection: Redis runs it as soon as
   * BRPOP returns, and both replies come back together. Two plain commands, not an ioredis
   * pipeline: a pipeline cost about 0.1 ms of CPU per lone task more (#16).
   */
  private async pop(keys: { key: string; queue: string }[]): Promise<Popped | null> {
    const listKeys = keys.map((k) => k.key);
    const blocking = this.blocking!;
    const popping = blocking.brpop(...listKeys, this.opts.pollTimeout ?? 1);
    // EVALSHA, not LuaScript.run: a NOSCRIPT (after a Redis restart) comes back only with BRPOP's
    // reply, too late to resend the script behind it. Not knowing means claim next, at worst one
    // claim that finds nothing; the script is loaded again for the next BRPOP.
    const waiting = blocking.evalsha(WAITING.sha, listKeys.length, ...listKeys).then(
      (reply) => reply !== 0,
      (err: Error) => {
        if (err.message.includes('NOSCRIPT')) WAITING.load(this.client).catch((e: Error) => this.warn(`could not load waiting.lua: ${e.message}`));
        return true;
      },
    );
    const popped = await popping;
    const more = await waiting;
    if (!popped) return null; // timed out
    return { index: keys.findIndex((k) => k.key === popped[0]), payload: popped[1], more };
  }

  /**
   * BRPOP's message runs at once, and its unacked record is sent once the handler returns, before
   * any later task starts. A task acked as it started (early ack, the default) needs no record: its
   * ack ends the message, so neither the record nor the ack goes to Redis, and a lone task costs
   * BRPOP and its result (#16). A task run before it is acked (acks_late) gets its record first
   * (beforeRunUnacked), so a worker dying in the task leaves it for visibility_timeout. Either
   * way the record goes out before any ack or reject of the message, on the same connection, so
   * Redis applies them in order. A worker killed between BRPOP and the record loses the message;
   * kombu has that window too.
   */
  private deliverPopped(keys: { key: string; queue: string }[], credit: number, popped: Popped, onDelivery: DeliveryHandler): Claimed | Promise<Claimed> {
    const tag = this.track(keys[popped.index]!, popped.payload, false);
    const notRecorded: Claimed = { count: 0, more: popped.more };
    if (tag === null) return notRecorded; // malformed: dropped with an error, never recorded
    const unrecorded: Unrecorded = {
      tag,
      send: () => this.claim(keys, credit, { index: popped.index, payload: popped.payload }),
      sent: null,
      acked: false,
    };
    this.unrecorded = unrecorded;
    try {
      this.dispatch(onDelivery);
    } finally {
      this.recordNow(tag);
      this.unrecorded = null;
    }
    return unrecorded.sent ?? notRecorded;
  }

  /** Send BRPOP's deferred record of `tag` now, unless it went already or the message was acked. */
  private recordNow(tag: string): void {
    const u = this.unrecorded;
    if (u?.tag === tag && !u.acked) u.sent ??= u.send();
  }

  /** True (and nothing to send) when `tag` is BRPOP's message acked before its record went out. */
  private ackedBeforeRecord(tag: string): boolean {
    const u = this.unrecorded;
    if (u?.tag !== tag || u.sent) return false;
    u.acked = true;
    return true;
  }

  private undelivered: Held[] = [];

  private dispatch(onDelivery: DeliveryHandler): void {
    if (!this.consuming) return; // held messages go back to the queue at close()
    const ready = this.undelivered;
    this.undelivered = [];
    for (const h of ready) {
      if (this.queues.includes(h.key)) onDelivery(h.delivery);
      else this.putBack(h);
    }
  }

  /**
   * Popped from a queue cancelled while the poll was in flight: back to the head of its queue,
   * as kombu's basic_cancel restores what it read after cancelling.
   */
  private putBack(h: Held): void {
    this.held.delete(h.delivery.deliveryTag);
    this.recordNow(h.delivery.deliveryTag); // restore.lua puts back only what is recorded
    this.restore(h.envelope, [h.key], 'RPUSH').then(
      () => this.wakeForCredit(),
      (e: Error) => this.warn(`could not put back a message of cancelled queue ${h.key}: ${e.message}`),
    );
  }

  /** Round-robin between queues (kombu's default queue_order_strategy), priority-major keys. */
  private rotatedKeys(queues: string[]): { key: string; queue: string }[] {
    const n = queues.length;
    const start = this.queueOffset++ % n;
    const order = queues.slice(start).concat(queues.slice(0, start));
    return this.keys.consumeKeys(order);
  }

  /**
   * Claims up to `limit` messages (recorded as unacked by claim.lua) and tracks them; returns how
   * many, and whether more are waiting in the queues. With `popped` (BRPOP's message, already
   * tracked and delivered by deliverPopped) the script records that one first and claims up to
   * limit - 1 more; the reply leaves it out.
   */
  private async claim(
    keys: { key: string; queue: string }[],
    limit: number,
    popped?: { index: number; payload: string },
  ): Promise<Claimed> {
    const args: (string | number)[] = [limit, (Date.now() / 1000).toFixed(6)];
    if (popped) args.push(popped.index + 3, popped.payload);
    const reply = (await CLAIM.run(this.client, [this.keys.unacked, this.keys.unackedIndex, ...keys.map((k) => k.key)], args)) as (
      | number
      | string
    )[];
    let count = 0;
    for (let i = 1; i < reply.length; i += 2) {
      const index = Number(reply[i]);
      const payload = String(reply[i + 1]);
      const key = keys[Math.abs(index) - 3];
      if (index < 0 || !key) {
        this.error(`dropped a non-message from ${key?.key ?? 'a queue'}: ${payload.slice(0, 200)}`);
        continue;
      }
      this.track(key, payload);
      count++;
    }
    return { count, more: reply[0] === 1 };
  }

  /**
   * Holds the message for delivery and returns its delivery tag; null when it was dropped.
   * `recorded`: claim.lua has recorded it as unacked (BRPOP's message is not, yet).
   */
  private track(key: { key: string; queue: string }, payload: string, recorded = true): string | null {
    let envelope: VirtualEnvelope;
    try {
      envelope = decodeEnvelope(payload);
    } catch (err) {
      // claim.lua recorded it as unacked; forget it there too or it would be restored forever.
      this.error(`dropped a malformed envelope from ${key.queue}: ${(err as Error).message}`);
      const tag = recorded ? deliveryTagOf(payload) : null;
      if (tag !== null) {
        this.pendingAcks.push(tag);
        this.ackFlush ??= new Promise<void>((resolve) => setImmediate(resolve)).then(() => this.flushAcks());
        this.ackFlush.catch((e: Error) => this.warn(`could not forget a malformed envelope: ${e.message}`));
      }
      return null;
    }
    const info = envelope.properties.delivery_info;
    const message: BrokerMessage = envelopeToMessage(envelope);
    const delivery: Delivery = {
      message,
      deliveryTag: envelope.properties.delivery_tag,
      queue: key.queue,
      exchange: String(info.exchange ?? ''),
      routingKey: String(info.routing_key ?? ''),
      redelivered: info.redelivered === true || envelope.headers.redelivered === true,
    };
    const held = { delivery, envelope, key: key.queue };
    this.held.set(delivery.deliveryTag, held);
    this.undelivered.push(held);
    return delivery.deliveryTag;
  }

  private async flushAcks(): Promise<void> {
    this.ackFlush = null;
    // Take the tags out before awaiting: a second flush started meanwhile must not send or drop
    // the same ones (it once spliced away acks it had never sent).
    while (this.pendingAcks.length) {
      const tags = this.pendingAcks.splice(0, MAX_BATCH);
      this.acksInFlight += tags.length;
      try {
        await ACK.run(this.client, [this.keys.unacked, this.keys.unackedIndex], tags);
      } catch (err) {
        this.pendingAcks.unshift(...tags);
        throw err;
      } finally {
        this.acksInFlight -= tags.length;
        this.wakeForCredit();
      }
    }
  }

  private async restore(envelope: VirtualEnvelope, queues: string[], push: 'LPUSH' | 'RPUSH'): Promise<boolean> {
    envelope.headers.redelivered = true;
    envelope.properties.delivery_info.redelivered = true;
    const pri = envelopePriority(envelope);
    const dest = queues.map((q) => this.keys.queueKey(q, pri));
    const keys = [this.keys.unacked, this.keys.unackedIndex, ...dest];
    const done = await RESTORE.run(this.client, keys, [envelope.properties.delivery_tag, JSON.stringify(envelope), push]);
    return done === 1;
  }

  /** kombu's QoS.restore_visible: give back messages unacked for longer than visibility_timeout. */
  async restoreVisible(limit = 1000): Promise<number> {
    const token = `${process.pid}-${Math.random()}`;
    const got = await this.client.set(this.keys.unackedMutex, token, 'EX', Math.max(1, Math.round(this.opts.unackedMutexExpire ?? 300)), 'NX');
    if (got !== 'OK') return 0;
    let restored = 0;
    try {
      const ceil = Date.now() / 1000 - this.visibilityTimeout;
      const tags = await this.client.zrangebyscore(this.keys.unackedIndex, '-inf', ceil, 'LIMIT', 0, limit);
      for (const tag of tags) {
        if (this.held.has(tag)) continue; // ours and alive
        const raw = await this.client.hget(this.keys.unacked, tag);
        if (raw === null) {
          await this.client.zrem(this.keys.unackedIndex, tag);
          continue;
        }
        const parsed = parseUnacked(raw);
        if (!parsed) {
          this.error(`unacked entry ${tag} is not [message, exchange, routing_key]; removing it`);
          await ACK.run(this.client, [this.keys.unacked, this.keys.unackedIndex], [tag]);
          continue;
        }
        const queues = await this.routeQueues(parsed.exchange, parsed.routingKey);
        if (await this.restore(parsed.envelope, queues, 'RPUSH')) restored++;
      }
    } finally {
      // Release only our own mutex (kombu's Mutex does the same check).
      if ((await this.client.get(this.keys.unackedMutex)) === token) await this.client.del(this.keys.unackedMutex);
    }
    if (restored) this.opts.logger?.info(`restored ${restored} unacked message(s) past visibility_timeout`);
    return restored;
  }

  /** Keep our held messages' unacked_index scores fresh so no peer restores them while we run them. */
  private async refreshHeld(): Promise<void> {
    const tags = [...this.held.keys()];
    const now = Date.now() / 1000;
    for (let i = 0; i < tags.length; i += MAX_BATCH) {
      const args: (string | number)[] = [];
      for (const t of tags.slice(i, i + MAX_BATCH)) args.push(now, t);
      await this.client.zadd(this.keys.unackedIndex, 'XX', ...args);
    }
  }

  private async routeQueues(exchange: string, routingKey: string): Promise<string[]> {
    if (!exchange) return [routingKey];
    const members = await this.client.smembers(this.keys.binding(exchange));
    const table = members.map((m) => this.keys.parseBindingMember(m));
    const queues = lookupQueues(table, routingKey);
    // kombu falls back to the routing key when nothing is bound (its deadletter default).
    return queues.length ? queues : [routingKey];
  }

  private wakeForCredit(): void {
    const w = this.creditWaiter;
    this.creditWaiter = null;
    w?.();
  }

  private warn(msg: string): void {
    this.opts.logger?.warn(msg);
  }

  private error(msg: string): void {
    this.opts.logger?.error(msg);
  }
}

/**
 * The delivery_tag under which claim.lua recorded a payload JS cannot take as an envelope, decoded
 * as cjson decoded it. A plain regex once stopped at an escaped quote (a tag `a"b` became `a\`):
 * the wrong tag was acked and the entry was restored and dropped again every visibility_timeout.
 * (Found by tests/integration/fuzz-message-path.test.ts; fixture tests/fixtures/fuzz/tag-with-quote.json.)
 */
export function deliveryTagOf(payload: string): string | null {
  try {
    const doc = JSON.parse(payload) as { properties?: { delivery_tag?: unknown } } | null;
    const tag = doc?.properties?.delivery_tag;
    if (typeof tag === 'string') return tag;
  } catch {
    // Not JSON to JS (cjson is more lenient, e.g. with hex numbers): find the string by hand.
  }
  const m = /"delivery_tag"\s*:\s*"((?:[^"\\]|\\.)*)"/.exec(payload);
  if (!m) return null;
  try {
    return JSON.parse(`"${m[1]}"`) as string;
  } catch {
    return null;
  }
}

function parseUnacked(raw: string): { envelope: VirtualEnvelope; exchange: string; routingKey: string } | null {
  try {
    const doc: unknown = JSON.parse(raw);
    if (!Array.isArray(doc) || doc.length < 3) return null;
    const envelope = decodeEnvelope(JSON.stringify(doc[0]));
    return { envelope, exchange: String(doc[1] ?? ''), routingKey: String(doc[2] ?? '') };
  } catch {
    return null;
  }
}

function stripUndefined(o: RedisTransportOptions): Partial<RedisKeyOptions> {
  const out: Partial<RedisKeyOptions> = {};
  if (o.globalKeyprefix !== undefined) out.globalKeyprefix = o.globalKeyprefix;
  if (o.sep !== undefined) out.sep = o.sep;
  if (o.prioritySteps !== undefined) out.prioritySteps = o.prioritySteps;
  return out;
}
