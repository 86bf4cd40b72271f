/**
 * `celeriac watch`: Bioloop's watch script as a pm2 app. New directories under datasets.watch_root
 * become datasets (MongoDB, `mongo.url`) and get the datasets.workflow workflow (default
 * `integrated`) started; safe to restart and to run twice (workers/datasets/watch.ts).
 */
import type { Command } from 'commander';
import type { Config } from '../config';
import { loadOrExit, loggerFor, type Logger } from '../workers';
import { resolvePaths } from '../workers/datasets/layout';
import { DatasetStore } from '../workers/datasets/store';
import { DatasetWatcher, type WorkflowLauncher } from '../workers/datasets/watch';

/** Builds the launcher the watcher starts workflows with; closes what it opened. */
export type LauncherFactory = (cfg: Config, log: Logger) => Promise<WorkflowLauncher & { close(): Promise<void> }>;

interface WatchFlags {
  once?: boolean;
  root?: string;
  workflow?: string;
}

export function addWatchCommand(program: Command, launcherFactory: LauncherFactory): void {
  program
    .command('watch')
    .description('Register new directories under datasets.watch_root as datasets and start their workflow')
    .option('--root <dir>', 'directory to watch (default: datasets.watch_root)')
    .option('--workflow <name>', 'workflow to start (default: datasets.workflow)')
    .option('--once', 'one full scan, then exit')
    .action(async (flags: WatchFlags) => {
      const cfg = loadOrExit({ datasets: { watch_root: flags.root, workflow: flags.workflow } });
      const log = loggerFor(cfg, 'watch');
      const settings = resolvePaths(cfg.datasets);
      const store = await DatasetStore.connect(cfg.mongo.url, { dbName: cfg.mongo.db, logger: log });
      const launcher = await launcherFactory(cfg, log);
      const watcher = new DatasetWatcher(store, launcher, {
        root: settings.watch_root,
        type: settings.type,
        workflow: settings.workflow,
        rejects: [...settings.rejects],
        pollIntervalMs: settings.poll_interval_seconds * 1000,
        fullScanEvery: settings.full_scan_every_n_scans,
        log,
      });
      const stop = new AbortController();
      const onSignal = (): void => stop.abort();
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      log.info(`watch: ${settings.watch_root} every ${settings.poll_interval_seconds} s, ${settings.type} datasets, workflow ${settings.workflow}`);
      try {
        if (flags.once) {
          const report = await watcher.scan(true);
          process.stdout.write(`${JSON.stringify(report)}\n`);
        } else await watcher.run(stop.signal);
      } finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
        await launcher.close();
        await store.close();
      }
    });
}
