/**
 * sca_rhythm.progress in TypeScript: a task reports how far it got as a STARTED state whose meta
 * is {name, fraction_done, done, total, units, time_remaining_sec, wt_avg_rate, avg_rate}, at most
 * once a second; the ETA comes from an exponentially weighted rate (alpha 0.9), 1e100 standing in
 * for "unknown" (JSON has no infinity). Python's AsyncResult.info, Flower and a workflow's view
 * show it as they show a Python task's.
 */
export interface ProgressReport {
  name: string;
  fraction_done: number | null;
  done: number;
  total: number | null;
  units: string | null;
  time_remaining_sec: number | null;
  wt_avg_rate: number | null;
  avg_rate: number | null;
}

/** "Infinity", as sca-rhythm writes it. */
export const UNKNOWN_ETA = 1e100;

/** sca-rhythm's ExponentialWeightedAverage (bias-corrected). */
export class ExponentialWeightedAverage {
  private s: number;
  private w = 1;

  constructor(private readonly alpha = 0.9, start = 0) {
    this.s = start;
  }

  update(x: number): number {
    this.s = this.alpha * this.s + (1 - this.alpha) * x;
    this.w *= this.alpha;
    return this.s / (1 - this.w);
  }
}

/** sca-rhythm's ETA: seconds left from successive fractions done. `now` is in seconds. */
export class Eta {
  avgRate: number | null = null;
  wtAvgRate: number | null = null;
  private progress = 0;
  private lastUpdate: number | null = null;
  private start: number | null = null;
  private readonly average: ExponentialWeightedAverage;

  constructor(alpha = 0.9, private readonly now: () => number = () => performance.now() / 1000) {
    this.average = new ExponentialWeightedAverage(alpha, 0);
  }

  update(progress: number): number {
    if (!(progress >= 0 && progress <= 1)) return 0;
    this.start ??= this.now();
    if (this.lastUpdate === null) {
      this.lastUpdate = this.now();
      this.progress = progress;
      return UNKNOWN_ETA;
    }
    const diff = progress - this.progress;
    this.progress = progress;
    const elapsed = this.now() - this.lastUpdate;
    this.lastUpdate = this.now();
    this.wtAvgRate = this.average.update(diff / (1e-6 + elapsed));
    // math.isclose(rate, 0, rel_tol=1e-05, abs_tol=1e-08) for a comparison with 0 is |rate| <= 1e-08.
    const remaining = Math.abs(this.wtAvgRate) <= 1e-8 ? UNKNOWN_ETA : (1 - progress) / this.wtAvgRate;
    this.avgRate = progress / (1e-6 + (this.now() - this.start));
    return remaining;
  }
}

export interface ProgressOptions {
  name?: string;
  total?: number | null;
  units?: string | null;
  /** Seconds between reports (default 1). */
  throttle?: number;
  unitScale?: number;
  /** Where each report goes (a task's `this.updateState('STARTED', report)` by default in progress()). */
  report?: (report: ProgressReport) => unknown;
  now?: () => number;
}

/** sca-rhythm's Progress: update(done) reports at most once per `throttle` seconds (the first call always). */
export class Progress {
  readonly name: string;
  readonly units: string | null;
  total: number | null;
  private readonly eta: Eta;
  private readonly unitScale: number;
  private readonly throttle: number;
  private readonly now: () => number;
  private lastCall = Number.NEGATIVE_INFINITY;

  constructor(private readonly opts: ProgressOptions = {}) {
    this.name = opts.name ?? '';
    this.units = opts.units ?? null;
    this.unitScale = opts.unitScale ?? 1;
    this.total = opts.total === undefined || opts.total === null ? null : opts.total * this.unitScale;
    this.throttle = opts.throttle ?? 1;
    this.now = opts.now ?? (() => performance.now() / 1000);
    this.eta = new Eta(0.9, this.now);
  }

  /** The report, or null when throttled (nothing written). */
  async update(done: number): Promise<ProgressReport | null> {
    if (this.now() - this.lastCall < this.throttle) return null;
    const report = this.build(done);
    await this.opts.report?.(report);
    this.lastCall = this.now();
    return report;
  }

  private build(rawDone: number): ProgressReport {
    const done = rawDone * this.unitScale;
    let fraction: number | null = null;
    let remaining: number | null = null;
    let wtAvgRate: number | null = null;
    let avgRate: number | null = null;
    if (this.total) {
      fraction = done / this.total;
      remaining = this.eta.update(fraction);
      if (this.eta.wtAvgRate) wtAvgRate = this.total * this.eta.wtAvgRate;
      if (this.eta.avgRate) avgRate = this.total * this.eta.avgRate;
    }
    return { name: this.name, fraction_done: fraction, done, total: this.total, units: this.units, time_remaining_sec: remaining, wt_avg_rate: wtAvgRate, avg_rate: avgRate };
  }
}

/** A Progress that writes each report as the task's STARTED state (sca-rhythm's update_progress). */
export function progress(task: { updateState(state: string, meta?: unknown): Promise<void> }, opts: Omit<ProgressOptions, 'report'> = {}): Progress {
  return new Progress({ ...opts, report: (r) => task.updateState('STARTED', r) });
}
