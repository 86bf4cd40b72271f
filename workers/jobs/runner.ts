/**
 * Runs one climate job: claims it in the job log, lists the dataset's files, computes each file's
 * statistic (or clipped grids for downloads), reports progress, writes the results and completes
 * the log. ClimateSERV's start_processing, minus the Django.
 *
 * Progress goes to the log about ten times a job and at most once a second (a poller sees it
 * move; the database is not hammered). The claim's lease is kept fresh by every progress write
 * and a timer; when a later attempt has taken the job over, this one stops without writing.
 */
import { DOWNLOAD_KIND, isDownload, OPERATIONS, type JobRequest, type StatisticKey } from './request';
import type { Dataset } from './datasets';
import type { ComputeSession, JobCompute, JobFile } from './compute';
import type { DownloadGrid } from './downloads';
import { writeDownload } from './downloads';
import type { JobClaim, JobLog } from './log';
import type { AreaPlan } from '../climate';
import { sortByDate, stepEntry, writeDataFile, type StepEntry } from './results';
import { parseUsDate } from './request';

export interface RunnerDeps {
  log: JobLog;
  compute: JobCompute;
  datasets: ReadonlyMap<number, Dataset>;
  outputDir: string;
  leaseMs: number;
  /**
   * When set, statistics jobs are planned here and handed back as a 'fan-out' outcome for the
   * caller to run on the pool (workers/jobs/fanOut.ts); null (no files) runs them in-process.
   */
  fanOut?: (dataset: Dataset, request: JobRequest) => Promise<AreaPlan | null>;
}

export type RunOutcome =
  | { kind: 'completed'; uuid: string; steps: number; warnings: number }
  | { kind: 'errored'; uuid: string; error: string }
  | { kind: 'done-already' | 'unknown-job' | 'taken-over'; uuid: string }
  | { kind: 'busy'; uuid: string; worker: string; retryInMs: number }
  | { kind: 'fan-out'; uuid: string; claim: JobClaim; plan: AreaPlan };

/** Raised inside the run when a later attempt owns the job: stop quietly. */
class TakenOver extends Error {}

export const isoDay = (usDate: string, name: string): string => new Date(parseUsDate(usDate, name)).toISOString().slice(0, 10);

/** Writes progress at most once a second and only when it moved by a tenth of the job. */
export class ProgressReporter {
  private lastWritten = 0;
  private lastAt = 0;

  constructor(private readonly write: (p: number) => Promise<boolean>, private readonly now: () => number = Date.now) {}

  async report(done: number, total: number): Promise<void> {
    // 1..99 while running: 100 is written only with the results.
    const p = total === 0 ? 99 : Math.min(99, Math.max(1, Math.floor((done / total) * 100)));
    const t = this.now();
    if (p - this.lastWritten < 10 || t - this.lastAt < 1000) return;
    this.lastWritten = p;
    this.lastAt = t;
    if (!(await this.write(p))) throw new TakenOver();
  }
}

export async function runJob(deps: RunnerDeps, uuid: string, worker: string): Promise<RunOutcome> {
  const outcome = await deps.log.claim(uuid, worker);
  if (outcome.kind === 'unknown') return { kind: 'unknown-job', uuid };
  if (outcome.kind === 'done') return { kind: 'done-already', uuid };
  if (outcome.kind === 'busy') {
    return { kind: 'busy', uuid, worker: outcome.worker, retryInMs: Math.max(500, deps.leaseMs - outcome.quietForMs + 250) };
  }
  const claim = outcome.claim;
  let lost = false;
  const heartbeat = setInterval(() => {
    claim.touch().then((ok) => (lost ||= !ok), () => undefined);
  }, Math.max(200, deps.leaseMs / 3));
  heartbeat.unref();
  try {
    const job = await deps.log.get(uuid);
    if (!job) return { kind: 'unknown-job', uuid };
    if (deps.fanOut && !isDownload(job.request.operationtype)) {
      const plan = await deps.fanOut(datasetOf(deps, claim, job.request), job.request);
      if (plan) return { kind: 'fan-out', uuid, claim, plan };
    }
    const result = await compute(deps, claim, job.request, () => lost);
    if (!(await deps.log.complete(claim, result.results))) return { kind: 'taken-over', uuid };
    return { kind: 'completed', uuid, steps: result.steps, warnings: result.warnings };
  } catch (err) {
    if (err instanceof TakenOver) return { kind: 'taken-over', uuid };
    const error = err instanceof Error ? err.message : String(err);
    await deps.log.fail(uuid, error, claim);
    return { kind: 'errored', uuid, error };
  } finally {
    clearInterval(heartbeat);
  }
}

function datasetOf(deps: RunnerDeps, claim: JobClaim, request: JobRequest): Dataset {
  const dataset = deps.datasets.get(request.datatype);
  if (!dataset) throw new Error(`datatype ${request.datatype} is not configured on worker ${claim.worker} (climate.datasets)`);
  return dataset;
}

async function compute(
  deps: RunnerDeps,
  claim: JobClaim,
  request: JobRequest,
  isLost: () => boolean,
): Promise<{ results: { data_file: string; zip_file?: string }; steps: number; warnings: number }> {
  const dataset = datasetOf(deps, claim, request);
  const { files, warnings: listWarnings } = await deps.compute.files(dataset, isoDay(request.begintime, 'begintime'), isoDay(request.endtime, 'endtime'));
  let warnings = listWarnings.length;
  await deps.log.warn(claim.uuid, listWarnings);
  if (files.length === 0) await deps.log.warn(claim.uuid, [`no files of ${dataset.name} between ${request.begintime} and ${request.endtime}`]);
  const session = deps.compute.session(dataset, request);
  const progress = new ProgressReporter((p) => deps.log.progress(claim, p));
  const op = request.operationtype;
  const entries: StepEntry[] = [];
  const grids: DownloadGrid[] = [];
  for (const [i, file] of files.entries()) {
    if (isLost()) throw new TakenOver();
    const step = isDownload(op) ? await gridsOf(session, file, grids) : await statsOf(session, file, OPERATIONS[op] as StatisticKey, entries);
    warnings += step.length;
    await deps.log.warn(claim.uuid, step);
    await progress.report(i + 1, files.length);
  }
  let zipFile: string | undefined;
  if (isDownload(op)) {
    const written = await writeDownload(deps.outputDir, claim.uuid, DOWNLOAD_KIND[op], grids, dataset.variable);
    zipFile = written.zipFile;
    warnings += written.warnings.length;
    await deps.log.warn(claim.uuid, written.warnings);
    for (const g of grids) entries.push(stepEntry(g.date, 1));
  }
  if (isLost()) throw new TakenOver();
  const dataFile = await writeDataFile(deps.outputDir, claim.uuid, { data: sortByDate(entries) });
  return { results: { data_file: dataFile, ...(zipFile ? { zip_file: zipFile } : {}) }, steps: entries.length, warnings };
}

async function statsOf(session: ComputeSession, file: JobFile, key: StatisticKey, into: StepEntry[]): Promise<string[]> {
  const { steps, warnings } = await session.statistics(file);
  for (const s of steps) into.push(stepEntry(s.date, { [key]: s.value }));
  return warnings;
}

async function gridsOf(session: ComputeSession, file: JobFile, into: DownloadGrid[]): Promise<string[]> {
  const { grids, warnings } = await session.grids(file);
  into.push(...grids);
  return warnings;
}
