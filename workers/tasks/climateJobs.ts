/**
 * `climate.start_processing(request)`: runs one ClimateSERV-style job (workers/jobs/runner.ts).
 * The job's uuid is the task id, as in ClimateSERV, and the job log says how it went. Sent by
 * `celeriac climate-api`; any Celery producer may send it too (the request is then checked and
 * logged here).
 *
 * acks_late: a worker killed mid-job leaves the message unacked, it is delivered again, and the
 * next worker takes the job over once the dead one's claim has gone quiet (climate.job_lease_seconds).
 * A delivery that finds the job still held by a live worker retries later instead of running it twice.
 *
 * Statistics jobs (operationtype 0-5) run on the whole pool when the worker has a result backend
 * that joins chords (Redis, file; not rpc://): the job becomes a chord of `climate.area_values`
 * chunks (registered here too) with `climate.finish_job` as its body (workers/jobs/fanOut.ts says
 * why and how progress is kept). Without such a backend, and for downloads, the job runs here.
 */
import { loadConfig, PythonError, signature, type Celeriac } from '../index';
import { areaValuesChord, type AreaValues } from '../climate';
import { JOB_TASK } from '../jobs/api';
import { climateCompute } from '../jobs/climateCompute';
import { openJobContext, type JobContext } from '../jobs/context';
import { FINISH_JOB_TASK, finishJob, planStatistics, watchChunks } from '../jobs/fanOut';
import { BadParameter, parseJobRequest, type JobRequest } from '../jobs/request';
import { runJob, type RunnerDeps } from '../jobs/runner';
import { register as registerClimateTasks } from './climate';

let context: Promise<JobContext> | null = null;

/** One job log connection per worker process, opened at the first job. */
function jobContext(): Promise<JobContext> {
  context ??= openJobContext(loadConfig()).catch((err: unknown) => {
    context = null;
    throw err;
  });
  return context;
}

/** A request sent by another producer: the same checks as the API's, then logged under the task id. */
async function adoptRequest(ctx: JobContext, uuid: string, request: JobRequest): Promise<void> {
  const params: Record<string, string> = {
    datatype: String(request.datatype),
    operationtype: String(request.operationtype),
    begintime: String(request.begintime),
    endtime: String(request.endtime),
    intervaltype: String(request.intervaltype ?? 0),
    geometry: JSON.stringify(request.geometry),
    is_from_ui: request.from_ui ? '1' : '0',
  };
  let checked: JobRequest;
  try {
    checked = parseJobRequest(params, ctx.datasets, ctx.limits);
  } catch (err) {
    if (err instanceof BadParameter) throw new PythonError('ValueError', `bad climate job request: ${err.message}`);
    throw err;
  }
  await ctx.log.create(uuid, checked).catch((err: unknown) => {
    if ((err as { code?: unknown }).code !== 11000) throw err;
  });
}

/** Chunks need a backend that joins chords: the Redis one counts them, others get chord_unlock. */
async function chordBackend(app: Celeriac): Promise<boolean> {
  const backend = await app.backend();
  return backend !== null && backend.kind !== 'rpc';
}

export function register(app: Celeriac) {
  const climateTasks = registerClimateTasks(app);
  return {
    ...climateTasks,

    startProcessing: app.task(
      JOB_TASK,
      async function (request: JobRequest) {
        const ctx = await jobContext();
        const deps: RunnerDeps = { log: ctx.log, compute: climateCompute, datasets: ctx.datasets, outputDir: ctx.outputDir, leaseMs: ctx.leaseMs };
        if (await chordBackend(app)) {
          deps.fanOut = async (dataset, req) => {
            const plan = await planStatistics(dataset, req);
            return plan.chunks.length > 0 ? plan : null;
          };
        }
        let outcome = await runJob(deps, this.id, this.hostname);
        if (outcome.kind === 'unknown-job') {
          await adoptRequest(ctx, this.id, request);
          outcome = await runJob(deps, this.id, this.hostname);
        }
        if (outcome.kind === 'busy') {
          // Held by a live worker: look again once its lease could have run out.
          throw this.retry({ countdown: outcome.retryInMs / 1000, max_retries: null });
        }
        if (outcome.kind === 'errored') throw new PythonError('RuntimeError', outcome.error);
        if (outcome.kind === 'fan-out') {
          const { uuid, claim, plan } = outcome;
          const body = signature(FINISH_JOB_TASK, [], { uuid, attempt: claim.attempt });
          const { canvas, chunkIds } = areaValuesChord(plan, body, { queue: this.delivery_info.routing_key || undefined, priority: this.delivery_info.priority });
          if (!(await ctx.log.recordChunks(claim, chunkIds))) return { kind: 'taken-over', uuid };
          // Progress only (see fanOut.ts): left running after this task has handed its slot back.
          const backend = await app.backend();
          const state = async (id: string) => (await backend?.get(id)) ?? { status: 'PENDING' };
          watchChunks({ log: ctx.log, state, touchEveryMs: Math.max(200, ctx.leaseMs / 3) }, claim, chunkIds).catch((err: unknown) => {
            app.log.warn(`climate job ${uuid}: progress watcher stopped: ${(err as Error).message}`);
          });
          throw this.replace(canvas);
        }
        return outcome;
      },
      { params: ['request'], acks_late: true, reject_on_worker_lost: true },
    ),

    // The chord body of a statistics job: parts are the chunks' AreaValues, in chunk order.
    finishJob: app.task(
      FINISH_JOB_TASK,
      async function (parts: AreaValues[], uuid: string, attempt: number) {
        const ctx = await jobContext();
        return finishJob({ log: ctx.log, outputDir: ctx.outputDir }, parts, uuid, attempt, this.hostname);
      },
      { params: ['parts', 'uuid', 'attempt'], acks_late: true, reject_on_worker_lost: true },
    ),
  };
}
