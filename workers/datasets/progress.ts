/**
 * Progress of a long step, reported as sca-rhythm's Progress reports it: a STARTED state whose
 * meta is {name, fraction_done, done, total, units, time_remaining_sec, wt_avg_rate, avg_rate},
 * written at most once a second (the first report at once).
 */
export interface ProgressMeta {
  name: string;
  fraction_done: number | null;
  done: number;
  total: number | null;
  units: string | null;
  time_remaining_sec: number | null;
  wt_avg_rate: number | null;
  avg_rate: number | null;
}

/** Where reports go: a task's update_state('STARTED', meta). Errors in it never fail the step. */
export type ProgressSink = (meta: ProgressMeta) => Promise<void> | void;

/** sca-rhythm's stand-in for infinity ("unknown") in JSON. */
const UNKNOWN = 1e100;

export class ByteProgress {
  private last = -Infinity;
  private readonly started = performance.now();
  private prev: { at: number; fraction: number } | null = null;
  private weighted = 0;
  private weight = 1;

  constructor(
    private readonly sink: ProgressSink,
    private readonly name: string,
    private readonly total: number | null,
    private readonly units = 'bytes',
    private readonly throttleMs = 1000,
  ) {}

  /** Reports `done` unless the last report was under a second ago (force: always). */
  update(done: number, force = false): void {
    const now = performance.now();
    if (!force && now - this.last < this.throttleMs) return;
    this.last = now;
    void Promise.resolve(this.sink(this.meta(done, now))).catch(() => undefined);
  }

  private meta(done: number, now: number): ProgressMeta {
    const base = { name: this.name, done, total: this.total, units: this.units };
    if (!this.total) return { ...base, fraction_done: null, time_remaining_sec: null, wt_avg_rate: null, avg_rate: null };
    const fraction = done / this.total;
    let remaining = UNKNOWN;
    let wtRate: number | null = null;
    if (this.prev) {
      // Exponentially weighted rate (alpha 0.9, bias-corrected), as sca_rhythm.progress.ETA.
      const rate = (fraction - this.prev.fraction) / (1e-6 + (now - this.prev.at) / 1000);
      this.weighted = 0.9 * this.weighted + 0.1 * rate;
      this.weight *= 0.9;
      const avg = this.weighted / (1 - this.weight);
      wtRate = this.total * avg;
      if (Math.abs(avg) > 1e-8) remaining = (1 - fraction) / avg;
    }
    this.prev = { at: now, fraction };
    const avgRate = this.total * (fraction / (1e-6 + (now - this.started) / 1000));
    return { ...base, fraction_done: fraction, time_remaining_sec: remaining, wt_avg_rate: wtRate, avg_rate: this.prev ? avgRate : null };
  }
}
