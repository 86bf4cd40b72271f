/**
 * `celeriac worker --rq --metrics-port P`: the Celery worker's series names, so one dashboard
 * serves both kinds of worker: celeriac_tasks_{received,succeeded,failed,retried}_total{name}
 * and celeriac_task_runtime_seconds{name} by rq function name, celeriac_tasks_active,
 * celeriac_worker_concurrency, celeriac_queue_depth{queue} (LLEN of rq:queue:<queue> at scrape),
 * every series labelled worker="<rq worker name>".
 */
import type Redis from 'ioredis';
import type { Counter } from 'prom-client';
import { lazyModule, serveMetrics, type MetricsServer } from '../index';
import { rqKey } from './keys';
import type { RqJobEnd, RqWorker } from './worker';

// Loaded when rq metrics start (--metrics-port), not with every rq worker (#16).
const promClient = lazyModule<typeof import('prom-client')>('prom-client');

const RUNTIME_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600];

export async function startRqMetrics(worker: RqWorker, redis: Redis, opts: { port: number; log: { warn(msg: string): void } }): Promise<MetricsServer> {
  const { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } = promClient();
  const registry = new Registry();
  registry.setDefaultLabels({ worker: worker.name });
  collectDefaultMetrics({ register: registry, prefix: 'celeriac_' });
  const registers = [registry];
  const counter = (what: string): Counter<'name'> =>
    new Counter({ name: `celeriac_tasks_${what}_total`, help: `rq jobs ${what}, by function name`, labelNames: ['name'], registers });
  const received = counter('received');
  const ended: Record<string, Counter<'name'>> = { finished: counter('succeeded'), failed: counter('failed'), retried: counter('retried') };
  ended.scheduled = ended.retried!;
  ended.stopped = ended.failed!;
  const runtime = new Histogram({ name: 'celeriac_task_runtime_seconds', help: 'Seconds from start to end of each rq job run, by function name', labelNames: ['name'], buckets: RUNTIME_BUCKETS, registers });
  new Gauge({ name: 'celeriac_tasks_active', help: 'rq jobs running now', registers, collect() { this.set(worker.activeCount); } });
  new Gauge({ name: 'celeriac_worker_concurrency', help: 'rq jobs the worker runs at once at most', registers, collect() { this.set(worker.concurrency); } });
  new Gauge({
    name: 'celeriac_queue_depth',
    help: 'Jobs waiting in each rq queue',
    labelNames: ['queue'],
    registers,
    async collect() {
      for (const queue of worker.queues) this.set({ queue }, await redis.llen(rqKey.queue(queue)));
    },
  });
  const onStart = (name: string): void => void received.inc({ name });
  const onEnd = (end: RqJobEnd): void => {
    ended[end.status]?.inc({ name: end.funcName });
    runtime.observe({ name: end.funcName }, end.seconds);
  };
  worker.on('job-started', onStart);
  worker.on('job-ended', onEnd);
  const server = await serveMetrics(registry, opts);
  return {
    port: server.port,
    close: async () => {
      worker.off('job-started', onStart);
      worker.off('job-ended', onEnd);
      await server.close();
    },
  };
}
