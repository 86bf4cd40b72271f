/**
 * The worker: takes deliveries from the transport, holds at most concurrency × prefetch_multiplier
 * unacknowledged (plus one per task held without a slot: ETA, or waiting for a rate-limit token,
 * as Celery's consumer raises QoS for them), runs at most `concurrency` tasks at once in its pool,
 * then hands the outcome to Outcomes (store, emit, ack or retry).
 *
 * Files beside this one: reservations.ts (held tasks), outcome.ts (after a task ends), revoked.ts
 * (the revoked set), execute.ts (time limits), ../pool (where a task runs).
 */
import { EventEmitter } from 'node:events';
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { Delivery, Transport } from '../transports/transport';
import type { ResultBackend } from '../backends/backend';
import { serializeException } from '../backends/meta';
import { parseTaskMessage, type TaskRequest } from '../protocol/message';
import type { SerializerName } from '../protocol/serializers';
import type { Celeriac, AppLogger } from '../app/app';
import { NotRegistered, TaskRevokedError } from '../app/errors';
import type { PoolKind, TaskPool, TaskRun } from '../pool/pool';
import type { Limits } from './execute';
import type { CanvasHost } from '../canvas/types';
import { AsyncPool } from '../pool/asyncPool';
import { declarationFor, type QueuePolicy } from './queues';
import type { QueueDefinition } from '../../config/types';
import type { RateLimit } from './rate';
import type { Job } from './job';
import type { TaskDefinition, TaskOptions } from '../app/task';
import { Reservations } from './reservations';
import { Outcomes } from './outcome';
import { RevokedSet } from './revoked';
import { Autoscaler } from './autoscaler';
import { taskHost } from '../canvas/host';

/** Most extra prefetch granted to tasks waiting for a rate-limit token. */
const MAX_THROTTLED_EXTRA = 1000;

const NO_LIMITS: Limits = Object.freeze({ soft: null, hard: null });

/** One task's run as its pool sees it: methods rather than a closure each, one object per task (#16). */
class JobRun implements TaskRun {
  constructor(
    readonly job: Job,
    readonly limits: Limits,
    readonly hostname: string,
    private readonly outcomes: Outcomes,
    private readonly app: Celeriac,
  ) {}

  updateState(state: string, meta: unknown): Promise<void> {
    return this.outcomes.storeState(this.job, state, meta, null);
  }

  canvasHost(): Promise<CanvasHost> {
    return taskHost(this.app, this.job.request);
  }
}

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
  /** Where tasks run (default: the event loop). */
  pool?: TaskPool;
  /** Makes the pools that tasks pin with their `pool` option (a worker without it runs them in its own pool). */
  poolFactory?: (kind: PoolKind) => TaskPool;
  /** --statedb: keep the revoked set in this file across restarts. */
  statedb?: string | null;
  /** --autoscale max,min: the pool size moves between them (concurrency is then only the start). */
  autoscale?: { max: number; min: number; keepalive?: number } | null;
}

type Phase = 'created' | 'running' | 'warm' | 'cold' | 'stopped';

export type HeldState = 'active' | 'reserved' | 'scheduled';

export class Worker extends EventEmitter {
  private transport!: Transport;
  private backend: ResultBackend | null = null;
  private readonly held: Reservations;
  private readonly outcomes: Outcomes;
  private readonly active = new Set<Job>();
  private readonly activeById = new Map<string, Job>();
  /** Limits set live by the time_limit control command, by task name. */
  private readonly timeLimitOverrides = new Map<string, { soft: number | null; hard: number | null }>();
  /** Rates set live by the rate_limit command, by task name (as given). */
  private readonly rateLimitOverrides = new Map<string, string | number | null>();
  private phase: Phase = 'created';
  /** The prefetch count last given to the transport. */
  private prefetchSet = -1;
  private drained: (() => void) | null = null;
  private readonly accept: ReadonlySet<SerializerName>;
  private readonly log: AppLogger;
  private readonly logInfo: boolean;
  readonly pool: TaskPool;
  /** Pools other than the worker's own, for tasks that pin one (option `pool`). */
  private readonly pinnedPools = new Map<PoolKind, TaskPool>();
  /** Task ids revoked on this worker (Celery's worker_state.revoked). */
  readonly revoked: RevokedSet;
  readonly autoscaler: Autoscaler | null = null;
  /** Identifies this run of the worker in stats and heartbeats (ClimateSERV-style stop by uuid). */
  readonly uuid = randomUUID();
  /** Tasks run, by name (Celery's worker_state.total_count). */
  private readonly totals = new Map<string, number>();
  private readonly startedAt = Date.now();
  processed = 0;

  constructor(
    readonly app: Celeriac,
    readonly options: WorkerOptions,
  ) {
    super();
    this.accept = new Set(options.accept);
    this.log = app.log;
    this.logInfo = app.log.isLevelEnabled?.('info') ?? true;
    this.pool = options.pool ?? new AsyncPool();
    this.revoked = new RevokedSet(options.statedb ?? null);
    if (options.autoscale) {
      const worker = this; // eslint-disable-line @typescript-eslint/no-this-alias -- the getters read live state
      this.autoscaler = new Autoscaler(
        {
          get concurrency() {
            return worker.options.concurrency;
          },
          get demand() {
            return worker.active.size + worker.held.readyCount + worker.held.throttledCount;
          },
          setConcurrency: (n) => this.setConcurrency(n),
          log: (message) => this.log.info(`autoscaler: ${message}`),
        },
        options.autoscale.max,
        options.autoscale.min,
        options.autoscale.keepalive,
      );
      options.concurrency = this.autoscaler.initial;
    }
    this.held = new Reservations({
      admitted: () => {
        this.syncPrefetch();
        this.pump();
      },
      etaDue: (job) => {
        if (this.phase === 'running' && !this.isStale(job) && !this.isExpired(job) && !this.discardIfRevoked(job)) this.held.submit(job);
      },
      changed: () => this.syncPrefetch(),
      warn: (message) => this.log.warn(message),
    });
    this.outcomes = new Outcomes({
      app,
      hostname: options.hostname,
      transport: () => this.transport,
      backend: () => this.backend,
      revoked: this.revoked,
      emit: (event, payload) => this.emit(event, payload),
      logInfo: this.logInfo,
    });
  }

  get activeCount(): number {
    return this.active.size;
  }

  get reservedCount(): number {
    return this.held.size;
  }

  private get basePrefetch(): number {
    // prefetch_multiplier 0 means "no limit" in Celery.
    return this.options.prefetchMultiplier > 0 ? this.options.concurrency * this.options.prefetchMultiplier : 0;
  }

  async start(): Promise<void> {
    this.transport = await this.app.transport();
    this.backend = await this.app.backend();
    await this.pool.start(this.options.concurrency);
    await this.startPinnedPools();
    for (const q of this.options.queues) {
      await this.transport.declareQueue(declarationFor(q, this.options.queuePolicy ?? DEFAULT_QUEUE_POLICY));
    }
    this.phase = 'running';
    this.prefetchSet = this.basePrefetch;
    this.transport.setPrefetch(this.basePrefetch);
    await this.transport.consume(this.options.queues, (d) => this.onDelivery(d));
    this.autoscaler?.start();
    this.log.info(`${this.options.hostname} ready.`);
  }

  // ---- receiving ----

  private onDelivery(delivery: Delivery): void {
    let request: TaskRequest;
    try {
      request = parseTaskMessage(delivery.message, this.accept);
    } catch (err) {
      this.log.error(`Received invalid task message from ${delivery.queue}: ${(err as Error).message}. The message has been rejected.`);
      void this.outcomes.settle(delivery, 'reject');
      this.emit('task-rejected', { delivery, reason: (err as Error).message });
      return;
    }
    const def = this.app.tasks.get(request.task);
    if (!def) {
      this.onUnknownTask(delivery, request);
      return;
    }
    const running = delivery.redelivered ? this.activeById.get(request.id) : undefined;
    if (running && !running.requeued) {
      // The broker gave the message back while it still runs here (its channel closed, e.g.
      // RabbitMQ's consumer_timeout): finish it once and settle the copy with it.
      this.log.info(`Task ${request.task}[${request.id}] redelivered while running here: not started twice`);
      running.redeliveries.push(delivery);
      return;
    }
    const job: Job = { delivery, request, def, options: this.app.taskOptions(def), controller: null, acked: false, redeliveries: [] };
    this.autoscaler?.onTaskReceived();
    if (this.logInfo) this.log.info(`Task ${request.task}[${request.id}] received`);
    this.emit('task-received', job.request);
    if (this.isExpired(job) || this.discardIfRevoked(job)) return;
    const delay = request.eta ? request.eta.getTime() - Date.now() : 0;
    if (delay > 0) this.held.holdUntilEta(job, delay);
    else this.held.submit(job);
  }

  private onUnknownTask(delivery: Delivery, request: TaskRequest): void {
    this.log.error(
      `Received unregistered task of type '${request.task}'.\nThe message has been ignored and discarded.\n` +
        `Did you remember to import the module containing this task?`,
    );
    void this.outcomes.settle(delivery, 'reject');
    void this.outcomes.storeState({ request, delivery, acked: false }, 'FAILURE', serializeException(new NotRegistered(request.task)), null);
    this.emit('task-failed', { request, exception: `NotRegistered('${request.task}')` });
  }

  /** Expired messages are stored as REVOKED and acknowledged, never run (Celery's behaviour). */
  private isExpired(job: Job): boolean {
    const { expires } = job.request;
    if (!expires || expires.getTime() > Date.now()) return false;
    this.log.info(`Discarding revoked task: ${job.request.task}[${job.request.id}] (expired)`);
    this.discard(job, 'expired');
    return true;
  }

  /** A revoked task that has not started: store REVOKED, ack, never run it (Celery's Request.revoked()). */
  private discardIfRevoked(job: Job): boolean {
    if (!this.revoked.has(job.request.id)) return false;
    this.log.info(`Discarding revoked task: ${job.request.task}[${job.request.id}]`);
    this.discard(job, 'revoked');
    return true;
  }

  private discard(job: Job, why: 'expired' | 'revoked'): void {
    void this.outcomes.discarded(job, new TaskRevokedError(why));
    this.emit('task-revoked', { request: job.request, expired: why === 'expired' });
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
    while (this.phase === 'running' && this.active.size < this.options.concurrency) {
      const job = this.held.take();
      if (!job) break;
      // Checked again at start, as Celery's Request.revoked() does just before running: a task
      // held behind busy slots may have expired (or been revoked) since it was received.
      if (this.isStale(job) || this.isExpired(job) || this.discardIfRevoked(job)) continue;
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
    const { request, options } = job;
    try {
      if (!options.acks_late) {
        job.acked = true;
        void this.outcomes.settle(job.delivery, 'ack');
      } else {
        this.transport.beforeRunUnacked?.(job.delivery);
      }
      if (options.track_started) {
        await this.outcomes.storeState(job, 'STARTED', { pid: process.pid, hostname: this.options.hostname }, null);
      }
      this.emit('task-started', request);
      // Counted when the task starts, as Celery's task_accepted does (Flower's "processed").
      this.totals.set(request.task, (this.totals.get(request.task) ?? 0) + 1);
      const started = performance.now();
      // Checked here so a task without the hook (nearly all) pays no extra await per message.
      const refused = job.options.before_start ? await this.outcomes.beforeStart(job) : null;
      const outcome = refused ?? (await this.poolFor(job).execute(new JobRun(job, this.limitsFor(job), this.options.hostname, this.outcomes, this.app)));
      const runtime = (performance.now() - started) / 1000;
      if (this.phase === 'cold' || this.phase === 'stopped') {
        // Cold shutdown (and the close() right after it): like a killed Celery pool, record nothing
        // and leave an unacked (acks_late) message for the broker to give back on close.
        this.log.warn(`Task ${request.task}[${request.id}] abandoned by the cold shutdown${job.acked ? '' : ': its message goes back to the queue'}`);
        return;
      }
      if (outcome.ok) await this.outcomes.success(job, outcome.value, runtime);
      else await this.outcomes.failure(job, outcome.error, runtime);
    } catch (err) {
      // Only infrastructure can land here (result backend or broker errors): never crash the worker.
      this.log.error(`Task ${request.task}[${request.id}] could not be completed: ${(err as Error).message}`);
      if (!job.acked) void this.outcomes.requeue(job);
    } finally {
      this.active.delete(job);
      // A requeued message may already run again here under the same id: leave that entry alone.
      if (this.activeById.get(request.id) === job) this.activeById.delete(request.id);
      for (const copy of job.redeliveries) void this.outcomes.settle(copy, 'ack');
      this.processed++;
      this.emit('task-done', job);
      if (this.active.size === 0) this.drained?.();
      this.pump();
    }
  }

  private poolFor(job: Job): TaskPool {
    const kind = job.options.pool;
    return (kind && this.pinnedPools.get(kind)) || this.pool;
  }

  /** One extra pool per kind that registered tasks pin, as large as the worker's concurrency. */
  private async startPinnedPools(): Promise<void> {
    const factory = this.options.poolFactory;
    for (const def of this.app.tasks.values()) {
      const kind = this.app.taskOptions(def).pool;
      if (!kind || kind === this.pool.kind || this.pinnedPools.has(kind)) continue;
      if (!factory) {
        this.log.warn(`Task ${def.name} asks for the ${kind} pool, which this worker cannot start: it runs in the ${this.pool.kind} pool`);
        continue;
      }
      const pool = factory(kind);
      this.pinnedPools.set(kind, pool);
      await pool.start(this.options.concurrency);
    }
  }

  /**
   * The message's own limits first, then the task's (as set live by the time_limit command). The
   * header is [hard, soft] (Celery's Request: `time_limit, soft_time_limit = self.time_limits`),
   * and `or` falls back on 0 too, as Celery's `soft_time_limit or task.soft_time_limit` does.
   */
  private limitsFor(job: Job): Limits {
    const { request, options } = job;
    const [hard, soft] = request.timeLimit;
    const live = this.timeLimitOverrides.get(request.task);
    const limits = {
      soft: soft || (live ? live.soft : options.soft_time_limit) || null,
      hard: hard || (live ? live.hard : options.time_limit) || null,
    };
    return limits.soft === null && limits.hard === null ? NO_LIMITS : limits;
  }

  // ---- read and steered by remote control (workers/control) ----

  /** A view of each held request, for inspect active/reserved/scheduled/query_task. */
  controlRequests(): { state: HeldState; request: TaskRequest; delivery: Delivery; acked: boolean; timeStart: number | null }[] {
    const view = (state: HeldState, j: Job) => ({ state, request: j.request, delivery: j.delivery, acked: j.acked, timeStart: j.timeStart ?? null });
    return [
      ...[...this.active].map((j) => view('active', j)),
      ...this.held.reserved().map((j) => view('reserved', j)),
      ...this.held.scheduled().map((j) => view('scheduled', j)),
    ];
  }

  get revokedTaskIds(): readonly string[] {
    return this.revoked.list();
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
    const throttled = Math.min(this.held.throttledCount, Math.max(this.basePrefetch, MAX_THROTTLED_EXTRA));
    return this.basePrefetch && this.basePrefetch + this.held.etaCount + throttled;
  }

  /**
   * pool_grow / pool_shrink / autoscale: sets the concurrency (at least 1), the pool and prefetch
   * follow, and waiting tasks start at once. Running tasks over a lowered limit finish.
   */
  resize(delta: number): number {
    return this.setConcurrency(this.options.concurrency + Math.trunc(delta));
  }

  setConcurrency(size: number): number {
    this.options.concurrency = Math.max(1, Math.trunc(size));
    for (const pool of [this.pool, ...this.pinnedPools.values()]) pool.resize(this.options.concurrency);
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
    this.held.setRate(name, limit);
    this.rateLimitOverrides.set(name, limit ?? null);
  }

  /**
   * A task's options as they stand now: the rate_limit and time_limit commands change them, as
   * they set the attributes of Celery's task (inspect registered shows them).
   */
  effectiveTaskOptions(def: TaskDefinition): TaskOptions {
    const options = { ...this.app.taskOptions(def) };
    const times = this.timeLimitOverrides.get(def.name);
    if (times) Object.assign(options, { soft_time_limit: times.soft, time_limit: times.hard });
    if (this.rateLimitOverrides.has(def.name)) options.rate_limit = this.rateLimitOverrides.get(def.name);
    return options;
  }

  /**
   * The add_consumer command: declare `queue` (its task_queues entry, else `definition`, else as
   * a missing queue) and consume it too; active_queues lists it. False when already consumed.
   */
  async addConsumer(queue: string, definition?: QueueDefinition): Promise<boolean> {
    if (this.options.queues.includes(queue)) return false;
    const policy = this.options.queuePolicy ?? DEFAULT_QUEUE_POLICY;
    // Kept in the policy, as Celery's select_add keeps it in app.amqp.queues: active_queues reads it.
    if (definition && !policy.definitions?.some((q) => q.name === queue)) {
      this.options.queuePolicy = { ...policy, definitions: [...(policy.definitions ?? []), definition] };
    }
    await this.transport.declareQueue(declarationFor(queue, this.options.queuePolicy ?? policy));
    this.options.queues = [...this.options.queues, queue];
    await this.transport.addQueue(queue);
    this.log.info(`Started consuming from ${queue}`);
    return true;
  }

  /** The cancel_consumer command: no new message from `queue`; tasks already held from it still run. */
  async cancelConsumer(queue: string): Promise<boolean> {
    if (!this.options.queues.includes(queue)) return false;
    this.log.info(`Canceling queue ${queue}`);
    this.options.queues = this.options.queues.filter((q) => q !== queue);
    await this.transport.cancelQueue(queue);
    return true;
  }

  /**
   * Celery's revoke: remember the ids (reserved and ETA tasks with them are discarded as REVOKED
   * before they run, now or when they arrive); terminate=true stops a running one in its pool.
   * Returns the ids of the running tasks it terminated.
   */
  revoke(ids: readonly string[], terminate = false): string[] {
    this.revoked.add(ids);
    for (const job of this.held.remove((j) => this.revoked.has(j.request.id))) this.discardIfRevoked(job);
    const terminated: string[] = [];
    if (terminate) {
      for (const id of ids) {
        const job = this.activeById.get(id);
        if (!job) continue;
        this.poolFor(job).terminate(job, new TaskRevokedError('terminated'));
        terminated.push(id);
      }
    }
    return terminated;
  }

  // ---- shutdown ----

  /**
   * warm: stop consuming, let running tasks finish, give unstarted reserved messages back.
   * cold: abort running tasks now; acks_late messages go back to the queue.
   */
  async shutdown(mode: 'warm' | 'cold' = 'warm'): Promise<void> {
    if (this.phase === 'stopped' || this.phase === 'created') return;
    this.autoscaler?.stop();
    if (mode === 'cold') {
      this.phase = 'cold';
      for (const job of this.active) this.poolFor(job).terminate(job, new Error('cold shutdown'));
      this.drained?.();
      return;
    }
    if (this.phase !== 'running') return;
    this.phase = 'warm';
    this.held.clear();
    // Wait for running tasks to finish — or for a cold shutdown, which resolves this at once, even
    // while stopConsuming() is still waiting for a blocked poll to return.
    const drained = this.active.size > 0 ? new Promise<void>((resolve) => (this.drained = resolve)) : Promise.resolve();
    await Promise.race([this.transport.stopConsuming().then(() => drained), drained]);
  }

  /** Close connections after shutdown; unacked messages (reserved, acks_late running) are restored. */
  async close(): Promise<void> {
    this.phase = 'stopped';
    await Promise.all([this.pool, ...this.pinnedPools.values()].map((p) => p.close()));
    await this.app.close();
  }
}
