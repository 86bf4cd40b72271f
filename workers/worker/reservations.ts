/**
 * The tasks a worker holds but does not run yet (Celery's reserved and scheduled requests): the
 * ready line, ETA tasks waiting for their time, and tasks waiting for a rate-limit token. Their
 * messages stay unacknowledged, so the worker raises prefetch for the ones held without a slot.
 */
import type { Job } from './job';
import { parseRate, RateLimiter, type RateLimit } from './rate';

export interface ReservationHooks {
  /** A job passed its rate limit and joined the ready line. */
  admitted(job: Job): void;
  /** An ETA job's time came (it is no longer held). */
  etaDue(job: Job): void;
  /** The number of held-without-a-slot jobs changed (prefetch follows it). */
  changed(): void;
  warn(message: string): void;
}

export class Reservations {
  private readonly ready: Job[] = [];
  private readonly etaTimers = new Map<Job, NodeJS.Timeout>();
  /** Tasks over their rate_limit, waiting for a token, in arrival order per task name. */
  private readonly limiter: RateLimiter<Job>;
  /** Rates set live by the rate_limit control command, by task name. */
  private readonly rateOverrides = new Map<string, number>();

  constructor(private readonly hooks: ReservationHooks) {
    this.limiter = new RateLimiter<Job>((job) => {
      this.ready.push(job);
      hooks.admitted(job);
    });
  }

  get readyCount(): number {
    return this.ready.length;
  }

  get etaCount(): number {
    return this.etaTimers.size;
  }

  get throttledCount(): number {
    return this.limiter.size;
  }

  get size(): number {
    return this.ready.length + this.etaTimers.size + this.limiter.size;
  }

  /** The next job to run, if any. */
  take(): Job | undefined {
    return this.ready.shift();
  }

  /** Hold a job until its ETA (ms from now). setTimeout caps at ~24.8 days: longer ETAs re-arm. */
  holdUntilEta(job: Job, delay: number): void {
    const arm = (ms: number): NodeJS.Timeout =>
      setTimeout(() => {
        const left = (job.request.eta?.getTime() ?? 0) - Date.now();
        if (left > 0) return void this.etaTimers.set(job, arm(left));
        this.etaTimers.delete(job);
        this.hooks.changed();
        this.hooks.etaDue(job);
      }, Math.min(ms, 2 ** 31 - 1));
    this.etaTimers.set(job, arm(delay));
    this.hooks.changed();
  }

  /** Through the task's rate limit (at once when it has none) into the ready line. */
  submit(job: Job): void {
    const name = job.request.task;
    const rate = this.rateOverrides.get(name) ?? this.optionRate(job);
    const before = this.limiter.size;
    this.limiter.submit(name, rate, job);
    if (this.limiter.size !== before) this.hooks.changed();
  }

  /** The rate_limit command: a new rate for this name (throws on a bad rate); 0/null switches it off. */
  setRate(name: string, limit: RateLimit): void {
    const perSecond = parseRate(limit);
    this.rateOverrides.set(name, perSecond);
    this.limiter.setRate(name, perSecond);
    this.hooks.changed();
  }

  /** Take every held job that matches out of all three lines. */
  remove(match: (job: Job) => boolean): Job[] {
    const out: Job[] = [];
    for (const [job, timer] of [...this.etaTimers]) {
      if (!match(job)) continue;
      clearTimeout(timer);
      this.etaTimers.delete(job);
      out.push(job);
    }
    out.push(...this.limiter.remove(match));
    for (let i = this.ready.length - 1; i >= 0; i--) {
      if (match(this.ready[i]!)) out.push(...this.ready.splice(i, 1));
    }
    if (out.length) this.hooks.changed();
    return out;
  }

  /** Forget everything held (warm shutdown: the messages go back to the broker with the channel). */
  clear(): void {
    for (const t of this.etaTimers.values()) clearTimeout(t);
    this.etaTimers.clear();
    this.limiter.clear();
    this.ready.length = 0;
  }

  /** For inspect reserved / scheduled. */
  reserved(): Job[] {
    return [...this.ready, ...this.limiter.pending()];
  }

  scheduled(): Job[] {
    return [...this.etaTimers.keys()];
  }

  /** The task's own rate_limit; a bad one is logged and ignored rather than failing its tasks. */
  private optionRate(job: Job): number {
    try {
      return parseRate(job.options.rate_limit);
    } catch (err) {
      this.hooks.warn(`Task ${job.request.task}: invalid rate_limit ignored: ${(err as Error).message}`);
      return 0;
    }
  }
}
