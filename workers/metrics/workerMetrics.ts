/**
 * Prometheus metrics of one worker, in a registry of its own (prom-client's global one would mix
 * in whatever else the process registers, and could not be built twice in one process).
 *
 * Counters follow the Worker's task events (workers/worker/worker.ts, outcome.ts), by task name;
 * gauges are read when Prometheus scrapes: active and reserved tasks, concurrency, and the depth
 * of each consumed queue as the broker counts it (Transport.queueDepth).
 */
import type { Gauge, Registry } from 'prom-client';
import { lazyModule } from '../lazy';
import type { TaskRequest } from '../protocol/message';
import type { Worker } from '../worker/worker';
import type { Job } from '../worker/job';

export interface MetricsLogger {
  warn(msg: string): void;
}

/** Seconds, from fast tasks to the long ones Celery users run (Celery's default time limits are off). */
const RUNTIME_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600];

/** A scrape must answer even while the broker does not (Prometheus gives up after 10 s by default). */
const DEPTH_TIMEOUT_MS = 3000;

/** Events whose payload is { request } (see taskEvents.ts for each payload's fields). */
// Loaded by the first WorkerMetrics (--metrics-port): a worker without it never pays for it (#16).
const promClient = lazyModule<typeof import('prom-client')>('prom-client');

const COUNTED = ['task-succeeded', 'task-failed', 'task-retried', 'task-revoked', 'task-rejected'] as const;

export class WorkerMetrics {
  readonly registry: Registry;
  private readonly detachers: (() => void)[] = [];

  constructor(
    private readonly worker: Worker,
    private readonly log: MetricsLogger,
  ) {
    const { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } = promClient();
    this.registry = new Registry();
    // The node name as a label on every series: several workers on one host stay apart.
    this.registry.setDefaultLabels({ worker: worker.options.hostname });
    collectDefaultMetrics({ register: this.registry, prefix: 'celeriac_' });
    const registers = [this.registry];

    const received = new Counter({ name: 'celeriac_tasks_received_total', help: 'Task messages received, by task name', labelNames: ['name'], registers });
    this.on<TaskRequest>('task-received', (req) => received.inc({ name: req.task }));

    for (const event of COUNTED) {
      const what = event.slice('task-'.length);
      const counter = new Counter({ name: `celeriac_tasks_${what}_total`, help: `Tasks ${what}, by task name`, labelNames: ['name'], registers });
      // A message that is not a task at all is rejected without a request: counted as 'unknown'.
      this.on<{ request?: TaskRequest }>(event, (e) => counter.inc({ name: e.request?.task ?? 'unknown' }));
    }

    const runtime = new Histogram({ name: 'celeriac_task_runtime_seconds', help: 'Seconds from start to end of each task run, by task name', labelNames: ['name'], buckets: RUNTIME_BUCKETS, registers });
    // task-done ends every run (success, failure, retry, termination) with the job it ran.
    this.on<Job>('task-done', (job) => {
      if (job.timeStart !== undefined) runtime.observe({ name: job.request.task }, Math.max(0, Date.now() / 1000 - job.timeStart));
    });

    new Gauge({ name: 'celeriac_tasks_active', help: 'Tasks running now', registers, collect: gaugeOf(() => worker.activeCount) });
    new Gauge({ name: 'celeriac_tasks_reserved', help: 'Tasks received but not running yet (prefetched, ETA or waiting for a rate-limit token)', registers, collect: gaugeOf(() => worker.reservedCount) });
    new Gauge({ name: 'celeriac_worker_concurrency', help: 'Tasks the worker runs at once at most', registers, collect: gaugeOf(() => worker.options.concurrency) });
    const depth: Gauge<'queue'> = new Gauge({
      name: 'celeriac_queue_depth',
      help: 'Messages waiting in each consumed queue (not yet handed to any worker)',
      labelNames: ['queue'],
      registers,
      collect: () => this.queueDepths(depth),
    });
  }

  /** Stop following the worker's events (the registry keeps its last values). */
  close(): void {
    for (const detach of this.detachers.splice(0)) detach();
  }

  private on<T>(event: string, fn: (payload: T) => void): void {
    // The worker's emitter is untyped: each payload's shape is the worker's contract.
    const listener = (payload: unknown): void => fn(payload as T);
    this.worker.on(event, listener);
    this.detachers.push(() => this.worker.off(event, listener));
  }

  /** One broker question per consumed queue; a queue the broker cannot count is left out, not zero. */
  private async queueDepths(gauge: Gauge<'queue'>): Promise<void> {
    gauge.reset();
    const transport = await this.worker.app.transport();
    if (!transport.queueDepth) return;
    await Promise.all(
      this.worker.options.queues.map(async (queue) => {
        try {
          gauge.set({ queue }, await within(transport.queueDepth!(queue), DEPTH_TIMEOUT_MS));
        } catch (err) {
          this.log.warn(`metrics: depth of queue ${queue} unknown: ${(err as Error).message}`);
        }
      }),
    );
  }
}

function within<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms)));
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

function gaugeOf(read: () => number): (this: Gauge) => void {
  return function collect(this: Gauge) {
    this.set(read());
  };
}
