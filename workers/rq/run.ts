/**
 * Running an rq job's function on one of the runtime's pools (-P async | threads | processes):
 * the pools take a Celery task request, so the rq job is given that shape (id, name, args,
 * kwargs). `timeout` becomes the hard limit: the async pool fails the job and frees the slot,
 * the thread/process pools also kill the run.
 */
import type { Outcome, PoolJob, TaskDefinition, TaskPool, TaskRequest } from '../index';
import type { RqJob } from './jobData';

export interface RunningJob {
  job: RqJob;
  poolJob: PoolJob;
  outcome: Promise<Outcome>;
  /** Ends the run now with this error (stop-job, kill-horse, cold shutdown). */
  kill(reason: Error): void;
}

function requestOf(job: RqJob): TaskRequest {
  return {
    protocol: 2,
    id: job.id,
    task: job.funcName,
    args: job.args,
    kwargs: job.kwargs,
    embed: { callbacks: null, errbacks: null, chain: null, chord: null },
    retries: 0,
    eta: null,
    etaIso: null,
    expires: null,
    expiresIso: null,
    rootId: job.id,
    parentId: null,
    group: null,
    groupIndex: null,
    timeLimit: [null, job.timeout],
    argsrepr: '',
    kwargsrepr: '',
    origin: null,
    ignoreResult: false,
    shadow: null,
    replyTo: null,
    correlationId: null,
    headers: {},
    properties: {},
  };
}

export function runJob(pool: TaskPool, def: TaskDefinition, job: RqJob, hostname: string): RunningJob {
  const request = requestOf(job);
  const poolJob: PoolJob = {
    delivery: {
      message: { body: Buffer.alloc(0), contentType: 'application/json', contentEncoding: 'utf-8', headers: {}, properties: {} },
      deliveryTag: job.id,
      queue: job.queue,
      exchange: '',
      routingKey: job.queue,
      redelivered: false,
    },
    request,
    def,
    options: def.options,
    controller: null,
    acked: true,
    redeliveries: [],
    timeStart: Date.now() / 1000,
  };
  let killed: ((o: Outcome) => void) | null = null;
  const kill = new Promise<Outcome>((resolve) => (killed = resolve));
  const run = pool.execute({
    job: poolJob,
    limits: { soft: null, hard: job.timeout },
    hostname,
    // rq jobs have no custom states; meta lives in the job hash, which the function cannot reach.
    updateState: async () => undefined,
    // An rq job belongs to no Celery chord: this.addToChord has nothing to join.
    canvasHost: () => Promise.reject(new Error('rq jobs have no Celery canvas (add_to_chord is for Celery tasks)')),
  });
  return {
    job,
    poolJob,
    outcome: Promise.race([run, kill]),
    kill(reason: Error): void {
      pool.terminate(poolJob, reason);
      killed?.({ ok: false, error: reason });
    },
  };
}
