/**
 * Result writes that wait out an outage of the result backend, in memory, instead of holding the
 * task that produced them.
 *
 * Why: a task's slot is free only once its result is stored. With Redis unreachable every write
 * would wait for the reconnect, so after -c tasks the worker would stop running anything (and a
 * warm shutdown would hang) until Redis is back. Celery's Redis backend retries a write ~20 times
 * over ~20 s in the pool child, blocking it, then drops the result. Here the write is parked, the
 * task completes (acks_late messages are acked then, as Celery acks after a failed write too),
 * and parked writes go out in order, retried with exponential backoff, once the backend answers.
 * A result is lost only if the worker exits before the backend is back (close() says how many).
 *
 * Bounded: past `max` parked writes, park() waits for room, so a long outage slows the worker down
 * to a stop rather than growing its memory without end.
 */

export interface PendingWritesOptions<T> {
  /** Write a batch (in order); rejects when it could not. */
  write(batch: T[]): Promise<void>;
  /** False while the backend is known to be unreachable: no point trying. */
  isUp(): boolean;
  warn(msg: string): void;
  info(msg: string): void;
  /** Most writes held in memory (default 10,000). */
  max?: number;
  /** Longest wait for one batch before it counts as failed and is retried (ms, default 5,000). */
  writeTimeoutMs?: number;
}

const BATCH = 200;
const BACKOFF_START_MS = 250;
const BACKOFF_MAX_MS = 10_000;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms).unref());

export class PendingWrites<T> {
  private readonly items: T[] = [];
  private readonly roomWaiters: (() => void)[] = [];
  private pumping: Promise<void> | null = null;
  private wake: (() => void) | null = null;
  private closed = false;

  constructor(private readonly opts: PendingWritesOptions<T>) {}

  get size(): number {
    return this.items.length;
  }

  private get max(): number {
    return this.opts.max ?? 10_000;
  }

  /** Hold `item` for a later write; resolves once held (at once unless the buffer is full). */
  async park(item: T): Promise<void> {
    while (this.items.length >= this.max && !this.closed) await new Promise<void>((r) => this.roomWaiters.push(r));
    if (this.items.length === 0) this.opts.warn('result backend unreachable: result writes waiting in memory, retried with backoff until it answers');
    this.items.push(item);
    this.kick();
  }

  /** Try now (the backend reconnected); starts the retry loop if it is not running. */
  kick(): void {
    const w = this.wake;
    this.wake = null;
    w?.();
    if (this.pumping) return;
    this.pumping = this.pump().finally(() => {
      this.pumping = null;
      // Parked just as the loop ended (a waiter let in by the last batch): go again.
      if (this.items.length && !this.closed) this.kick();
    });
  }

  /** At close: write what is parked for at most `ms`; returns how many writes are left (lost). */
  async drain(ms: number): Promise<number> {
    if (this.items.length === 0) return 0;
    this.kick();
    const deadline = Date.now() + ms;
    while (this.items.length && Date.now() < deadline) await sleep(50);
    this.closed = true;
    this.wake?.();
    for (const r of this.roomWaiters.splice(0)) r();
    return this.items.length;
  }

  private async pump(): Promise<void> {
    let attempt = 0;
    let written = 0;
    while (this.items.length && !this.closed) {
      if (attempt > 0 || !this.opts.isUp()) {
        // Full jitter, doubling up to the cap; a reconnect (kick) cuts the wait short.
        const cap = Math.min(BACKOFF_MAX_MS, BACKOFF_START_MS * 2 ** Math.min(attempt, 10));
        await Promise.race([sleep(Math.random() * cap), new Promise<void>((r) => (this.wake = r))]);
        attempt++;
        if (!this.opts.isUp()) continue;
      }
      const batch = this.items.slice(0, BATCH);
      try {
        await withTimeout(this.opts.write(batch), this.opts.writeTimeoutMs ?? 5_000);
      } catch {
        attempt = Math.max(attempt, 1);
        continue;
      }
      this.items.splice(0, batch.length);
      written += batch.length;
      attempt = 0;
      for (const r of this.roomWaiters.splice(0, batch.length)) r();
    }
    if (written) this.opts.info(`result backend answers again: ${written} waiting result write(s) done`);
  }
}

export function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no answer in ${ms} ms`)), ms)));
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/**
 * A write in flight when the connection drops is resent by the client after the reconnect, and
 * would hold its task until then: 'lost' as soon as the connection closes (or after `ms`), so the
 * caller parks a copy. Writing the same document twice is harmless (the later copy is identical,
 * and the store never overwrites a SUCCESS).
 */
export function writeOrLost(connection: { once(e: 'close', f: () => void): unknown; off(e: 'close', f: () => void): unknown }, write: Promise<unknown>, ms: number): Promise<'written' | 'lost'> {
  return new Promise((resolve, reject) => {
    const lost = (): void => finish(() => resolve('lost'));
    const timer = setTimeout(lost, ms);
    connection.once('close', lost);
    const finish = (then: () => void): void => {
      clearTimeout(timer);
      connection.off('close', lost);
      then();
    };
    write.then(() => finish(() => resolve('written')), (err: unknown) => finish(() => reject(err)));
  });
}

/** Errors that say "not now" (server loading, failing over, out of memory, connection gone), not "never". */
export function isTransient(err: unknown): boolean {
  const msg = err instanceof Error ? err.message : String(err);
  return /^(LOADING|READONLY|OOM|MASTERDOWN|BUSY|TRYAGAIN|CLUSTERDOWN)\b|Connection is closed|ECONNRESET|ECONNREFUSED|EPIPE|ETIMEDOUT/.test(msg);
}
