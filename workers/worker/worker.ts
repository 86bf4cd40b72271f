/**
 * The worker: takes deliveries from the transport, holds at most concurrency × prefetch_multiplier
 * unacknowledged (plus one per ETA task waiting, as Celery's consumer raises QoS for them), runs at
 * most `concurrency` tasks at once on the event loop, stores results, acks, retries.
 */
import { EventEmitter } from 'node:events';
import { performance } from 'node:perf_hooks';
import type { Delivery, Transport } from '../transports/transport';
import type { ResultBackend, TaskState } from '../backends/backend';
import { buildMeta, formatTraceback, serializeException } from '../backends/meta';
import { parseTaskMessage, buildTaskMessage, type TaskRequest } from '../protocol/message';
import type { SerializerName } from '../protocol/serializers';
import { pyRepr } from '../protocol/repr';
import type { Celeriac, AppLogger } from '../app/app';
import { bindArguments, type TaskDefinition, type TaskOptions } from '../app/task';
import { Ignore, NotRegistered, Reject, Retry, TaskRevokedError } from '../app/errors';
import { runWithLimits } from './execute';
import { createContext } from './context';
import { exponentialBackoff } from './backoff';
import { declarationFor, type QueuePolicy } from './queues';
import { parseRate, RateLimiter, type RateLimit } from './rate';

/** Most extra prefetch granted to tasks waiting for a rate-limit token. */
const MAX_THROTTLED_EXTRA = 1000;

const DEFAULT_QUEUE_POLICY: QueuePolicy = { definitions: null, maxPriority: null, missingQueueType: 'classic' };

export interface WorkerOptions {
  /** Already expanded node name (name@host). */
  hostname: string;
  queues: string[];
  concurrency: number;
  prefetchMultiplier: number;
  accept: SerializerName[];
  /** How consumed queues are declared (task_queues, max priority, quorum). */
  queuePolicy?: QueuePolicy;
}

interface Job {
  delivery: Delivery;
  request: TaskRequest;
  def: TaskDefinition;
  options: TaskOptions;
  /** Made on first use (time limit, this.signal): one per message costs noticeably at 40k/s. */
  controller: AbortController | null;
  acked: boolean;
  /** Copies of this message the broker redelivered while it ran here (acked when it ends). */
  redeliveries: Delivery[];
  /** Seconds since the epoch when it started running (Celery's Request.time_start). */
  timeStart?: number;
}

type Phase = 'created' | 'running' | 'warm' | 'cold' | 'stopped';

export class Worker extends EventEmitter {
  private transport!: Transport;
  private backend: ResultBackend | null = null;
  private readonly ready: Job[] = [];
  private readonly active = new Set<Job>();
  private readonly activeById = new Map<string, Job>();
  private readonly etaTimers = new Map<Job, NodeJS.Timeout>();
  /** Tasks over their rate_limit, waiting for a token (their messages stay reserved). */
  private readonly limiter = new RateLimiter<Job>((job) => this.admit(job));
  /** Limits set live by the time_limit / rate_limit control commands, by task name. */
  private readonly timeLimitOverrides = new Map<string, { soft: number | null; hard: number | null }>();
  private readonly rateOverrides = new Map<string, number>();
  private phase: Phase = 'created';
  /** The prefetch count last given to the transport. */
  private prefetchSet = -1;
  private drained: (() => void) | null = null;
  private readonly accept: ReadonlySet<SerializerName>;
  private readonly log: AppLogger;
  private readonly logInfo: boolean;
  processed = 0;

  constructor(
    readonly app: Celeriac,
    readonly options: WorkerOptions,
  ) {
    super();
    this.accept = new Set(options.accept);
    this.log = app.log;
    this.logInfo = app.log.isLevelEnabled?.('info') ?? true;
  }

  get activeCount(): number {
    return this.active.size;
  }

  get reservedCount(): number {
    return this.ready.length + this.etaTimers.size + this.limiter.size;
  }

  private get basePrefetch(): number {
    // prefetch_multiplier 0 means "no limit" in Celery.
    return this.options.prefetchMultiplier > 0 ? this.options.concurrency * this.options.prefetchMultiplier : 0;
  }

  async start(): Promise<void> {
    this.transport = await this.app.transport();
    this.backend = await this.app.backend();
    for (const q of this.options.queues) {
      await this.transport.declareQueue(declarationFor(q, this.options.queuePolicy ?? DEFAULT_QUEUE_POLICY));
    }
    this.phase = 'running';
    this.prefetchSet = this.basePrefetch;
    this.transport.setPrefetch(this.basePrefetch);
    await this.transport.consume(this.options.queues, (d) => this.onDelivery(d));
    this.log.info(`${this.options.hostname} ready.`);
  }

  // ---- receiving ----

  private onDelivery(delivery: Delivery): void {
    let request: TaskRequest;
    try {
      request = parseTaskMessage(delivery.message, this.accept);
    } catch (err) {
      this.log.error(`Received invalid task message from ${delivery.queue}: ${(err as Error).message}. The message has been rejected.`);
      void this.settle(delivery, 'reject');
      this.emit('task-rejected', { delivery, reason: (err as Error).message });
      return;
    }
    const def = this.app.tasks.get(request.task);
    if (!def) {
      this.onUnknownTask(delivery, request);
      return;
    }
    const running = delivery.redelivered ? this.activeById.get(request.id) : undefined;
    if (running) {
      // The broker gave the message back while it still runs here (its channel closed, e.g.
      // RabbitMQ's consumer_timeout): finish it once and settle the copy with it.
      this.log.info(`Task ${request.task}[${request.id}] redelivered while running here: not started twice`);
      running.redeliveries.push(delivery);
      return;
    }
    const job: Job = { delivery, request, def, options: this.app.taskOptions(def), controller: null, acked: false, redeliveries: [] };
    if (this.logInfo) this.log.info(`Task ${request.task}[${request.id}] received`);
    this.emit('task-received', job.request);
    if (this.isExpired(job) || this.discardIfRevoked(job)) return;
    const delay = request.eta ? request.eta.getTime() - Date.now() : 0;
    if (delay > 0) this.holdEta(job, delay);
    else this.enqueue(job);
  }

  private onUnknownTask(delivery: Delivery, request: TaskRequest): void {
    this.log.error(
      `Received unregistered task of type '${request.task}'.\nThe message has been ignored and discarded.\n` +
        `Did you remember to import the module containing this task?`,
    );
    void this.settle(delivery, 'reject');
    void this.storeState(request, 'FAILURE', serializeException(new NotRegistered(request.task)), null, delivery);
    this.emit('task-failed', { request, exception: `NotRegistered('${request.task}')` });
  }

  /** Expired messages are stored as REVOKED and acknowledged, never run (Celery's behaviour). */
  private isExpired(job: Job): boolean {
    const { expires } = job.request;
    if (!expires || expires.getTime() > Date.now()) return false;
    this.log.info(`Discarding revoked task: ${job.request.task}[${job.request.id}] (expired)`);
    const exc = serializeException(new TaskRevokedError('expired'));
    void this.storeState(job.request, 'REVOKED', exc, null, job.delivery);
    void this.settle(job.delivery, 'ack');
    this.emit('task-revoked', { request: job.request, expired: true });
    return true;
  }

  private holdEta(job: Job, delay: number): void {
    const fire = (): void => {
      this.etaTimers.delete(job);
      this.syncPrefetch();
      if (this.phase === 'running' && !this.isStale(job) && !this.isExpired(job) && !this.discardIfRevoked(job)) this.enqueue(job);
    };
    // setTimeout caps at ~24.8 days; longer ETAs re-arm.
    const arm = (ms: number): NodeJS.Timeout =>
      setTimeout(() => {
        const left = (job.request.eta?.getTime() ?? 0) - Date.now();
        if (left > 0) this.etaTimers.set(job, arm(left));
        else fire();
      }, Math.min(ms, 2 ** 31 - 1));
    this.etaTimers.set(job, arm(delay));
    // The message stays unacked while it waits, so raise prefetch by one to keep the slots working.
    this.syncPrefetch();
  }

  /** Through the task's rate limit (at once when it has none) into the ready line. */
  private enqueue(job: Job): void {
    const name = job.request.task;
    const rate = this.rateOverrides.get(name) ?? this.optionRate(job);
    const before = this.limiter.size;
    this.limiter.submit(name, rate, job);
    if (this.limiter.size !== before) this.syncPrefetch();
  }

  /** The task's own rate_limit; a bad one is logged and ignored rather than failing its tasks. */
  private optionRate(job: Job): number {
    try {
      return parseRate(job.options.rate_limit);
    } catch (err) {
      this.log.warn(`Task ${job.request.task}: invalid rate_limit ignored: ${(err as Error).message}`);
      return 0;
    }
  }

  /** A job that got its token (or needs none). */
  private admit(job: Job): void {
    if (this.phase !== 'running') return; // shutdown already gave its message back
    this.ready.push(job);
    this.syncPrefetch();
    this.pump();
  }

  /**
   * concurrency × prefetch_multiplier, plus one for each task held without a slot (ETA, or waiting
   * for a rate-limit token): those messages stay unacked, and must not starve the other tasks.
   */
  private syncPrefetch(): void {
    const count = this.currentPrefetch;
    // Called for every admitted task: only tell the transport about a change.
    if (this.phase !== 'running' || count === this.prefetchSet) return;
    this.prefetchSet = count;
    this.transport.setPrefetch(count);
  }

  private pump(): void {
    while (this.phase === 'running' && this.active.size < this.options.concurrency && this.ready.length) {
      const job = this.ready.shift()!;
      if (this.isStale(job) || this.discardIfRevoked(job)) continue;
      void this.run(job);
    }
  }

  /**
   * A reserved message whose connection died is the broker's again (it redelivers it, as
   * Celery's consumer drops reserved requests on connection loss): never start it here.
   */
  private isStale(job: Job): boolean {
    if (this.transport.isLive?.(job.delivery) !== false) return false;
    this.log.info(`Task ${job.request.task}[${job.request.id}] dropped: its connection was lost, the broker redelivers it`);
    return true;
  }

  // ---- running ----

  private async run(job: Job): Promise<void> {
    this.active.add(job);
    this.activeById.set(job.request.id, job);
    job.timeStart = Date.now() / 1000;
    const { request, options, def } = job;
    const controller = (): AbortController => (job.controller ??= new AbortController());
    try {
      if (!options.acks_late) {
        job.acked = true;
        void this.settle(job.delivery, 'ack');
      }
      if (options.track_started) {
        await this.storeState(request, 'STARTED', { pid: process.pid, hostname: this.options.hostname }, null, job.delivery);
      }
      this.emit('task-started', request);
      const ctx = createContext({
        request,
        options,
        hostname: this.options.hostname,
        deliveryInfo: {
          exchange: job.delivery.exchange,
          routing_key: job.delivery.routingKey,
          priority: Number(job.delivery.message.properties.priority ?? 0),
          redelivered: job.delivery.redelivered,
        },
        signal: () => controller().signal,
        updateState: (state, meta) => this.storeState(request, state, meta, null, job.delivery),
      });
      // The message's own limits first, then the task's (as set live by the time_limit command).
      const live = this.timeLimitOverrides.get(request.task);
      const limits = {
        soft: request.timeLimit[0] ?? (live ? live.soft : options.soft_time_limit) ?? null,
        hard: request.timeLimit[1] ?? (live ? live.hard : options.time_limit) ?? null,
      };
      const started = performance.now();
      const outcome = await runWithLimits(
        () => def.fn.apply(ctx, bindArguments(def, request.args, request.kwargs)),
        limits,
        controller,
      );
      const runtime = (performance.now() - started) / 1000;
      if (outcome.ok) await this.onSuccess(job, outcome.value, runtime);
      else await this.onError(job, outcome.error, runtime);
    } catch (err) {
      // Only infrastructure can land here (result backend or broker errors): never crash the worker.
      this.log.error(`Task ${request.task}[${request.id}] could not be completed: ${(err as Error).message}`);
      if (!job.acked) void this.settle(job.delivery, 'requeue');
    } finally {
      this.active.delete(job);
      this.activeById.delete(request.id);
      for (const copy of job.redeliveries) void this.settle(copy, 'ack');
      this.processed++;
      this.totals.set(request.task, (this.totals.get(request.task) ?? 0) + 1);
      if (this.active.size === 0) this.drained?.();
      this.pump();
    }
  }

  private ignoresResult(job: Job): boolean {
    return job.request.ignoreResult || job.options.ignore_result === true;
  }

  private async onSuccess(job: Job, value: unknown, runtime: number): Promise<void> {
    const { request } = job;
    if (!this.ignoresResult(job)) await this.storeState(request, 'SUCCESS', value ?? null, null, job.delivery);
    if (this.logInfo) this.log.info(`Task ${request.task}[${request.id}] succeeded in ${runtime}s: ${pyRepr(value)}`);
    this.emit('task-succeeded', { request, result: value, runtime });
    if (!job.acked) await this.settle(job.delivery, 'ack');
  }

  private async onError(job: Job, error: unknown, runtime: number): Promise<void> {
    const { request } = job;
    if (error instanceof Ignore) {
      if (!job.acked) await this.settle(job.delivery, 'ack');
      return;
    }
    if (error instanceof Reject) {
      this.log.info(`Task ${request.task}[${request.id}] rejected: ${error.message} (requeue=${error.requeue})`);
      if (!job.acked) await this.settle(job.delivery, error.requeue ? 'requeue' : 'reject');
      this.emit('task-rejected', { request, requeue: error.requeue });
      return;
    }
    const retry = error instanceof Retry ? error : this.autoRetry(job, error);
    if (retry instanceof Retry) {
      await this.republish(job, retry);
      return;
    }
    const failure = retry; // autoRetry returns the error to fail with when it does not retry
    if (failure instanceof TaskRevokedError && this.revokedIds.has(request.id)) {
      // Terminated by a remote revoke: REVOKED, as Celery stores it.
      if (!this.ignoresResult(job)) await this.storeState(request, 'REVOKED', serializeException(failure), null, job.delivery);
      this.emit('task-revoked', { request, expired: false, terminated: true });
      if (!job.acked) await this.settle(job.delivery, 'ack');
      return;
    }
    const exc = serializeException(failure);
    const traceback = formatTraceback(failure);
    this.log.error(`Task ${request.task}[${request.id}] raised unexpected: ${exc.exc_type}(${exc.exc_message.map((m) => pyRepr(m)).join(', ')})`);
    // Celery's store_errors_even_if_ignored defaults to False: ignore_result skips failures too.
    if (!this.ignoresResult(job)) await this.storeState(request, 'FAILURE', exc, traceback, job.delivery);
    this.emit('task-failed', { request, exception: `${exc.exc_type}(${pyRepr(exc.exc_message[0] ?? '')})`, traceback, runtime });
    if (!job.acked) await this.settle(job.delivery, 'ack');
  }

  /** autoretry_for: turn a matching error into a Retry (or the error itself when retries ran out). */
  private autoRetry(job: Job, error: unknown): unknown {
    const list = job.options.autoretry_for;
    if (!list?.length || !(error instanceof Error)) return error;
    const matches = list.some((c) => (typeof c === 'string' ? c === error.name : error instanceof c));
    if (!matches) return error;
    const { options, request } = job;
    const max = options.max_retries === undefined ? 3 : options.max_retries;
    if (max !== null && request.retries >= max) return error;
    let countdown = options.default_retry_delay ?? 180;
    if (options.retry_backoff) {
      const factor = options.retry_backoff === true ? 1 : options.retry_backoff;
      countdown = exponentialBackoff(factor, request.retries, options.retry_backoff_max ?? 600, options.retry_jitter ?? true);
    }
    return new Retry(`Retry in ${countdown}s: ${error.name}(${pyRepr(error.message)})`, { countdown }, error);
  }

  /** Re-send the task with retries+1 (Celery's Task.retry), store RETRY, then ack the old message. */
  private async republish(job: Job, retry: Retry): Promise<void> {
    const { request, delivery } = job;
    const { message } = buildTaskMessage(request.task, retry.spec.args ?? request.args, retry.spec.kwargs ?? request.kwargs, {
      id: request.id,
      retries: request.retries + 1,
      countdown: retry.spec.countdown,
      eta: retry.spec.eta ?? null,
      expires: request.expires,
      rootId: request.rootId,
      parentId: request.parentId,
      group: request.group,
      groupIndex: request.groupIndex,
      timeLimit: request.timeLimit,
      ignoreResult: request.ignoreResult,
      shadow: request.shadow,
      replyTo: request.replyTo ?? undefined,
      priority: Number(delivery.message.properties.priority ?? 0),
      serializer: job.options.serializer ?? this.app.options.taskSerializer,
      embed: request.embed,
    });
    await this.transport.publish({ message, exchange: delivery.exchange, routingKey: delivery.routingKey || delivery.queue });
    const exc = retry.exc === undefined ? null : serializeException(retry.exc);
    if (!this.ignoresResult(job)) await this.storeState(request, 'RETRY', exc, retry.exc ? formatTraceback(retry.exc) : null, delivery);
    this.log.info(`Task ${request.task}[${request.id}] retry: ${retry.message}`);
    this.emit('task-retried', { request, reason: retry.message, retry });
    if (!job.acked) await this.settle(delivery, 'ack');
  }

  // ---- results and acks ----

  private async storeState(
    request: TaskRequest,
    state: TaskState,
    result: unknown,
    traceback: string | null,
    delivery: Delivery,
  ): Promise<void> {
    if (!this.backend) return;
    const meta = buildMeta(request.id, state, result, {
      traceback,
      extended: this.app.options.resultExtended,
      request: {
        task: request.task,
        args: request.args,
        kwargs: request.kwargs,
        hostname: this.options.hostname,
        retries: request.retries,
        queue: delivery.routingKey || delivery.queue,
        group: request.group,
        parentId: request.parentId,
      },
    });
    try {
      await this.backend.store(meta, { replyTo: request.replyTo ?? undefined, correlationId: request.correlationId ?? request.id });
    } catch (err) {
      if (!(err instanceof TypeError || (err as Error).name === 'TypeError')) throw err;
      // The result could not be encoded (BigInt, cycles): store that as the failure instead.
      const encodeError = serializeException(Object.assign(new Error(`result is not serializable: ${(err as Error).message}`), { name: 'EncodeError' }));
      await this.backend.store(buildMeta(request.id, 'FAILURE', encodeError, { traceback: null }));
    }
  }

  private async settle(delivery: Delivery, how: 'ack' | 'reject' | 'requeue'): Promise<void> {
    try {
      if (how === 'ack') await this.transport.ack(delivery);
      else await this.transport.reject(delivery, how === 'requeue');
    } catch (err) {
      this.log.error(`could not ${how} message ${delivery.deliveryTag}: ${(err as Error).message}`);
    }
  }

  // ---- remote control (read by workers/control) ----

  /** Task ids revoked on this worker (Celery's worker_state.revoked), oldest first. */
  private readonly revokedIds = new Set<string>();
  /** Tasks run, by name (Celery's worker_state.total_count). */
  private readonly totals = new Map<string, number>();
  private readonly startedAt = Date.now();

  /** A view of one held request, for inspect active/reserved/scheduled/query_task. */
  controlRequests(): { state: 'active' | 'reserved' | 'scheduled'; request: TaskRequest; delivery: Delivery; acked: boolean; timeStart: number | null }[] {
    const view = (state: 'active' | 'reserved' | 'scheduled', j: Job) => ({ state, request: j.request, delivery: j.delivery, acked: j.acked, timeStart: j.timeStart ?? null });
    return [
      ...[...this.active].map((j) => view('active', j)),
      ...this.ready.map((j) => view('reserved', j)),
      ...this.limiter.pending().map((j) => view('reserved', j)),
      ...[...this.etaTimers.keys()].map((j) => view('scheduled', j)),
    ];
  }

  get revokedTaskIds(): readonly string[] {
    return [...this.revokedIds];
  }

  get taskTotals(): ReadonlyMap<string, number> {
    return this.totals;
  }

  get uptimeSeconds(): number {
    return Math.floor((Date.now() - this.startedAt) / 1000);
  }

  get currentPrefetch(): number {
    // Rate-limited waiters raise prefetch too, so unthrottled tasks still get through beside them
    // (Celery lets them take slots instead) — but by a bounded amount: a backlog of throttled
    // tasks must not be pulled into memory whole.
    const throttled = Math.min(this.limiter.size, Math.max(this.basePrefetch, MAX_THROTTLED_EXTRA));
    return this.basePrefetch && this.basePrefetch + this.etaTimers.size + throttled;
  }

  /**
   * pool_grow / pool_shrink: the async pool is only a limit, so this sets it (at least 1), follows
   * with prefetch and starts waiting tasks at once. Running tasks over a lowered limit finish.
   */
  resize(delta: number): number {
    this.options.concurrency = Math.max(1, this.options.concurrency + Math.trunc(delta));
    this.syncPrefetch();
    this.pump();
    return this.options.concurrency;
  }

  /** The time_limit command: limits for tasks of this name started from now on (null = none). */
  setTimeLimits(name: string, soft: number | null, hard: number | null): void {
    this.timeLimitOverrides.set(name, { soft, hard });
  }

  /** The rate_limit command: a new rate for this name (throws on a bad rate); 0/null switches it off. */
  setRateLimit(name: string, limit: RateLimit): void {
    const perSecond = parseRate(limit);
    this.rateOverrides.set(name, perSecond);
    this.limiter.setRate(name, perSecond);
    this.syncPrefetch();
  }

  /**
   * Celery's revoke: remember the ids (reserved and ETA tasks with them are discarded as REVOKED
   * before they run, now or when they arrive); terminate=true aborts a running one's signal.
   * Returns the ids of the running tasks it terminated.
   */
  revoke(ids: readonly string[], terminate = false): string[] {
    for (const id of ids) this.revokedIds.add(id);
    while (this.revokedIds.size > 50_000) this.revokedIds.delete(this.revokedIds.values().next().value as string);
    for (const [job, timer] of [...this.etaTimers]) {
      if (!this.revokedIds.has(job.request.id)) continue;
      clearTimeout(timer);
      this.etaTimers.delete(job);
      this.syncPrefetch();
      this.discardIfRevoked(job);
    }
    if (this.limiter.remove((job) => this.revokedIds.has(job.request.id)).map((job) => this.discardIfRevoked(job)).length) this.syncPrefetch();
    for (let i = this.ready.length - 1; i >= 0; i--) {
      const job = this.ready[i]!;
      if (this.discardIfRevoked(job)) this.ready.splice(i, 1);
    }
    const terminated: string[] = [];
    if (terminate) {
      for (const id of ids) {
        const job = this.activeById.get(id);
        if (!job) continue;
        (job.controller ??= new AbortController()).abort(new TaskRevokedError('terminated'));
        terminated.push(id);
      }
    }
    return terminated;
  }

  /** A revoked task that has not started: store REVOKED, ack, never run it (Celery's Request.revoked()). */
  private discardIfRevoked(job: Job): boolean {
    if (!this.revokedIds.has(job.request.id)) return false;
    this.log.info(`Discarding revoked task: ${job.request.task}[${job.request.id}]`);
    const exc = serializeException(new TaskRevokedError('revoked'));
    void this.storeState(job.request, 'REVOKED', exc, null, job.delivery);
    void this.settle(job.delivery, 'ack');
    this.emit('task-revoked', { request: job.request, expired: false });
    return true;
  }

  // ---- shutdown ----

  /**
   * warm: stop consuming, let running tasks finish, give unstarted reserved messages back.
   * cold: abort running tasks now; acks_late messages go back to the queue.
   */
  async shutdown(mode: 'warm' | 'cold' = 'warm'): Promise<void> {
    if (this.phase === 'stopped' || this.phase === 'created') return;
    if (mode === 'cold') {
      this.phase = 'cold';
      for (const job of this.active) job.controller?.abort(new Error('cold shutdown'));
      this.drained?.();
      return;
    }
    if (this.phase !== 'running') return;
    this.phase = 'warm';
    for (const t of this.etaTimers.values()) clearTimeout(t);
    this.etaTimers.clear();
    this.limiter.clear();
    this.ready.length = 0;
    // Wait for running tasks to finish — or for a cold shutdown, which resolves this at once, even
    // while stopConsuming() is still waiting for a blocked poll to return.
    const drained = this.active.size > 0 ? new Promise<void>((resolve) => (this.drained = resolve)) : Promise.resolve();
    await Promise.race([this.transport.stopConsuming().then(() => drained), drained]);
  }

  /** Close connections after shutdown; unacked messages (reserved, acks_late running) are restored. */
  async close(): Promise<void> {
    this.phase = 'stopped';
    await this.app.close();
  }
}
