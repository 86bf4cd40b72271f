/**
 * Celery's RedisBackend: celery-task-meta-<id> JSON documents with result_expires, published on
 * the same-named channel so Python's AsyncResult.get() wakes at once.
 */
import { join } from 'node:path';
import type Redis from 'ioredis';
import { closeRedis, connectRedis, type RedisLogger } from '../../redis/connect';
import { LuaScript } from '../../redis/script';
import type { ResultBackend, ResultMeta } from '../backend';
import { ResultWaiters } from '../waiters';
import { parseJson, stringifyJson } from '../../protocol/serializers';
import { RedisChordStore } from './chord';
import { isTransient, PendingWrites, writeOrLost } from '../pendingWrites';

const STORE = LuaScript.fromFile('storeResult', join(__dirname, 'storeResult.lua'));

/** Results per script call; bounds the script's argument list. */
const MAX_BATCH = 200;

/** A write not answered in this long is parked and retried (a connection hung without a reset). */
const WRITE_WAIT_MS = 5_000;
/** At close, how long parked writes may still try to go out (ms). */
const CLOSE_DRAIN_MS = 3_000;

type Write = { key: string; value: string };

/** The stores of one script call: they are written together, so they share one promise (#16). */
class StoreBatch {
  readonly writes: Write[] = [];
  resolve!: () => void;
  reject!: (err: Error) => void;
  readonly done = new Promise<void>((resolve, reject) => {
    this.resolve = resolve;
    this.reject = reject;
  });
}

export interface RedisBackendOptions {
  url: string;
  /** Celery's redis_backend_use_ssl for rediss://. */
  ssl?: Record<string, unknown> | null;
  /** Seconds a result lives; 0 or null keeps it forever (Celery's result_expires). */
  expires?: number | null;
  globalKeyprefix?: string;
  logger?: RedisLogger;
  /** result_backend_transport_options.result_chord_ordered (Celery's default True: a zset by group_index). */
  chordOrdered?: boolean;
  /** Celery's result_backend_transport_options (master_name, sentinel_kwargs for sentinel:// URLs). */
  transportOptions?: Record<string, unknown>;
}

export class RedisBackend implements ResultBackend {
  readonly kind = 'redis';
  private readonly client: Redis;
  private subscriber: Redis | null = null;
  private readonly waiters = new ResultWaiters((taskId) => void this.subscriber?.unsubscribe(this.key(taskId)).catch(() => undefined));
  private readonly prefix: string;
  /** Batches waiting for their script call, oldest first; stores join the last one until it is full. */
  private readonly pending: StoreBatch[] = [];
  private chordStore: RedisChordStore | null = null;
  /** Writes waiting out an outage of Redis, retried with backoff (see ../pendingWrites.ts). */
  private readonly parked: PendingWrites<Write>;

  constructor(private readonly opts: RedisBackendOptions) {
    this.client = connectRedis(opts.url, {
      ssl: opts.ssl,
      logger: opts.logger,
      name: 'result backend',
      transportOptions: opts.transportOptions,
      transportOptionsKey: 'result_backend_transport_options',
    });
    this.prefix = opts.globalKeyprefix ?? '';
    this.parked = new PendingWrites<Write>({
      write: async (batch) => void (await this.writeBatch(batch)),
      isUp: () => this.client.status === 'ready',
      warn: (m) => opts.logger?.warn(m),
      info: (m) => opts.logger?.info(m),
    });
    this.client.on('ready', () => this.parked.kick());
  }

  key(taskId: string): string {
    return `${this.prefix}celery-task-meta-${taskId}`;
  }

  /** celery-taskset-meta-<group id><suffix>: a saved GroupResult and the chord keys (.j .t .s .d .c). */
  groupKey(groupId: string, suffix = ''): string {
    return `${this.prefix}celery-taskset-meta-${groupId}${suffix}`;
  }

  /** The chord operations on this backend's connection (see chord.ts). */
  chords(): RedisChordStore {
    this.chordStore ??= new RedisChordStore(this.client, (gid, suffix) => this.groupKey(gid, suffix), this.opts.expires ?? 0, this.opts.chordOrdered ?? true);
    return this.chordStore;
  }

  async connect(): Promise<void> {
    await this.client.connect();
  }

  /** Stores made in the same tick go to Redis as one script call (one round trip for many tasks). */
  store(meta: ResultMeta): Promise<void> {
    const value = stringifyJson(meta);
    const key = this.key(meta.task_id);
    // Redis unreachable, or older writes still parked: wait behind them, not in the task's slot.
    if (this.client.status !== 'ready' || this.parked.size > 0) return this.parked.park({ key, value });
    let batch = this.pending[this.pending.length - 1];
    if (!batch || batch.writes.length >= MAX_BATCH) {
      batch = new StoreBatch();
      this.pending.push(batch);
      if (this.pending.length === 1) setImmediate(() => void this.flush());
    }
    batch.writes.push({ key, value });
    return batch.done;
  }

  private async flush(): Promise<void> {
    for (let batch = this.pending.shift(); batch; batch = this.pending.shift()) {
      try {
        if ((await writeOrLost(this.client, this.writeBatch(batch.writes), WRITE_WAIT_MS)) === 'written') batch.resolve();
        else this.park(batch);
      } catch (err) {
        if (isTransient(err)) this.park(batch);
        else batch.reject(err as Error);
      }
    }
  }

  /** Not written now: each store waits in memory for Redis (resolved once held, as park() is). */
  private park(batch: StoreBatch): void {
    Promise.all(batch.writes.map((w) => this.parked.park(w))).then(batch.resolve, batch.reject);
  }

  private writeBatch(batch: readonly Write[]): Promise<unknown> {
    return STORE.run(this.client, batch.map((p) => p.key), [this.opts.expires ?? 0, ...batch.map((p) => p.value)]);
  }

  async get(taskId: string): Promise<ResultMeta | null> {
    const raw = await this.client.get(this.key(taskId));
    return raw === null ? null : (parseJson(raw) as ResultMeta);
  }

  async forget(taskId: string): Promise<void> {
    await this.client.del(this.key(taskId));
  }

  async waitFor(taskId: string, timeoutMs = 0): Promise<ResultMeta> {
    const sub = await this.ensureSubscriber();
    // Subscribe first, then read: a result written in between is seen by one or the other.
    return this.waiters.wait(taskId, timeoutMs, async (deliver) => {
      await sub.subscribe(this.key(taskId));
      const meta = await this.get(taskId);
      if (meta) deliver(meta);
    });
  }

  async close(): Promise<void> {
    const lost = await this.parked.drain(CLOSE_DRAIN_MS);
    if (lost) this.opts.logger?.warn(`result backend still unreachable at close: ${lost} result(s) could not be written and are lost`);
    this.subscriber?.disconnect();
    await closeRedis(this.client);
  }

  private async ensureSubscriber(): Promise<Redis> {
    if (this.subscriber) return this.subscriber;
    const sub = this.client.duplicate();
    sub.on('error', () => undefined); // the main client logs the outage once
    this.subscriber = sub;
    sub.on('message', (_channel: string, raw: string) => {
      let meta: ResultMeta;
      try {
        meta = parseJson(raw) as ResultMeta;
      } catch {
        return; // not a meta document: nobody waits for it
      }
      if (meta.task_id) this.waiters.deliver(meta.task_id, meta);
    });
    if (sub.status === 'wait') await sub.connect();
    return sub;
  }
}
