/**
 * Celery's Heart (celery/worker/heartbeat.py): worker-online when the worker starts, a
 * worker-heartbeat every `freq` seconds (2.0), worker-offline when it stops. Monitors (Flower,
 * celery.events.state.State) count a worker alive while heartbeats keep coming: a worker is
 * shown offline once freq * 2 seconds pass without one.
 *
 * Celery sends these even without -E (celery/worker/consumer/events.py: only task events need
 * it; --without-heartbeat turns these off).
 */
import type { EventEmitter } from 'node:events';
import { loadavg, type as osType } from 'node:os';
import type { EventDispatcher } from './dispatcher';

/** Celery's SOFTWARE_INFO (celery/worker/state.py), naming Celeriac: keep sw_ver in step with package.json. */
export const SOFTWARE_INFO = { sw_ident: 'celeriac', sw_ver: '0.1.0', sw_sys: platformSystem() } as const;

/** Python's platform.system(): 'Linux', 'Darwin', 'Windows'. */
function platformSystem(): string {
  const t = osType();
  return t === 'Windows_NT' ? 'Windows' : t;
}

/** celery.utils.sysinfo.load_average(): each value rounded up to 2 decimals (zeros on Windows). */
export function loadAverage(): number[] {
  return loadavg().map((l) => Math.ceil(l * 1e2) / 1e2);
}

export interface HeartStats {
  /** Tasks running now (Celery's len(active_requests)). */
  active(): number;
  /** Tasks started since the worker began (Celery's all_total_count: counted when accepted). */
  processed(): number;
  /** This worker run's uuid (not a Celery field: `celeriac workers stop --uuid` finds a worker by it). */
  uuid?: string;
}

/** The worker's numbers for heartbeats, counted from its own 'task-started' events. */
export function workerStats(worker: EventEmitter & { readonly activeCount: number; readonly uuid?: string }): HeartStats & { detach(): void } {
  let started = 0;
  const onStarted = (): void => {
    started++;
  };
  worker.on('task-started', onStarted);
  return {
    active: () => worker.activeCount,
    processed: () => started,
    uuid: worker.uuid,
    detach: () => worker.off('task-started', onStarted),
  };
}

export class Heart {
  private timer: NodeJS.Timeout | null = null;
  private inFlight = false;

  constructor(
    private readonly dispatcher: Pick<EventDispatcher, 'send'>,
    private readonly stats: HeartStats,
    /** Seconds between heartbeats (Celery's default 2.0; monitors read it from `freq`). */
    readonly interval = 2.0,
  ) {}

  private send(type: string): Promise<void> {
    return this.dispatcher.send(type, {
      freq: this.interval,
      active: this.stats.active(),
      processed: this.stats.processed(),
      loadavg: loadAverage(),
      ...SOFTWARE_INFO,
      // Not `uuid`: in Celery's events that field is a task's id.
      ...(this.stats.uuid ? { worker_uuid: this.stats.uuid } : {}),
    });
  }

  /**
   * worker-online now, then heartbeats on a timer of the event loop. A task that keeps the loop
   * busy (CPU-bound JavaScript) delays them and can make monitors see the worker as offline: run
   * such tasks in the threads or processes pool (-P).
   */
  start(): Promise<void> {
    if (this.timer) return Promise.resolve();
    this.timer = setInterval(() => this.beat(), this.interval * 1000);
    this.timer.unref(); // the heart never keeps the process alive by itself
    return this.send('worker-online');
  }

  /** A beat is skipped while the previous one is still on its way: a slow broker gets no backlog. */
  private beat(): void {
    if (this.inFlight) return;
    this.inFlight = true;
    void this.send('worker-heartbeat').finally(() => (this.inFlight = false));
  }

  /** worker-offline, waited for at most `timeoutMs` so a dead broker does not hold up shutdown. */
  async stop(timeoutMs = 2_000): Promise<void> {
    if (!this.timer) return;
    clearInterval(this.timer);
    this.timer = null;
    let t: NodeJS.Timeout | undefined;
    const gaveUp = new Promise<void>((resolve) => (t = setTimeout(resolve, timeoutMs)));
    await Promise.race([this.send('worker-offline'), gaveUp]);
    clearTimeout(t);
  }
}
