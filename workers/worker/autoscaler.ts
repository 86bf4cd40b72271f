/**
 * Celery's Autoscaler (celery/worker/autoscale.py): once a second, and when a task arrives, grow the
 * pool towards `max` while more tasks are held than it has slots, and shrink it towards `min` once
 * nothing new arrived and nothing grew for `keepalive` seconds. Prefetch follows the pool size.
 */
import { performance } from 'node:perf_hooks';

export interface Scalable {
  /** Slots the pool has now. */
  readonly concurrency: number;
  /** Tasks held that want a slot: running plus waiting (Celery's len(reserved_requests)). */
  readonly demand: number;
  setConcurrency(n: number): void;
  log(message: string): void;
}

export interface AutoscaleInfo {
  max: number;
  min: number;
  current: number;
  qty: number;
}

/** Parse Celery's --autoscale value 'max,min' (min defaults to 0). */
export function parseAutoscale(text: string): { max: number; min: number } {
  const [max, min] = text.split(',').map((s) => s.trim());
  return { max: Number(max), min: min ? Number(min) : 0 };
}

export class Autoscaler {
  private lastScaleUp: number | null = null;
  private lastReceived: number | null = null;
  private timer: NodeJS.Timeout | null = null;
  /** When idleness is first measured: nothing has arrived or grown yet. */
  constructor(
    private readonly target: Scalable,
    public max: number,
    public min: number,
    private readonly keepaliveSeconds = 30,
    private readonly now: () => number = () => performance.now() / 1000,
  ) {}

  /** The pool size to start with: min, but always at least one slot. */
  get initial(): number {
    return Math.max(1, this.min);
  }

  start(): void {
    this.timer ??= setInterval(() => this.maybeScale(), 1000);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** Arrivals postpone shrinking; growing waits for the next tick (one log line a second at most). */
  onTaskReceived(): void {
    this.lastReceived = this.now();
  }

  /** One autoscale step; true when the size changed. */
  maybeScale(): boolean {
    const procs = this.target.concurrency;
    const want = Math.min(this.target.demand, this.max);
    if (want > procs) {
      this.lastScaleUp = this.now();
      return this.resize(want, `Scaling up ${want - procs} processes.`);
    }
    // Never below one slot: a pool of 0 would mean "prefetch unlimited" and no way to run.
    const floor = Math.max(this.target.demand, this.min, 1);
    if (floor < procs && this.idleLongEnough()) return this.resize(floor, `Scaling down ${procs - floor} processes.`);
    return false;
  }

  /** The autoscale control command: a new range; the pool is brought inside it at once. */
  update(max: number | null, min: number | null): [number, number] {
    if (max !== null) this.max = max;
    if (min !== null) this.min = min;
    const procs = this.target.concurrency;
    if (procs > this.max) this.resize(this.max, `Scaling down ${procs - this.max} processes.`);
    else if (procs < this.min) this.resize(this.min, `Scaling up ${this.min - procs} processes.`);
    return [this.max, this.min];
  }

  info(): AutoscaleInfo {
    return { max: this.max, min: this.min, current: this.target.concurrency, qty: this.target.demand };
  }

  private idleLongEnough(): boolean {
    const last = Math.max(this.lastScaleUp ?? -Infinity, this.lastReceived ?? -Infinity);
    // Celery never shrinks before anything happened at all; nor do we, until keepalive has passed since start.
    const since = Number.isFinite(last) ? last : (this.startedAt ??= this.now());
    return this.now() - since > this.keepaliveSeconds;
  }

  private startedAt: number | null = null;

  private resize(n: number, message: string): boolean {
    this.target.log(message);
    this.target.setConcurrency(n);
    return true;
  }
}
