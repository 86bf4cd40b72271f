/**
 * purge-stale-workflows (Bioloop's scripts/purge_stale_workflows.py): workflows of this app, of
 * the purgeable kinds, older than the threshold, that no dataset references any more, are deleted
 * from `workflow_meta` together with their task results in `celery_taskmeta`. At most
 * maxPurgeCount per run: if something upstream went wrong (datasets unreadable), a run cannot
 * wipe everything.
 */
import type { Db } from 'mongodb';
import type { DatasetStore } from './store';

export interface PurgeOptions {
  appId: string;
  workflowTypes: string[];
  ageThresholdSeconds: number;
  maxPurgeCount: number;
  dryRun?: boolean;
  log: { warn(m: string): void };
}

export interface PurgeReport {
  workflowIds: string[];
  taskIds: string[];
  deletedWorkflows: number;
  deletedTasks: number;
}

interface WorkflowMetaDoc {
  _id: string;
  app_id?: string;
  name?: string;
  created_at?: Date;
  steps?: { task_runs?: { task_id?: string }[] }[];
}

const PAGE = 500;

/** `workflowDb`: the database of the mongodb result backend (sca-rhythm's workflow_meta lives there). */
export async function purgeStaleWorkflows(workflowDb: Db, store: DatasetStore, opts: PurgeOptions): Promise<PurgeReport> {
  const workflows = workflowDb.collection<WorkflowMetaDoc>('workflow_meta');
  const tasks = workflowDb.collection<{ _id: string }>('celery_taskmeta');
  const before = new Date(Date.now() - opts.ageThresholdSeconds * 1000);
  const query = { app_id: opts.appId, name: { $in: opts.workflowTypes }, created_at: { $lte: before } };

  // Page through the old ones, keeping those no dataset references, up to the cap.
  const orphans: WorkflowMetaDoc[] = [];
  for (let skip = 0; orphans.length < opts.maxPurgeCount; skip += PAGE) {
    const page = await workflows.find(query).sort({ created_at: 1, _id: 1 }).skip(skip).limit(PAGE).toArray();
    if (page.length === 0) break;
    const referenced = await store.referencedWorkflowIds(page.map((w) => w._id));
    orphans.push(...page.filter((w) => !referenced.has(w._id)));
  }
  if (orphans.length > opts.maxPurgeCount) {
    opts.log.warn(`purge: more than ${opts.maxPurgeCount} orphaned workflows; purging the oldest ${opts.maxPurgeCount} this run`);
  }
  const chosen = orphans.slice(0, opts.maxPurgeCount);
  const workflowIds = chosen.map((w) => w._id);
  const taskIds = chosen.flatMap((w) => (w.steps ?? []).flatMap((s) => (s.task_runs ?? []).map((r) => r.task_id))).filter((t): t is string => typeof t === 'string');
  opts.log.warn(`purge: ${workflowIds.length} orphaned workflows, ${taskIds.length} task results${opts.dryRun ? ' (dry run: nothing deleted)' : ''}`);
  const report: PurgeReport = { workflowIds, taskIds, deletedWorkflows: 0, deletedTasks: 0 };
  if (opts.dryRun) return report;
  if (taskIds.length) report.deletedTasks = (await tasks.deleteMany({ _id: { $in: taskIds } })).deletedCount;
  if (workflowIds.length) report.deletedWorkflows = (await workflows.deleteMany({ _id: { $in: workflowIds } })).deletedCount;
  return report;
}
