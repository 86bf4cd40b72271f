/** `celeriac worker`: the `celery worker` command for Celeriac. */
import { existsSync, mkdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { Command } from 'commander';
import { appFromConfig, workerOptionsFromConfig } from '../app/fromConfig';
import { loadTaskModule } from '../app/loadTasks';
import { createPool, type PoolKind, type TaskPool } from '../pool';
import { Worker } from '../worker/worker';
import { attachTaskEvents, SOFTWARE_INFO, WorkerEvents } from '../events';
import { RemoteControl } from '../control';
import { startMetrics, type MetricsServer } from '../metrics';
import { expandNodeName } from '../worker/hostname';
import { maskUrl } from '../log/mask';
import { brokerUrlOf } from '../../config';
import { commonOverrides, loadOrExit, loggerFor, type CommonFlags } from './options';
import { taskModulePaths } from './root';

interface WorkerFlags extends CommonFlags {
  app?: string;
  queues?: string;
  concurrency?: string;
  hostname?: string;
  prefetchMultiplier?: string;
  optimization?: string;
  pidfile?: string;
  pool?: string;
  taskEvents?: boolean;
  withoutHeartbeat?: boolean;
  statedb?: string;
  autoscale?: string;
  maxTasksPerChild?: string;
  maxMemoryPerChild?: string;
  metricsPort?: string;
}

function csv(v: string | undefined): string[] | undefined {
  return v ? v.split(',').map((s) => s.trim()).filter(Boolean) : undefined;
}

function int(v: string | undefined, flag: string): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v)) {
    process.stderr.write(`${flag}: expected a whole number, got ${JSON.stringify(v)}\n`);
    process.exit(2);
  }
  return Number(v);
}

/** A pidfile that names a live process refuses the start; a stale one is replaced. */
function writePidfile(path: string): () => void {
  if (existsSync(path)) {
    const pid = Number(readFileSync(path, 'utf8').trim());
    let alive: boolean;
    try {
      alive = pid > 0 && process.kill(pid, 0);
    } catch {
      alive = false;
    }
    if (alive) throw new Error(`pidfile ${path} names a running process (${pid}): is a worker already running?`);
  }
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, `${process.pid}\n`);
  return () => {
    try {
      if (readFileSync(path, 'utf8').trim() === String(process.pid)) unlinkSync(path);
    } catch {
      /* already gone */
    }
  };
}

/** Errors worth waiting out at start (the broker is not up yet), as opposed to bad credentials. */
const TRANSIENT = /ECONNREFUSED|ECONNRESET|ETIMEDOUT|EHOSTUNREACH|ENOTFOUND|EAI_AGAIN|Connection is closed|socket closed/i;

/** Celery's broker_connection_retry_on_startup: keep trying while the broker is unreachable. */
async function startWithRetry(worker: Worker, retry: boolean, log: { warn(msg: string): void }): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await worker.start();
      return;
    } catch (err) {
      if (!retry || !TRANSIENT.test((err as Error).message)) throw err;
      if (attempt === 0) log.warn(`cannot reach the broker (${(err as Error).message}); retrying until it answers`);
      await worker.app.close().catch(() => undefined);
      await new Promise((r) => setTimeout(r, Math.min(30_000, 500 * 2 ** Math.min(attempt, 6))));
    }
  }
}

async function runWorker(flags: WorkerFlags): Promise<void> {
  const config = loadOrExit({
    ...commonOverrides(flags),
    celery: {
      ...commonOverrides(flags).celery,
      worker_concurrency: int(flags.concurrency, '--concurrency'),
      worker_prefetch_multiplier: int(flags.prefetchMultiplier, '--prefetch-multiplier'),
      // Absent flag: leave the config's value (a config file may turn task events on).
      worker_send_task_events: flags.taskEvents ? true : undefined,
      worker_state_db: flags.statedb,
      worker_max_tasks_per_child: int(flags.maxTasksPerChild, '--max-tasks-per-child'),
      worker_max_memory_per_child: int(flags.maxMemoryPerChild, '--max-memory-per-child'),
    },
    worker: {
      queues: csv(flags.queues),
      hostname: flags.hostname,
      pidfile: flags.pidfile,
      optimization: flags.optimization as 'fair' | 'default' | undefined,
      pool: flags.pool as 'async' | 'threads' | 'processes' | undefined,
      autoscale: flags.autoscale,
      metrics_port: int(flags.metricsPort, '--metrics-port'),
    },
  });
  const log = loggerFor(config);
  const app = appFromConfig(config, log);
  const modules = taskModulePaths(config.worker.tasks, flags.app);
  for (const path of modules) loadTaskModule(app, path);
  const options = workerOptionsFromConfig(config);
  const { logger: _logger, ...appOptions } = app.options;
  const poolOf = (kind: PoolKind): TaskPool =>
    createPool({
      kind,
      init: { appOptions, modules, hostname: options.hostname },
      maxTasksPerChild: config.celery.worker_max_tasks_per_child,
      maxMemoryPerChild: config.celery.worker_max_memory_per_child,
      log,
    });
  options.pool = poolOf(config.worker.pool);
  options.poolFactory = poolOf;
  const pidfile = config.worker.pidfile ? resolve(expandNodeName(config.worker.pidfile.replace(/%n/g, options.hostname.split('@')[0]!))) : null;
  const removePidfile = pidfile ? writePidfile(pidfile) : () => undefined;

  const worker = new Worker(app, options);
  // Task events are attached here rather than by WorkerEvents so remote control can switch them.
  const events = new WorkerEvents(worker, { taskEvents: false, heartbeat: !flags.withoutHeartbeat, logger: log });
  let detachTaskEvents: (() => void) | null = config.celery.worker_send_task_events ? attachTaskEvents(worker, events.dispatcher) : null;
  const control = new RemoteControl({
    worker,
    hostname: options.hostname,
    clock: events.dispatcher.clock,
    log,
    conf: () => ({
      ...Object.fromEntries(
        Object.entries(config.celery).map(([k, v]) => [k, typeof v === 'string' && /^[a-z][a-z0-9+.-]*:\/\//i.test(v) ? maskUrl(v) : v]),
      ),
      include: [...config.worker.tasks, ...(flags.app ? [flags.app] : [])],
    }),
    events: {
      enable: () => {
        if (detachTaskEvents) return false;
        detachTaskEvents = attachTaskEvents(worker, events.dispatcher);
        return true;
      },
      disable: () => {
        if (!detachTaskEvents) return false;
        detachTaskEvents();
        detachTaskEvents = null;
        return true;
      },
      heartbeat: () => void events.dispatcher.send('worker-heartbeat', { freq: 5, ...SOFTWARE_INFO }),
    },
    shutdown: () => {
      log.warn('worker: Warm shutdown (remote control)');
      void stop();
    },
  });
  log.info(
    `celeriac ${options.hostname} v0.1.0: broker ${maskUrl(brokerUrlOf(config))}, results ${maskUrl(config.celery.result_backend || 'disabled')}, ` +
      `concurrency ${options.autoscale ? `${options.autoscale.min}-${options.autoscale.max} (autoscale)` : options.concurrency} (${config.worker.pool}), queues ${options.queues.join(',')}, tasks ${[...app.tasks.keys()].sort().join(', ')}`,
  );

  let signals = 0;
  const onSignal = (sig: NodeJS.Signals): void => {
    signals++;
    if (signals === 1) {
      log.warn(`worker: Warm shutdown (${sig})`);
      void stop();
    } else {
      log.warn(`worker: Cold shutdown (${sig})`);
      void worker.shutdown('cold');
    }
  };
  let stopping: Promise<void> | null = null;
  let metrics: MetricsServer | null = null;
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      // Celery's order: the heart stops (worker-offline) before running tasks drain.
      await events.stopHeart();
      await control.stop();
      await worker.shutdown('warm');
      detachTaskEvents?.();
      events.close();
      await metrics?.close();
      await worker.close();
      removePidfile();
      // Celery exits with EX_FAILURE after a cold shutdown, EX_OK after a warm one.
      process.exit(signals > 1 ? 1 : 0);
    })());
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  process.on('unhandledRejection', (reason) => log.error(`unhandled rejection (worker goes on): ${String((reason as Error)?.stack ?? reason)}`));

  // Before consuming: a port that cannot be bound stops the start, not a running worker.
  const metricsPort = config.worker.metrics_port;
  metrics = metricsPort === null ? null : await startMetrics(worker, { port: metricsPort, log }).catch((err: Error) => {
    log.error(`metrics endpoint could not start on port ${metricsPort}: ${err.message}`);
    removePidfile();
    return process.exit(1);
  });
  if (metrics) log.info(`metrics: Prometheus endpoint on http://0.0.0.0:${metrics.port}/metrics`);
  await startWithRetry(worker, config.celery.broker_connection_retry_on_startup, log).catch((err: Error) => {
    log.error(`worker could not start: ${err.message}`);
    removePidfile();
    process.exit(1);
  });
  await events.start();
  await control.start().catch((err: Error) => log.error(`remote control could not start: ${err.message}`));
}

/**
 * Another kind of worker behind the same command, chosen by a flag (e.g. `worker --rq`): the
 * composition root (scripts/celeriac.ts) adds these, so the runtime never imports them.
 */
export interface WorkerMode {
  /** A commander boolean flag, e.g. '--rq'. */
  flag: string;
  description: string;
  /** Runs instead of the Celery worker when the flag is given; gets every parsed flag. */
  run(flags: Record<string, unknown>): Promise<void>;
}

function optionKey(flag: string): string {
  return flag.replace(/^--/, '').replace(/-([a-z])/g, (_m, c: string) => c.toUpperCase());
}

export function addWorkerCommand(program: Command, modes: readonly WorkerMode[] = []): void {
  const command = program
    .command('worker')
    .description('start a worker (like `celery worker`)')
    .option('-A, --app <module>', 'task module to load (.ts or .js): exports register(app) or an app')
    .option('-Q, --queues <list>', 'comma-separated queues to consume')
    .option('-c, --concurrency <n>', 'tasks run at once')
    .option('-n, --hostname <name>', 'node name, with %h %n %d expansion (default celeriac@%h)')
    .option('-l, --loglevel <level>', 'debug, info, warning, error, critical')
    .option('-P, --pool <pool>', 'execution pool: async (event loop), threads or processes (CPU-bound tasks)')
    .option('--autoscale <max,min>', 'grow the pool up to max under a backlog, shrink to min when idle')
    .option('--max-tasks-per-child <n>', 'replace a pool thread/process after n tasks')
    .option('--max-memory-per-child <KiB>', 'replace a pool thread/process above this resident memory')
    .option('-S, --statedb <file>', 'keep the revoked set in this file across restarts')
    .option('-O, --optimization <profile>', 'default or fair (Celery\'s -O fair)')
    .option('--prefetch-multiplier <n>', 'messages reserved per slot (0 = no limit)')
    .option('-E, --task-events', 'send task events for Flower / `celery events` (worker_send_task_events)')
    .option('--without-heartbeat', 'send no worker-online / worker-heartbeat / worker-offline events')
    .option('--metrics-port <port>', 'serve Prometheus metrics on http://0.0.0.0:<port>/metrics')
    .option('--pidfile <file>', 'write the pid here; refuses to start over a live pid')
    .option('-b, --broker <url>', "broker URL (amqp://, redis://, rediss://, sentinel://, filesystem://; several separated by ';' for failover)")
    .option('--result-backend <url>', 'result backend URL (redis://, rediss://, sentinel://, rpc://, file://, mongodb://)');
  for (const mode of modes) command.option(mode.flag, mode.description);
  command.action((flags: WorkerFlags & Record<string, unknown>) => {
    const mode = modes.find((m) => flags[optionKey(m.flag)] === true);
    return mode ? mode.run(flags) : runWorker(flags);
  });
}
