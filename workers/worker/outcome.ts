/**
 * What happens after a task function returns or throws (celery/app/trace.py): store the result
 * state, emit the task event, retry (re-publish), reject or ack the message.
 */
import type { Delivery, Transport } from '../transports/transport';
import type { ResultBackend, TaskState } from '../backends/backend';
import { buildMeta, formatTraceback, serializeException } from '../backends/meta';
import { buildTaskMessage, type TaskRequest } from '../protocol/message';
import { pyRepr } from '../protocol/repr';
import type { Celeriac, AppLogger } from '../app/app';
import type { TaskOptions } from '../app/task';
import { Ignore, Reject, Replace, Retry, TaskRevokedError, WorkerLostError } from '../app/errors';
import { WorkerCanvas } from '../canvas/trace';
import { CanvasEnv } from '../canvas/env';
import { exponentialBackoff } from './backoff';
import type { Job } from './job';
import type { RevokedSet } from './revoked';

/** What storeState reads of a job (an unknown task's message has only these). */
export type StoredJob = Pick<Job, 'request' | 'delivery' | 'acked'>;

export type Settlement = 'ack' | 'reject' | 'requeue';

export interface OutcomeDeps {
  app: Celeriac;
  hostname: string;
  transport(): Transport;
  backend(): ResultBackend | null;
  revoked: RevokedSet;
  emit(event: string, payload: unknown): void;
  logInfo: boolean;
}

export class Outcomes {
  private readonly log: AppLogger;
  private canvasInstance: WorkerCanvas | null = null;

  constructor(private readonly deps: OutcomeDeps) {
    this.log = deps.app.log;
  }

  /** Chains, callbacks, errbacks and chords (workers/canvas), made on first use. */
  private get canvas(): WorkerCanvas {
    this.canvasInstance ??= new WorkerCanvas(new CanvasEnv(this.deps.app, this.deps.backend(), this.deps.hostname));
    return this.canvasInstance;
  }

  /** Canvas work after the result is stored must not undo the task's outcome: log and go on. */
  private async afterStored(request: TaskRequest, step: (c: WorkerCanvas) => Promise<void>): Promise<void> {
    if (!WorkerCanvas.involved(request)) return;
    try {
      await step(this.canvas);
    } catch (err) {
      this.log.error(`Task ${request.task}[${request.id}] canvas step failed: ${(err as Error).message}`);
    }
  }

  /** The task's before_start hook; a throw becomes the task's failure (Celery runs it inside the trace). */
  async beforeStart(job: Job): Promise<{ ok: false; error: unknown } | null> {
    const hook = job.options.before_start;
    if (!hook) return null;
    try {
      await hook(job.request.id, job.request.args, job.request.kwargs);
      return null;
    } catch (error) {
      return { ok: false, error };
    }
  }

  /** on_success / on_failure run after the state is stored; their errors are logged, never change it. */
  private async hook(job: Job, name: 'on_success' | 'on_failure', value: unknown): Promise<void> {
    const hook = job.options[name];
    if (!hook) return;
    try {
      await hook(value, job.request.id, job.request.args, job.request.kwargs);
    } catch (err) {
      this.log.error(`Task ${job.request.task}[${job.request.id}] ${name} failed: ${(err as Error).message}`);
    }
  }

  async success(job: Job, value: unknown, runtime: number): Promise<void> {
    const { request } = job;
    let children: unknown[] | undefined;
    if (WorkerCanvas.involved(request)) {
      // Callbacks and the next chain step go out before the result is stored (they are its children).
      try {
        children = await this.canvas.dispatch(request, value ?? null);
      } catch (err) {
        await this.failure(job, err, runtime);
        return;
      }
    }
    if (!ignoresResult(job)) await this.storeState(job, 'SUCCESS', value ?? null, null, children);
    // Checked here too: a plain task (nearly all) pays no closure and no await for it (#16).
    if (WorkerCanvas.involved(request)) await this.afterStored(request, (c) => c.succeeded(request, value ?? null));
    if (job.options.on_success) await this.hook(job, 'on_success', value ?? null);
    if (this.deps.logInfo) this.log.info(`Task ${request.task}[${request.id}] succeeded in ${runtime}s: ${pyRepr(value)}`);
    this.deps.emit('task-succeeded', { request, result: value, runtime });
    if (!job.acked) await this.settle(job.delivery, 'ack');
  }

  async failure(job: Job, error: unknown, runtime: number): Promise<void> {
    const { request } = job;
    if (error instanceof Replace) {
      await this.canvas.replaced(request, error.signature);
      this.log.info(`Task ${request.task}[${request.id}] replaced`);
      if (!job.acked) await this.settle(job.delivery, 'ack');
      return;
    }
    if (error instanceof Ignore) {
      if (!job.acked) await this.settle(job.delivery, 'ack');
      return;
    }
    if (error instanceof Reject) {
      this.log.info(`Task ${request.task}[${request.id}] rejected: ${error.message} (requeue=${error.requeue})`);
      if (!error.requeue) {
        // Celery 5.7 (issue #4222): a message rejected for good is a FAILURE, not PENDING forever.
        const exc = serializeException(error);
        if (!ignoresResult(job)) await this.storeState(job, 'FAILURE', exc, formatTraceback(error));
        this.deps.emit('task-failed', { request, exception: `Reject(${pyRepr(error.message)})`, runtime });
      }
      if (!job.acked) await (error.requeue ? this.requeue(job) : this.settle(job.delivery, 'reject'));
      this.deps.emit('task-rejected', { request, requeue: error.requeue });
      return;
    }
    const retry = error instanceof Retry ? error : autoRetry(job.options, request, error);
    if (retry instanceof Retry) {
      await this.republish(job, retry);
      return;
    }
    const failure = retry; // autoRetry returns the error to fail with when it does not retry
    if (failure instanceof TaskRevokedError && this.deps.revoked.has(request.id)) {
      // Terminated by a remote revoke: REVOKED, as Celery stores it.
      if (!ignoresResult(job)) await this.storeState(job, 'REVOKED', serializeException(failure), null);
      await this.afterStored(request, (c) => c.revoked(request, failure));
      this.deps.emit('task-revoked', { request, expired: false, terminated: true });
      if (!job.acked) await this.settle(job.delivery, 'ack');
      return;
    }
    if (failure instanceof WorkerLostError && job.options.acks_late && job.options.reject_on_worker_lost && !job.acked) {
      // The pool child died under the task: give the message back, record nothing (Celery).
      this.log.warn(`Task ${request.task}[${request.id}] ${failure.message}: message requeued (reject_on_worker_lost)`);
      await this.requeue(job);
      return;
    }
    const exc = serializeException(failure);
    const traceback = formatTraceback(failure);
    this.log.error(`Task ${request.task}[${request.id}] raised unexpected: ${exc.exc_type}(${exc.exc_message.map((m) => pyRepr(m)).join(', ')})`);
    // Celery's store_errors_even_if_ignored defaults to False: ignore_result skips failures too.
    if (!ignoresResult(job)) await this.storeState(job, 'FAILURE', exc, traceback);
    await this.afterStored(request, (c) => c.failed(request, failure, traceback));
    if (job.options.on_failure) await this.hook(job, 'on_failure', failure);
    this.deps.emit('task-failed', { request, exception: `${exc.exc_type}(${pyRepr(exc.exc_message[0] ?? '')})`, traceback, runtime });
    if (!job.acked) await this.settle(job.delivery, 'ack');
  }

  /**
   * A task revoked or expired before it ran: REVOKED is stored, its chord counts it (Celery's
   * mark_as_revoked), and the message is acknowledged, never run.
   */
  async discarded(job: Job, error: TaskRevokedError): Promise<void> {
    const { request } = job;
    try {
      await this.storeState(job, 'REVOKED', serializeException(error), null);
      await this.afterStored(request, (c) => c.revoked(request, error));
    } catch (err) {
      this.log.error(`Task ${request.task}[${request.id}] could not be stored as REVOKED: ${(err as Error).message}`);
    }
    await this.settle(job.delivery, 'ack');
  }

  /** Re-send the task with retries+1 (Celery's Task.retry), store RETRY, then ack the old message. */
  private async republish(job: Job, retry: Retry): Promise<void> {
    const { request, delivery } = job;
    const { message } = buildTaskMessage(request.task, retry.spec.args ?? request.args, retry.spec.kwargs ?? request.kwargs, {
      id: request.id,
      retries: request.retries + 1,
      countdown: retry.spec.countdown,
      eta: retry.spec.eta ?? null,
      expires: request.expiresIso,
      rootId: request.rootId,
      parentId: request.parentId,
      group: request.group,
      groupIndex: request.groupIndex,
      timeLimit: request.timeLimit,
      ignoreResult: request.ignoreResult,
      shadow: request.shadow,
      replyTo: request.replyTo ?? undefined,
      priority: Number(delivery.message.properties.priority ?? 0),
      serializer: job.options.serializer ?? this.deps.app.options.taskSerializer,
      embed: request.embed,
    });
    await this.deps.transport().publish({ message, exchange: delivery.exchange, routingKey: delivery.routingKey || delivery.queue });
    const exc = retry.exc === undefined ? null : serializeException(retry.exc);
    if (!ignoresResult(job)) await this.storeState(job, 'RETRY', exc, retry.exc ? formatTraceback(retry.exc) : null);
    this.log.info(`Task ${request.task}[${request.id}] retry: ${retry.message}`);
    this.deps.emit('task-retried', { request, reason: retry.message, retry });
    if (!job.acked) await this.settle(delivery, 'ack');
  }

  /**
   * Store a state of `job`'s task. `job.acked` tells the backend whether the message waits on this
   * store (StoreContext.messageAcked): an unknown task's message, never run, counts as unacked.
   */
  async storeState(job: StoredJob, state: TaskState, result: unknown, traceback: string | null, children?: unknown[]): Promise<void> {
    const { request, delivery } = job;
    const backend = this.deps.backend();
    if (!backend) return;
    const meta = buildMeta(request.id, state, result, {
      traceback,
      extended: this.deps.app.options.resultExtended,
      request: {
        task: request.task,
        args: request.args,
        kwargs: request.kwargs,
        hostname: this.deps.hostname,
        retries: request.retries,
        queue: delivery.routingKey || delivery.queue,
        group: request.group,
        parentId: request.parentId,
        children,
      },
    });
    const context = { replyTo: request.replyTo ?? undefined, correlationId: request.correlationId ?? request.id, messageAcked: job.acked };
    try {
      await backend.store(meta, context);
    } catch (err) {
      if (!(err instanceof TypeError || (err as Error).name === 'TypeError')) throw err;
      // The result could not be encoded (BigInt, cycles): store that as the failure instead, to
      // the same place (rpc:// needs the reply_to to send it anywhere).
      const encodeError = serializeException(Object.assign(new Error(`result is not serializable: ${(err as Error).message}`), { name: 'EncodeError' }));
      await backend.store(buildMeta(request.id, 'FAILURE', encodeError, { traceback: null }), context);
    }
  }

  /** Give the job's message back to the queue (marked first: the copy may be back before we finish). */
  requeue(job: Job): Promise<void> {
    job.requeued = true;
    return this.settle(job.delivery, 'requeue');
  }

  async settle(delivery: Delivery, how: Settlement): Promise<void> {
    try {
      if (how === 'ack') await this.deps.transport().ack(delivery);
      else await this.deps.transport().reject(delivery, how === 'requeue');
    } catch (err) {
      this.log.error(`could not ${how} message ${delivery.deliveryTag}: ${(err as Error).message}`);
    }
  }
}

export function ignoresResult(job: Job): boolean {
  return job.request.ignoreResult || job.options.ignore_result === true;
}

/** autoretry_for: turn a matching error into a Retry (or the error itself when retries ran out). */
export function autoRetry(options: TaskOptions, request: TaskRequest, error: unknown): unknown {
  const list = options.autoretry_for;
  if (!list?.length || !(error instanceof Error)) return error;
  const matches = list.some((c) => (typeof c === 'string' ? c === error.name : error instanceof c));
  if (!matches) return error;
  const max = options.max_retries === undefined ? 3 : options.max_retries;
  if (max !== null && request.retries >= max) return error;
  let countdown = options.default_retry_delay ?? 180;
  if (options.retry_backoff) {
    const factor = options.retry_backoff === true ? 1 : options.retry_backoff;
    countdown = exponentialBackoff(factor, request.retries, options.retry_backoff_max ?? 600, options.retry_jitter ?? true);
  }
  return new Retry(`Retry in ${countdown}s: ${error.name}(${pyRepr(error.message)})`, { countdown }, error);
}
