/**
 * `climate.start_processing(request)`: runs one ClimateSERV-style job (workers/jobs/runner.ts).
 * The job's uuid is the task id, as in ClimateSERV, and the job log says how it went. Sent by
 * `celeriac climate-api`; any Celery producer may send it too (the request is then checked and
 * logged here).
 *
 * acks_late: a worker killed mid-job leaves the message unacked, it is delivered again, and the
 * next worker takes the job over once the dead one's claim has gone quiet (climate.job_lease_seconds).
 * A delivery that finds the job still held by a live worker retries later instead of running it twice.
 */
import { loadConfig, PythonError, type Celeriac } from '../index';
import { JOB_TASK } from '../jobs/api';
import { climateCompute } from '../jobs/climateCompute';
import { openJobContext, type JobContext } from '../jobs/context';
import { BadParameter, parseJobRequest, type JobRequest } from '../jobs/request';
import { runJob } from '../jobs/runner';

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

export function register(app: Celeriac) {
  return {
    startProcessing: app.task(
      JOB_TASK,
      async function (request: JobRequest) {
        const ctx = await jobContext();
        const deps = { log: ctx.log, compute: climateCompute, datasets: ctx.datasets, outputDir: ctx.outputDir, leaseMs: ctx.leaseMs };
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
        return outcome;
      },
      { params: ['request'], acks_late: true, reject_on_worker_lost: true },
    ),
  };
}
