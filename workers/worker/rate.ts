/**
 * Celery's task rate limits: the rate strings of celery/utils/time.py rate(), kombu's TokenBucket
 * (kombu/utils/limits.py), and the per-task-name waiting lines the consumer keeps in front of the
 * pool (celery/worker/consumer/consumer.py _limit_task / _schedule_bucket_request): a task over its
 * rate waits for a token, in arrival order; it is never dropped nor failed.
 */
import { performance } from 'node:perf_hooks';

/** A task's rate_limit as Celery accepts it: 'N/s', 'N/m', 'N/h', a bare number (per second), or off. */
export type RateLimit = string | number | null | undefined;

const MODIFIERS: Readonly<Record<string, (n: number) => number>> = {
  s: (n) => n,
  m: (n) => n / 60,
  h: (n) => n / 3600,
};

/** Python's float(): a decimal (with optional sign, exponent, surrounding blanks), inf or nan. */
function pyFloat(text: string): number {
  const t = text.trim();
  if (/^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i.test(t)) return Number(t);
  if (/^[+-]?(inf|infinity)$/i.test(t)) return t.startsWith('-') ? -Infinity : Infinity;
  throw new RangeError(`could not convert string to float: '${text}'`);
}

/**
 * celery.utils.time.rate: tokens per second, 0 when off. Throws a RangeError (Python's ValueError)
 * for a count that is not a number and for a unit other than s, m or h.
 */
export function parseRate(r: RateLimit): number {
  if (r === null || r === undefined || r === '' || r === 0) return 0;
  if (typeof r === 'number') return r;
  const slash = r.indexOf('/');
  const ops = slash < 0 ? r : r.slice(0, slash);
  const unit = slash < 0 ? 's' : r.slice(slash + 1) || 's';
  const modifier = MODIFIERS[unit];
  // Celery raises a KeyError here; as a ValueError the rate_limit command answers with its message.
  if (!modifier) throw new RangeError(`unknown rate unit '${unit}' (use s, m or h)`);
  return modifier(pyFloat(ops)) || 0;
}

/** kombu's TokenBucket: `capacity` tokens at most, refilled at `fillRate` tokens a second. */
export class TokenBucket {
  private tokens: number;
  private timestamp: number;

  constructor(
    readonly fillRate: number,
    readonly capacity = 1,
    /** Seconds on a monotonic clock (injectable for tests). */
    private readonly now: () => number = () => performance.now() / 1000,
  ) {
    this.tokens = capacity;
    this.timestamp = now();
  }

  /** Take `tokens` when that many are there (all or none). */
  canConsume(tokens = 1): boolean {
    if (tokens > this.level()) return false;
    this.tokens -= tokens;
    return true;
  }

  /** Seconds until `tokens` are there. */
  expectedTime(tokens = 1): number {
    const level = this.level();
    return (Math.max(tokens, level) - level) / this.fillRate;
  }

  private level(): number {
    // The timestamp advances even at capacity, or idle time would later count as refill time.
    const now = this.now();
    if (this.tokens < this.capacity) this.tokens = Math.min(this.capacity, this.tokens + this.fillRate * (now - this.timestamp));
    this.timestamp = now;
    return this.tokens;
  }
}

interface Line<T> {
  bucket: TokenBucket;
  waiting: T[];
  timer: NodeJS.Timeout | null;
}

/**
 * One token bucket and one waiting line per task name. `submit` hands an item to `release` at once
 * when its name is not limited or has a token, else queues it; a timer releases it when a token is
 * due. Items of other names never wait behind it.
 */
export class RateLimiter<T> {
  private readonly lines = new Map<string, Line<T>>();

  constructor(
    private readonly release: (item: T) => void,
    private readonly now?: () => number,
  ) {}

  /** perSecond <= 0 (or not finite) means no limit. */
  submit(name: string, perSecond: number, item: T): void {
    const line = this.lineFor(name, perSecond);
    if (!line) return this.release(item);
    line.waiting.push(item);
    this.drain(name, line);
  }

  /**
   * A new rate for `name` (the rate_limit command): a fresh full bucket, as Celery's
   * reset_rate_limits makes; the tasks waiting keep their order, or all go now when it is off.
   */
  setRate(name: string, perSecond: number): void {
    const line = this.lines.get(name);
    if (!line) return;
    if (line.timer) clearTimeout(line.timer);
    line.timer = null;
    if (!(perSecond > 0 && Number.isFinite(perSecond))) {
      this.lines.delete(name);
      for (const item of line.waiting) this.release(item);
      return;
    }
    line.bucket = new TokenBucket(perSecond, 1, this.now);
    this.drain(name, line);
  }

  /** Items waiting for a token, all names. */
  get size(): number {
    let n = 0;
    for (const line of this.lines.values()) n += line.waiting.length;
    return n;
  }

  pending(): T[] {
    return [...this.lines.values()].flatMap((l) => l.waiting);
  }

  /** Take out (and return) the waiting items that match. */
  remove(match: (item: T) => boolean): T[] {
    const out: T[] = [];
    for (const line of this.lines.values()) {
      for (let i = line.waiting.length - 1; i >= 0; i--) if (match(line.waiting[i]!)) out.unshift(...line.waiting.splice(i, 1));
    }
    return out;
  }

  /** Forget everything (warm shutdown gives the messages back); returns what was waiting. */
  clear(): T[] {
    const out = this.pending();
    for (const line of this.lines.values()) if (line.timer) clearTimeout(line.timer);
    this.lines.clear();
    return out;
  }

  private lineFor(name: string, perSecond: number): Line<T> | null {
    const existing = this.lines.get(name);
    if (!(perSecond > 0 && Number.isFinite(perSecond))) {
      // The option may have been switched off while tasks wait: let them go first, in order.
      if (existing) this.setRate(name, 0);
      return null;
    }
    if (existing) {
      if (existing.bucket.fillRate !== perSecond) existing.bucket = new TokenBucket(perSecond, 1, this.now);
      return existing;
    }
    const line: Line<T> = { bucket: new TokenBucket(perSecond, 1, this.now), waiting: [], timer: null };
    this.lines.set(name, line);
    return line;
  }

  /** _schedule_bucket_request: release while tokens last, then wake up when the next one is due. */
  private drain(name: string, line: Line<T>): void {
    if (line.timer) return; // already waiting for the next token
    while (line.waiting.length) {
      if (!line.bucket.canConsume(1)) {
        const ms = Math.max(1, Math.ceil(line.bucket.expectedTime(1) * 1000));
        line.timer = setTimeout(() => {
          line.timer = null;
          if (this.lines.get(name) === line) this.drain(name, line);
        }, ms);
        return;
      }
      this.release(line.waiting.shift()!);
    }
  }
}
