/**
 * ClimateSERV's job API over fastify: the four endpoints its scripts and the `climateserv` client
 * call, GET or POST, parameters in the query string or a form (form wins, as Django's
 * request.POST.get(..., request.GET.get(...)) does), JSONP when `callback` is given. Served under
 * /api/ (ClimateSERV 2) and /chirps/ (ClimateSERV 1 scripts), with or without the trailing slash.
 *
 * Bad input is a 400 `{"errorMsg": "...", "parameter": "..."}` (the `climateserv` client prints
 * errorMsg) and nothing is enqueued. A submitted job is logged first, then sent as a Celery task
 * whose id is the job's uuid, so any Celery worker registering `climate.start_processing` runs it.
 */
import fs from 'node:fs';
import { randomUUID } from 'node:crypto';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import formbody from '@fastify/formbody';
import type { Celeriac } from '../index';
import type { Dataset } from './datasets';
import type { JobLog } from './log';
import { BadParameter, isDownload, parseJobRequest, type JobRequest, type RequestLimits } from './request';

export const JOB_TASK = 'climate.start_processing';

export interface ClimateApiDeps {
  log: JobLog;
  /** Sends the job task (the API process's Celery producer). */
  producer: Pick<Celeriac, 'sendTask'>;
  datasets: ReadonlyMap<number, Dataset>;
  limits: RequestLimits;
  queue: string;
  brokerUrl: string;
  logger?: boolean;
}

/**
 * UI jobs before API jobs, as ClimateSERV (10 vs 1 on its RabbitMQ queue). On Redis kombu reads
 * priority the other way round (0 is served first), so the numbers are flipped there.
 */
export function jobPriority(request: Pick<JobRequest, 'from_ui'>, brokerUrl: string): number {
  const redis = /^(rediss?|sentinel):/i.test(brokerUrl);
  if (redis) return request.from_ui ? 0 : 9;
  return request.from_ui ? 10 : 1;
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const CALLBACK_RE = /^[A-Za-z_$][\w$]*(\.[A-Za-z_$][\w$]*)*$/;

type Params = Record<string, unknown>;

function paramsOf(req: FastifyRequest): Params {
  const query = (req.query ?? {}) as Params;
  const body = req.body && typeof req.body === 'object' && !Buffer.isBuffer(req.body) ? (req.body as Params) : {};
  return { ...query, ...body };
}

function callbackOf(params: Params): string | undefined {
  const cb = params.callback;
  if (cb === undefined || cb === '') return undefined;
  if (typeof cb !== 'string' || !CALLBACK_RE.test(cb)) throw new BadParameter('callback', 'must be a JavaScript function name (letters, digits, _, $, dots)');
  return cb;
}

/** JSON, or `callback(JSON)` as application/javascript. */
function answer(reply: FastifyReply, params: Params, status: number, body: unknown): FastifyReply {
  let cb: string | undefined;
  try {
    cb = callbackOf(params);
  } catch {
    cb = undefined;
  }
  const json = JSON.stringify(body);
  reply.code(status).header('cache-control', 'no-cache');
  if (cb) return reply.type('application/javascript; charset=utf-8').send(`${cb}(${json})`);
  return reply.type('application/json; charset=utf-8').send(json);
}

function badRequest(reply: FastifyReply, params: Params, err: BadParameter): FastifyReply {
  return answer(reply, params, 400, { errorMsg: err.message, parameter: err.parameter });
}

function jobId(params: Params): string {
  const id = params.id;
  if (id === undefined || id === '') throw new BadParameter('id', 'is required (the job uuid from submitDataRequest)');
  if (typeof id !== 'string' || !UUID_RE.test(id)) throw new BadParameter('id', `must be a job uuid, got ${JSON.stringify(id)}`);
  return id.toLowerCase();
}

export async function createClimateApi(deps: ClimateApiDeps): Promise<FastifyInstance> {
  const app = Fastify({ logger: deps.logger ?? false, routerOptions: { ignoreTrailingSlash: true } });
  await app.register(formbody);

  // Every thrown BadParameter is a 400; anything else is the server's fault (503 for a database
  // or broker that is down, which is what fails here in practice).
  app.setErrorHandler((err: Error & { statusCode?: number }, req, reply) => {
    const params = paramsOf(req);
    if (err instanceof BadParameter) return badRequest(reply, params, err);
    if (err.statusCode && err.statusCode < 500) return answer(reply, params, err.statusCode, { errorMsg: err.message });
    req.log.error(err);
    return answer(reply, params, 503, { errorMsg: `service unavailable: ${err.message}` });
  });
  app.setNotFoundHandler((req, reply) =>
    answer(reply, paramsOf(req), 404, { errorMsg: `no such endpoint ${req.method} ${req.url.split('?')[0]}; try /api/submitDataRequest/` }),
  );

  const route = (name: string, handler: (req: FastifyRequest, reply: FastifyReply, params: Params) => Promise<FastifyReply>): void => {
    for (const prefix of ['/api', '/chirps']) {
      app.route({ method: ['GET', 'POST'], url: `${prefix}/${name}/`, handler: async (req, reply) => {
        const params = paramsOf(req);
        callbackOf(params);
        return handler(req, reply, params);
      } });
    }
  };

  route('submitDataRequest', async (req, reply, params) => {
    const request = parseJobRequest(params, deps.datasets, deps.limits);
    const uuid = randomUUID();
    await deps.log.create(uuid, request);
    try {
      await deps.producer.sendTask(JOB_TASK, [request], {}, { id: uuid, queue: deps.queue, priority: jobPriority(request, deps.brokerUrl) });
    } catch (err) {
      const why = err instanceof Error ? err.message : String(err);
      await deps.log.fail(uuid, `could not enqueue the job: ${why}`).catch(() => undefined);
      throw new Error(`the job could not be queued (${why})`, { cause: err });
    }
    req.log.info({ uuid, datatype: request.datatype, operationtype: request.operationtype }, 'climate job submitted');
    return answer(reply, params, 200, [uuid]);
  });

  route('getDataRequestProgress', async (_req, reply, params) => {
    const job = await deps.log.get(jobId(params));
    const progress = !job || job.is_errored ? -1 : job.progress;
    return answer(reply, params, 200, [progress]);
  });

  route('getDataFromRequest', async (_req, reply, params) => {
    const uuid = jobId(params);
    const job = await deps.log.get(uuid);
    if (!job) return answer(reply, params, 404, { errorMsg: `no job ${uuid}` });
    if (job.is_errored) return answer(reply, params, 409, { errorMsg: `job ${uuid} failed: ${job.errors.join('; ')}` });
    if (job.status !== 'Processing_Complete' || !job.results.data_file) {
      return answer(reply, params, 409, { errorMsg: `job ${uuid} is not complete (progress ${job.progress}); poll getDataRequestProgress until 100` });
    }
    const text = await fs.promises.readFile(job.results.data_file, 'utf8');
    const cb = callbackOf(params);
    reply.header('cache-control', 'no-cache');
    if (cb) return reply.type('application/javascript; charset=utf-8').send(`${cb}(${text})`);
    return reply.type('application/json; charset=utf-8').send(text);
  });

  route('getFileForJobID', async (_req, reply, params) => {
    const uuid = jobId(params);
    const job = await deps.log.get(uuid);
    if (!job) return answer(reply, params, 404, { msg: `File Not found. No job ${uuid}.`, fileProgress: -1 });
    if (!isDownload(job.request.operationtype)) {
      return answer(reply, params, 404, { msg: `Job ${uuid} is not a download job (operationtype ${job.request.operationtype}); use getDataFromRequest`, fileProgress: job.progress });
    }
    if (job.is_errored) return answer(reply, params, 200, { msg: `File Not found. The job failed: ${job.errors.join('; ')}`, fileProgress: -1 });
    if (job.status !== 'Processing_Complete' || !job.results.zip_file) return answer(reply, params, 200, { msg: 'File still being built.', fileProgress: job.progress });
    const zip = job.results.zip_file;
    const stat = await fs.promises.stat(zip).catch(() => null);
    if (!stat) return answer(reply, params, 410, { msg: 'File does not exist on server any more.', fileProgress: 100 });
    return reply
      .type('application/zip')
      .header('content-disposition', `attachment; filename=${uuid}.zip`)
      .header('content-length', stat.size)
      .send(fs.createReadStream(zip));
  });

  return app;
}
