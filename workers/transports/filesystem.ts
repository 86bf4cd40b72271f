/**
 * kombu's filesystem transport (`broker_url='filesystem://'`), file-compatible with Python in both
 * directions: same envelope per file, same '<ms>_<uuid>.<queue>.msg' names, same FIFO-by-name
 * order, same exchange tables in the control folder (see filesystemLayout.ts for the layout).
 *
 * What differs from kombu, on purpose: a delivered message is not deleted but claimed (renamed
 * into a hidden per-consumer folder) until acked, so a worker crash never loses it; publishing
 * writes a temp file and renames it, so no consumer ever reads half a message; files that are not
 * envelopes are moved aside into `.celeriac/bad` instead of crashing the consumer.
 */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import type {
  Delivery,
  DeliveryHandler,
  PublishRequest,
  QueueDeclaration,
  Transport,
} from './transport';
import { decodeEnvelope, encodeEnvelope, envelopeToMessage, type VirtualEnvelope } from './virtualEnvelope';
import { bindingTriple, bindQueue, readExchangeTable, routeQueues, type ExchangeKind } from './filesystemExchange';
import { errCode, markRedelivered, moveFile, recoverOrphanClaims, replaceFile } from './filesystemClaims';
import { optionsFromKombu, type FilesystemTransportLogger, type FilesystemTransportOptions } from './filesystemOptions';
import {
  BAD_DIR,
  CLAIMS_DIR,
  TMP_DIR,
  assertValidQueueName,
  celeriacPath,
  claimFolderName,
  compareMessageNames,
  localHost,
  messageFileName,
  queueOfFileName,
} from './filesystemLayout';

interface Claim {
  name: string;
  path: string;
  queue: string;
}

/** A fresh, unparseable file may be a Python write in progress (kombu writes in place). */
const PARTIAL_WRITE_GRACE_MS = 2_000;
const DEFER_RETRY_MS = 200;
/** Heartbeat + orphan scan period cap: dead same-host owners are noticed within this. */
const MAX_MAINTENANCE_MS = 5_000;

export type { FilesystemTransportLogger, FilesystemTransportOptions } from './filesystemOptions';

const consoleLogger: FilesystemTransportLogger = {
  warn: (msg) => console.warn(`[celeriac:filesystem] ${msg}`),
};

function parsesAsJson(raw: string): boolean {
  try {
    JSON.parse(raw);
    return true;
  } catch {
    return false;
  }
}

export class FilesystemTransport implements Transport {
  readonly kind = 'filesystem';
  readonly dataFolderIn: string;
  readonly dataFolderOut: string;
  readonly controlFolder: string;
  readonly processedFolder: string;
  readonly storeProcessed: boolean;
  /** This consumer's claim folder, `<in>/.celeriac/claims/<pid>@<host>@<id>`. */
  readonly claimDir: string;

  private readonly host = localHost();
  private readonly claimName: string;
  private readonly visibilityMs: number;
  private readonly pollInterval: number;
  private readonly log: FilesystemTransportLogger;
  private readonly exchangeKinds = new Map<string, ExchangeKind>();
  private readonly unacked = new Map<Delivery, Claim>();
  /** Unparseable files put back for a moment: name -> earliest retry time. */
  private readonly deferred = new Map<string, number>();
  private connected = false;
  private closed = false;
  private consuming = false;
  private queues: string[] = [];
  private handler: DeliveryHandler | null = null;
  private prefetch = 0;
  private roundRobin = 0;
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private rerun = false;
  private watcher: fs.FSWatcher | null = null;
  private maintenance: NodeJS.Timeout | null = null;
  private maintaining: Promise<void> | null = null;

  constructor(options: FilesystemTransportOptions) {
    this.dataFolderIn = path.resolve(options.dataFolderIn);
    this.dataFolderOut = path.resolve(options.dataFolderOut);
    this.controlFolder = path.resolve(options.controlFolder ?? 'control');
    this.processedFolder = path.resolve(options.processedFolder ?? 'processed');
    this.storeProcessed = options.storeProcessed ?? false;
    this.visibilityMs = (options.visibilityTimeout ?? 3600) * 1000;
    this.pollInterval = Math.max(1, options.pollInterval ?? 100);
    this.log = options.logger ?? consoleLogger;
    this.claimName = claimFolderName({ pid: process.pid, host: this.host, id: randomUUID().slice(0, 8) });
    this.claimDir = celeriacPath(this.dataFolderIn, CLAIMS_DIR, this.claimName);
  }

  /** From Celery's broker_transport_options (kombu's names; see optionsFromKombu). */
  static fromOptions(transportOptions: Record<string, unknown>, logger?: FilesystemTransportLogger): FilesystemTransport {
    return new FilesystemTransport({ ...optionsFromKombu(transportOptions), logger });
  }

  async connect(): Promise<void> {
    if (this.closed) throw new Error('FilesystemTransport is closed');
    if (this.connected) return;
    // kombu requires the data folders to exist; creating them is a harmless convenience.
    const dirs = [this.dataFolderIn, this.dataFolderOut, this.controlFolder, this.claimDir,
      celeriacPath(this.dataFolderIn, BAD_DIR), celeriacPath(this.dataFolderOut, TMP_DIR)];
    if (this.storeProcessed) dirs.push(this.processedFolder);
    for (const dir of dirs) await fsp.mkdir(dir, { recursive: true });
    this.connected = true;
    await this.maintain();
    const every = Math.min(MAX_MAINTENANCE_MS, Math.max(50, this.visibilityMs / 4));
    this.maintenance = setInterval(() => void this.maintain(), every);
    this.maintenance.unref();
  }

  async declareQueue(queue: QueueDeclaration): Promise<void> {
    this.assertConnected();
    assertValidQueueName(queue.name);
    // The default exchange needs no table (kombu's Queue.declare skips queue_bind for it).
    if (!queue.exchange) return;
    this.exchangeKinds.set(queue.exchange, queue.exchangeType);
    await bindQueue(this.controlFolder, queue.exchange,
      bindingTriple(queue.exchangeType, queue.routingKey, queue.name));
  }

  async consume(queues: string[], onDelivery: DeliveryHandler): Promise<void> {
    this.assertConnected();
    queues.forEach(assertValidQueueName);
    this.queues = [...new Set(queues)];
    this.handler = onDelivery;
    this.consuming = true;
    this.startWatching();
    this.kick(0);
  }

  setPrefetch(count: number): void {
    this.prefetch = Math.max(0, Math.trunc(count));
    this.kick(0);
  }

  async addQueue(queue: string): Promise<void> {
    assertValidQueueName(queue);
    if (this.queues.includes(queue)) return;
    this.queues = [...this.queues, queue];
    this.kick(0);
  }

  async cancelQueue(queue: string): Promise<void> {
    this.queues = this.queues.filter((q) => q !== queue);
    // A scan in progress checks the list before each claim: once it ends, nothing more comes.
    await this.running;
  }

  /** Message files of `queue` waiting in the in-folder (claimed ones are not counted). */
  async queueDepth(queue: string): Promise<number> {
    this.assertConnected();
    return (await fsp.readdir(this.dataFolderIn)).filter((name) => queueOfFileName(name) === queue).length;
  }

  async stopConsuming(): Promise<void> {
    this.consuming = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.watcher?.close();
    this.watcher = null;
    await this.running;
  }

  async ack(delivery: Delivery): Promise<void> {
    const claim = this.takeClaim(delivery, 'ack');
    if (claim) await this.finish(claim);
  }

  async reject(delivery: Delivery, requeue: boolean): Promise<void> {
    const claim = this.takeClaim(delivery, 'reject');
    if (!claim) return;
    // requeue: a new name puts it at the tail, as kombu's _restore re-publishes it.
    if (requeue) await this.putBack(claim, messageFileName(claim.queue));
    else await this.finish(claim);
  }

  async publish(request: PublishRequest): Promise<void> {
    this.assertConnected();
    const { message, exchange, routingKey } = request;
    const queues = exchange === ''
      ? [routingKey].filter((q) => q !== '')
      : routeQueues(this.exchangeKinds.get(exchange) ?? 'direct',
        await readExchangeTable(this.controlFolder, exchange), routingKey);
    if (queues.length === 0) {
      // kombu drops it too (no deadletter_queue configured); say so instead of silently.
      this.log.warn(`message dropped: no queue bound to exchange ${JSON.stringify(exchange)} `
        + `for routing key ${JSON.stringify(routingKey)}`);
      return;
    }
    const data = JSON.stringify(encodeEnvelope(message, exchange, routingKey));
    for (const queue of queues) {
      assertValidQueueName(queue);
      const name = messageFileName(queue);
      const tmp = celeriacPath(this.dataFolderOut, TMP_DIR, name);
      await fsp.writeFile(tmp, data).catch(async (err: unknown) => {
        if (errCode(err) !== 'ENOENT') throw err;
        await fsp.mkdir(path.dirname(tmp), { recursive: true }); // someone cleaned the folder
        await fsp.writeFile(tmp, data);
      });
      await fsp.rename(tmp, path.join(this.dataFolderOut, name));
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await this.stopConsuming();
    this.closed = true;
    if (this.maintenance) clearInterval(this.maintenance);
    this.maintenance = null;
    await this.maintaining;
    const claims = [...this.unacked.values()];
    this.unacked.clear();
    // Original names: unacked messages go back where they were in the queue (head, not tail).
    for (const claim of claims) await this.putBack(claim, claim.name);
    if (this.connected) await fsp.rmdir(this.claimDir).catch(() => undefined);
  }

  /** Unacked deliveries currently held by this consumer. */
  get unackedCount(): number {
    return this.unacked.size;
  }

  private assertConnected(): void {
    if (this.closed) throw new Error('FilesystemTransport is closed');
    if (!this.connected) throw new Error('FilesystemTransport is not connected (call connect())');
  }

  private capacity(): number {
    return this.prefetch === 0 ? Number.POSITIVE_INFINITY : this.prefetch - this.unacked.size;
  }

  private takeClaim(delivery: Delivery, op: string): Claim | null {
    let claim = this.unacked.get(delivery);
    let key: Delivery | undefined = delivery;
    if (!claim) {
      // Accept a copy of the delivery object too; the tag is unique among our own claims.
      for (const [d, c] of this.unacked) {
        if (d.deliveryTag === delivery.deliveryTag && c.queue === delivery.queue) {
          claim = c;
          key = d;
          break;
        }
      }
    }
    if (!claim || !key) {
      this.log.warn(`${op} of unknown delivery ${delivery.deliveryTag} (queue ${delivery.queue}) ignored`);
      return null;
    }
    this.unacked.delete(key);
    this.kick(0);
    return claim;
  }

  /** ack / reject(false): delete, or keep in processed_folder like kombu's store_processed. */
  private async finish(claim: Claim): Promise<void> {
    try {
      if (this.storeProcessed) await moveFile(claim.path, path.join(this.processedFolder, claim.name));
      else await fsp.unlink(claim.path);
    } catch (err) {
      this.lostClaim(claim, err);
    }
  }

  private async putBack(claim: Claim, name: string): Promise<void> {
    try {
      await markRedelivered(claim.path);
      await fsp.rename(claim.path, path.join(this.dataFolderIn, name));
    } catch (err) {
      this.lostClaim(claim, err);
    }
  }

  private lostClaim(claim: Claim, err: unknown): void {
    if (errCode(err) !== 'ENOENT') throw err;
    // Another consumer judged us dead (no heartbeat for visibilityTimeout) and requeued it.
    this.log.warn(`claimed message ${claim.name} was already restored by another consumer`);
  }

  /** Heartbeat + orphan recovery; one run at a time (a slow disk must not pile them up). */
  private maintain(): Promise<void> {
    if (!this.connected || this.closed) return Promise.resolve();
    this.maintaining ??= this.maintainOnce().finally(() => {
      this.maintaining = null;
    });
    return this.maintaining;
  }

  private async maintainOnce(): Promise<void> {
    try {
      const now = new Date();
      await fsp.utimes(this.claimDir, now, now).catch(async (err: unknown) => {
        if (errCode(err) !== 'ENOENT') throw err;
        await fsp.mkdir(this.claimDir, { recursive: true });
      });
      const restored = await recoverOrphanClaims({
        claimsRoot: celeriacPath(this.dataFolderIn, CLAIMS_DIR),
        ownDir: this.claimDir,
        inbox: this.dataFolderIn,
        host: this.host,
        visibilityMs: this.visibilityMs,
      }, this.claimName);
      if (restored > 0) {
        this.log.warn(`restored ${restored} message(s) claimed by a consumer that is gone`);
        this.kick(0);
      }
    } catch (err) {
      this.log.warn(`filesystem transport maintenance failed: ${(err as Error).message}`);
    }
  }

  private startWatching(): void {
    if (this.watcher) return;
    try {
      // A wake-up hint only: polling stays the source of truth (fs.watch is unreliable on NFS).
      this.watcher = fs.watch(this.dataFolderIn, () => this.kick(0));
      this.watcher.on('error', () => {
        this.watcher?.close();
        this.watcher = null;
      });
    } catch {
      this.watcher = null;
    }
  }

  private kick(delay: number): void {
    if (!this.consuming) return;
    if (this.running) {
      this.rerun = true;
      return;
    }
    if (this.timer) {
      if (delay > 0) return;
      clearTimeout(this.timer);
    }
    this.timer = setTimeout(() => this.loop(), delay);
  }

  private loop(): void {
    this.timer = null;
    this.running = this.scan()
      .catch((err: unknown) => {
        this.log.warn(`scan of ${this.dataFolderIn} failed: ${(err as Error).message}`);
        return false;
      })
      .then((more) => {
        this.running = null;
        const again = more || this.rerun;
        this.rerun = false;
        this.kick(again ? 0 : this.pollInterval);
      });
  }

  /** One pass: claim and deliver up to the free prefetch slots. True if it should run again now. */
  private async scan(): Promise<boolean> {
    if (this.capacity() <= 0) return false;
    const byQueue = await this.listQueues();
    let delivered = false;
    const order = this.queues.map((_, i) => this.queues[(this.roundRobin + i) % this.queues.length]);
    this.roundRobin = (this.roundRobin + 1) % Math.max(1, this.queues.length);
    // Round-robin across queues like kombu's FairCycle; FIFO by name within each queue.
    while (this.consuming && this.capacity() > 0) {
      let progressed = false;
      for (const queue of order) {
        const names = byQueue.get(queue);
        // A queue cancelled during this pass (cancel_consumer) gets nothing more.
        if (!names || names.length === 0 || !this.queues.includes(queue)) continue;
        progressed = true;
        while (names.length > 0 && this.consuming && this.capacity() > 0) {
          if (await this.tryDeliver(names.shift() as string, queue)) {
            delivered = true;
            break;
          }
        }
      }
      if (!progressed) break;
    }
    return delivered && this.capacity() > 0;
  }

  private async listQueues(): Promise<Map<string, string[]>> {
    const wanted = new Set(this.queues);
    const byQueue = new Map<string, string[]>();
    const now = Date.now();
    for (const name of await fsp.readdir(this.dataFolderIn)) {
      const queue = queueOfFileName(name);
      if (queue === null || !wanted.has(queue)) continue;
      const retryAt = this.deferred.get(name);
      if (retryAt !== undefined && retryAt > now) continue;
      let list = byQueue.get(queue);
      if (!list) byQueue.set(queue, (list = []));
      list.push(name);
    }
    for (const list of byQueue.values()) list.sort(compareMessageNames);
    for (const [name, retryAt] of this.deferred) if (retryAt <= now) this.deferred.delete(name);
    return byQueue;
  }

  /** Claim by rename (the winner among consumers), then parse and hand over. */
  private async tryDeliver(name: string, queue: string): Promise<boolean> {
    const src = path.join(this.dataFolderIn, name);
    const dst = path.join(this.claimDir, name);
    try {
      await fsp.rename(src, dst);
    } catch (err) {
      if (errCode(err) !== 'ENOENT') throw err;
      // Usually the file went to another consumer; rarely our claim folder was removed under us.
      if (!fs.existsSync(this.claimDir)) await fsp.mkdir(this.claimDir, { recursive: true });
      return false;
    }
    let envelope: VirtualEnvelope;
    let raw: string | null = null;
    try {
      raw = await fsp.readFile(dst, 'utf8');
      envelope = decodeEnvelope(raw);
    } catch (err) {
      await this.quarantine(name, dst, err as Error, raw);
      return false;
    }
    const claim: Claim = { name, path: dst, queue };
    const info = envelope.properties.delivery_info;
    const doc = envelope as unknown as Record<string, unknown>;
    const delivery: Delivery = {
      message: envelopeToMessage(envelope),
      deliveryTag: envelope.properties.delivery_tag,
      queue,
      exchange: typeof info.exchange === 'string' ? info.exchange : '',
      routingKey: typeof info.routing_key === 'string' ? info.routing_key : queue,
      redelivered: doc.redelivered === true || info.redelivered === true,
    };
    this.unacked.set(delivery, claim);
    try {
      this.handler?.(delivery);
    } catch (err) {
      this.log.warn(`delivery handler threw on ${name}; message stays unacked: ${(err as Error).message}`);
    }
    return true;
  }

  /**
   * Not an envelope. If it is fresh and not JSON it may be a Python write still in progress
   * (the writer keeps writing into the renamed file), so put it back and retry shortly; otherwise
   * move it to `.celeriac/bad` with the reason next to it.
   */
  private async quarantine(name: string, claimed: string, err: Error, raw: string | null): Promise<void> {
    const st = await fsp.stat(claimed);
    const partial = raw !== null && !parsesAsJson(raw);
    if (partial && Date.now() - st.mtimeMs < PARTIAL_WRITE_GRACE_MS) {
      await fsp.rename(claimed, path.join(this.dataFolderIn, name));
      this.deferred.set(name, Date.now() + DEFER_RETRY_MS);
      return;
    }
    const bad = celeriacPath(this.dataFolderIn, BAD_DIR, name);
    await fsp.mkdir(path.dirname(bad), { recursive: true });
    await fsp.rename(claimed, bad);
    const reason = st.isDirectory() ? 'a directory, not a message file' : err.message;
    await replaceFile(`${bad}.reason`, `${reason}\n`).catch(() => undefined);
    this.log.warn(`invalid message file ${name} moved to ${bad}: ${reason}`);
  }
}
