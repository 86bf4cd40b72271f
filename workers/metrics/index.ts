/**
 * Prometheus metrics for a worker (opt-in: `celeriac worker --metrics-port 9808`, config
 * worker.metrics_port, env CELERIAC_METRICS_PORT).
 *
 *   const metrics = await startMetrics(worker, { port: 9808, log });   // before worker.start()
 *   ...; await metrics.close();
 *
 * Series (every one labelled worker="<node name>"): celeriac_tasks_{received,succeeded,failed,
 * retried,revoked,rejected}_total{name}, celeriac_task_runtime_seconds{name} (histogram),
 * celeriac_tasks_active, celeriac_tasks_reserved, celeriac_worker_concurrency,
 * celeriac_queue_depth{queue}, and Node's process metrics prefixed celeriac_.
 */
import type { Worker } from '../worker/worker';
import { WorkerMetrics } from './workerMetrics';
import { serveMetrics, type MetricsServer, type MetricsServerOptions } from './server';

export { WorkerMetrics } from './workerMetrics';
export type { MetricsServer } from './server';

export async function startMetrics(worker: Worker, opts: MetricsServerOptions): Promise<MetricsServer> {
  const metrics = new WorkerMetrics(worker, opts.log);
  let server: MetricsServer;
  try {
    server = await serveMetrics(metrics.registry, opts);
  } catch (err) {
    metrics.close();
    throw err;
  }
  return {
    port: server.port,
    close: async () => {
      metrics.close();
      await server.close();
    },
  };
}
