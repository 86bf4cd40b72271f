/**
 * Statistics jobs (operationtype 0-5) spread over the pool: the job's files are cut into the
 * climate core's per-year chunks (workers/climate/plan.ts) and run as a chord of
 * `climate.area_values` tasks whose body, `climate.finish_job`, merges them in date order, writes
 * the answer and completes the job log.
 *
 * Why a chord body and not a job task that waits: a task waiting for chunks holds a pool slot
 * the chunks need (with -c 2 one job would leave one core idle, two jobs would deadlock). The job
 * task therefore claims the job, records the chunk ids in the log, and replaces itself with the
 * chord (its slot is free at once; the job id's result becomes the body's). Progress: a small
 * watcher left running in the process that dispatched the job polls the chunks' states in the
 * result backend and writes progress (ProgressReporter: about ten writes, at most one a second),
 * keeping the claim's lease fresh; it ends when the log says the job is complete. It is only
 * progress: if its process dies, the chunks (acks_late) are delivered again to another worker
 * and the body still completes the job, noting in the log that the dispatching worker went quiet.
 */
import { mergeAreaValues, planAreaRequest, type AreaGeometry, type AreaPlan, type AreaValues, type StatOperation } from '../climate';
import { warningText } from './climateCompute';
import type { Dataset } from './datasets';
import { JobClaim, type JobLog } from './log';
import { OPERATIONS, type JobRequest, type StatisticKey } from './request';
import { sortByDate, stepEntry, writeDataFile } from './results';
import { isoDay, ProgressReporter, type RunOutcome } from './runner';

/** The chord body's task name (registered by workers/tasks/climateJobs.ts). */
export const FINISH_JOB_TASK = 'climate.finish_job';

/** The per-year chunks of a statistics job (no chunks: no files in the range). */
export function planStatistics(dataset: Dataset, request: JobRequest): Promise<AreaPlan> {
  return planAreaRequest({
    folder: dataset.folder,
    variable: dataset.variable,
    ...(dataset.pattern ? { pattern: dataset.pattern } : {}),
    geometry: request.geometry as AreaGeometry,
    operation: request.operationtype as StatOperation,
    begin: isoDay(request.begintime, 'begintime'),
    end: isoDay(request.endtime, 'endtime'),
  });
}

export interface FinishDeps {
  log: JobLog;
  outputDir: string;
}

/**
 * The chord body: merge the chunks (values in date order, warnings in chunk order), write the
 * answer, and complete the log for `attempt`. A later attempt owning the job makes this a no-op.
 */
export async function finishJob(deps: FinishDeps, parts: readonly AreaValues[], uuid: string, attempt: number, worker: string): Promise<RunOutcome> {
  const job = await deps.log.get(uuid);
  if (!job) return { kind: 'unknown-job', uuid };
  if (job.status === 'Processing_Complete') return { kind: 'done-already', uuid };
  const claim = new JobClaim(deps.log, uuid, attempt, worker);
  const merged = mergeAreaValues(parts);
  const key = OPERATIONS[job.request.operationtype] as StatisticKey;
  const warnings = merged.warnings.map(warningText);
  await deps.log.noteFinisher(claim);
  await deps.log.warn(uuid, warnings);
  const entries = sortByDate(merged.values.map((v) => stepEntry(v.date, { [key]: v.value })));
  const dataFile = await writeDataFile(deps.outputDir, uuid, { data: entries });
  if (!(await deps.log.complete(claim, { data_file: dataFile }))) return { kind: 'taken-over', uuid };
  return { kind: 'completed', uuid, steps: entries.length, warnings: warnings.length };
}

export interface WatchDeps {
  log: JobLog;
  /** A task's state in the result backend (PENDING until it is stored) and its stored result. */
  state(taskId: string): Promise<{ status: string; result?: unknown }>;
  pollMs?: number;
  /** How often the claim's lease is refreshed (progress writes refresh it too). */
  touchEveryMs: number;
  /** Stop once every chunk is ready and the body has not completed the job within this time. */
  graceMs?: number;
}

const READY = new Set(['SUCCESS', 'FAILURE', 'REVOKED']);

/** `: ValueError: ...` from a stored Celery exception document, or nothing. */
function errorText(result: unknown): string {
  const exc = result as { exc_type?: unknown; exc_message?: unknown } | null | undefined;
  if (!exc || typeof exc.exc_type !== 'string') return '';
  const args = Array.isArray(exc.exc_message) ? exc.exc_message : [exc.exc_message];
  return `: ${exc.exc_type}: ${args.map(String).join(', ')}`;
}
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms).unref());

/**
 * Writes the job's progress as its chunks finish, until the job is complete, a later attempt
 * owns it, or the body stays silent for graceMs after the last chunk. A failed chunk (only a
 * malformed chunk fails) fails the job: the chord body will not run.
 */
export async function watchChunks(deps: WatchDeps, claim: JobClaim, chunkIds: readonly string[]): Promise<void> {
  const pending = new Set(chunkIds);
  const progress = new ProgressReporter((p) => deps.log.progress(claim, p));
  let allReadyAt = 0;
  let touchedAt = Date.now();
  for (;;) {
    await sleep(deps.pollMs ?? 500);
    const job = await deps.log.get(claim.uuid);
    if (!job || job.status === 'Processing_Complete') return;
    for (const id of [...pending]) {
      const { status, result } = await deps.state(id);
      if (!READY.has(status)) continue;
      pending.delete(id);
      if (status !== 'SUCCESS') {
        await deps.log.fail(claim.uuid, `chunk ${id} of the job ended ${status}${errorText(result)}`, claim);
        return;
      }
    }
    if (pending.size === 0) {
      // The body runs under the job's id (it replaced the job task): a failed body fails the job.
      const body = await deps.state(claim.uuid);
      if (body.status === 'FAILURE') {
        await deps.log.fail(claim.uuid, `merging the chunks failed${errorText(body.result)}`, claim);
        return;
      }
    }
    // report() writes at most once a second and throws when a later attempt owns the job. Once
    // every chunk is in, the body writes 100: nothing to report.
    if (pending.size > 0 && !(await progress.report(chunkIds.length - pending.size, chunkIds.length).then(() => true, () => false))) return;
    if (Date.now() - touchedAt >= deps.touchEveryMs) {
      if (!(await claim.touch())) return;
      touchedAt = Date.now();
    }
    if (pending.size > 0) continue;
    allReadyAt ||= Date.now();
    if (Date.now() - allReadyAt > (deps.graceMs ?? 60_000)) return;
  }
}
