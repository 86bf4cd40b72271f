/**
 * `celeriac purge-stale-workflows`: a cron job (pm2 app) deleting workflows no dataset references
 * any more, with their task results (workers/datasets/purge.ts). Needs MongoDB (`mongo.url`);
 * the workflows are read from the mongodb result backend's database when the backend is one.
 */
import type { Command } from 'commander';
import { loadOrExit, loggerFor, openMongo } from '../workers';
import { DatasetStore } from '../workers/datasets/store';
import { purgeStaleWorkflows } from '../workers/datasets/purge';

interface PurgeFlags {
  appId?: string;
  types?: string;
  ageThreshold?: string;
  maxPurgeCount?: string;
  dryRun?: boolean;
  json?: boolean;
}

function positiveInt(flag: string, raw: string | undefined, fallback: number): number {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) throw new Error(`--${flag} must be a non-negative integer, got ${JSON.stringify(raw)}`);
  return n;
}

export function addPurgeStaleWorkflowsCommand(program: Command): void {
  program
    .command('purge-stale-workflows')
    .description('Delete old workflows (and their task results) that no dataset references')
    .option('--app-id <id>', 'app_id of the workflows to consider (default: workflows.app_id)')
    .option('--types <names>', 'comma-separated workflow names (default: datasets.purge.workflow_types)')
    .option('--age-threshold <seconds>', 'only workflows older than this (default: datasets.purge.age_threshold_seconds)')
    .option('--max-purge-count <n>', 'at most this many per run (default: datasets.purge.max_purge_count)')
    .option('--dry-run', 'report what would be deleted, delete nothing')
    .option('--json', 'print the report as JSON')
    .action(async (flags: PurgeFlags) => {
      const cfg = loadOrExit({});
      const log = loggerFor(cfg, 'purge-stale-workflows', 'stderr');
      const purge = cfg.datasets.purge;
      const opts = {
        appId: flags.appId ?? cfg.workflows.app_id,
        workflowTypes: flags.types ? flags.types.split(',').map((s) => s.trim()).filter(Boolean) : [...purge.workflow_types],
        ageThresholdSeconds: positiveInt('age-threshold', flags.ageThreshold, purge.age_threshold_seconds),
        maxPurgeCount: positiveInt('max-purge-count', flags.maxPurgeCount, purge.max_purge_count),
        dryRun: flags.dryRun === true,
        log,
      };
      const store = await DatasetStore.connect(cfg.mongo.url, { dbName: cfg.mongo.db, logger: log, maxAttempts: 5 });
      const backend = cfg.celery.result_backend;
      const workflowConn = /^mongodb(\+srv)?:/.test(backend) ? await openMongo(backend, { logger: log, maxAttempts: 5 }) : null;
      try {
        const report = await purgeStaleWorkflows(workflowConn?.db ?? store.datasets.db, store, opts);
        process.stdout.write(flags.json ? `${JSON.stringify(report)}\n` : `purged ${report.deletedWorkflows} workflows and ${report.deletedTasks} task results${opts.dryRun ? ` (dry run: would purge ${report.workflowIds.length})` : ''}\n`);
      } finally {
        await workflowConn?.close();
        await store.close();
      }
    });
}
