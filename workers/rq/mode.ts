/**
 * `celeriac worker --rq`: the rq worker behind the same command. Flags it reads: -b (the Redis
 * URL rq uses), -Q (queues in priority order, default `default` as rq), -n (worker name, default
 * a uuid4 hex as rq), -c (jobs at once, default 1 as rq), -P (async | threads | processes), -A
 * and the config's task modules (functions registered under rq's dotted func_name).
 */
import {
  brokerUrlOf,
  appFromConfig,
  commonOverrides,
  createPool,
  loadOrExit,
  loadTaskModule,
  loggerFor,
  maskUrl,
  taskModulePaths,
  type PoolKind,
  type WorkerMode,
} from '../index';
import { RqWorker } from './worker';
import { startRqMetrics } from './metrics';

function text(flags: Record<string, unknown>, key: string): string | undefined {
  const v = flags[key];
  return typeof v === 'string' ? v : undefined;
}

function wholeNumber(v: string | undefined, flag: string, fallback: number): number {
  if (v === undefined) return fallback;
  if (!/^[1-9]\d*$/.test(v)) {
    process.stderr.write(`${flag}: expected a positive whole number, got ${JSON.stringify(v)}\n`);
    process.exit(2);
  }
  return Number(v);
}

async function runRqWorker(flags: Record<string, unknown>): Promise<void> {
  const metricsFlag = text(flags, 'metricsPort');
  const config = loadOrExit({
    ...commonOverrides({ broker: text(flags, 'broker'), loglevel: text(flags, 'loglevel') }),
    worker: { pool: text(flags, 'pool') as PoolKind | undefined, metrics_port: metricsFlag === undefined ? undefined : wholeNumber(metricsFlag, '--metrics-port', 0) },
  });
  const log = loggerFor(config);
  const url = brokerUrlOf(config);
  if (!/^(rediss?|redis\+socket|unix):/.test(url)) {
    log.error(`--rq needs a Redis URL (-b redis://...), got ${maskUrl(url)}`);
    process.exit(2);
  }
  const app = appFromConfig(config, log);
  const appFlag = text(flags, 'app');
  const modules = taskModulePaths(config.worker.tasks, appFlag);
  for (const path of modules) loadTaskModule(app, path);
  const queues = (text(flags, 'queues') ?? 'default').split(',').map((q) => q.trim()).filter(Boolean);
  const concurrency = wholeNumber(text(flags, 'concurrency'), '--concurrency', 1);
  const { logger: _logger, ...appOptions } = app.options;
  const name = text(flags, 'hostname');
  const pool = createPool({ kind: config.worker.pool, init: { appOptions, modules, hostname: name ?? 'rq' }, maxTasksPerChild: null, maxMemoryPerChild: null, log });
  await pool.start(concurrency);

  let signals = 0;
  let stopping: Promise<void> | null = null;
  const stop = (mode: 'warm' | 'cold'): Promise<void> =>
    (stopping ??= worker.stop(mode).then(async () => {
      await pool.close();
      process.exit(mode === 'warm' ? 0 : 1);
    }));
  const worker = new RqWorker({ redisUrl: url, queues, name, concurrency, pool, tasks: app.tasks, log, onShutdownCommand: () => void stop('warm') });
  const onSignal = (sig: NodeJS.Signals): void => {
    signals++;
    log.warn(`Worker ${worker.name}: ${signals === 1 ? 'warm' : 'cold'} shut down requested (${sig})`);
    if (signals === 1) void stop('warm');
    else {
      // rq's cold shutdown: running jobs stay in rq:wip for StartedJobRegistry.cleanup.
      stopping = null;
      void stop('cold');
    }
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  process.on('unhandledRejection', (reason) => log.error(`unhandled rejection (worker goes on): ${String((reason as Error)?.stack ?? reason)}`));
  await worker.start().catch((err: Error) => {
    log.error(`rq worker could not start: ${err.message}`);
    process.exit(1);
  });
  const metricsPort = config.worker.metrics_port;
  if (metricsPort !== null) {
    const metrics = await startRqMetrics(worker, worker.connection, { port: metricsPort, log }).catch(async (err: Error) => {
      log.error(`metrics endpoint could not start on port ${metricsPort}: ${err.message}`);
      await worker.stop('warm');
      return process.exit(1);
    });
    log.info(`metrics: Prometheus endpoint on http://0.0.0.0:${metrics.port}/metrics`);
  }
  log.info(`rq worker ${worker.name} (${config.worker.pool}, concurrency ${concurrency}) on ${maskUrl(url)}, queues ${queues.join(',')}, functions ${[...app.tasks.keys()].filter((n) => !n.startsWith('celery.')).sort().join(', ')} ready.`);
}

export const rqWorkerMode: WorkerMode = {
  flag: '--rq',
  description: 'serve RQ queues (Python rq 2.x layout, JSONSerializer jobs) instead of Celery',
  run: runRqWorker,
};
