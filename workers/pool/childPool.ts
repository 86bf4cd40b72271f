/**
 * The threads and processes pools: one task at a time per child, children started up front (as
 * Celery's prefork does), replaced after max_tasks_per_child tasks or above max_memory_per_child,
 * killed for a hard time limit, revoke --terminate or a cold shutdown. A child that dies under a
 * task fails it with WorkerLostError (reject_on_worker_lost then decides the message's fate).
 */
import type { AppLogger } from '../app/app';
import { SoftTimeLimitExceeded, TimeLimitExceeded, WorkerLostError } from '../app/errors';
import type { Outcome } from '../worker/execute';
import type { Job } from '../worker/job';
import type { ChildHandle } from './handle';
import type { PoolKind, PoolStats, TaskPool, TaskRun } from './pool';
import { decodeError, encodeError, type ChildInit, type FromChild } from './wire';

export interface ChildPoolOptions {
  init: ChildInit;
  /** Replace a child after this many tasks (null = never). */
  maxTasksPerChild: number | null;
  /** Replace a child whose memory is above this many KiB after a task (null = never). */
  maxMemoryPerChild: number | null;
  log: AppLogger;
  start(init: ChildInit): ChildHandle;
}

interface Slot {
  handle: ChildHandle;
  ready: Promise<void>;
  /** The task it runs, with how to finish it (once). */
  running: { job: Job; run: TaskRun; finish(o: Outcome): void; timers: NodeJS.Timeout[] } | null;
  tasks: number;
  /** Asked to leave (recycled or pool shrank): takes no more tasks. */
  retiring: boolean;
}

/** How long close() waits for idle children to leave before killing them. */
const CLOSE_GRACE_MS = 3000;

export class ChildPool implements TaskPool {
  private size = 0;
  private readonly slots = new Set<Slot>();
  private readonly byJob = new Map<Job, Slot>();  private closing = false;

  constructor(
    readonly kind: Exclude<PoolKind, 'async'>,
    private readonly opts: ChildPoolOptions,
  ) {}

  /** Every child loads the task modules before the worker takes messages (a bad module fails here). */
  async start(size: number): Promise<void> {
    this.size = size;
    await Promise.all(Array.from({ length: size }, () => this.spawn().ready));
  }

  async execute(run: TaskRun): Promise<Outcome> {
    const slot = this.acquire();
    try {
      await slot.ready;
    } catch (error) {
      return { ok: false, error };
    } finally {
      this.reserved.delete(slot);
    }
    if (!this.slots.has(slot)) return { ok: false, error: new WorkerLostError('Worker exited prematurely: before the task was sent.') };
    return new Promise<Outcome>((resolve) => {
      const { job, limits } = run;
      const timers: NodeJS.Timeout[] = [];
      if (limits.soft && limits.soft > 0) {
        const soft = limits.soft;
        timers.push(setTimeout(() => slot.handle.send({ type: 'abort', error: encodeError(new SoftTimeLimitExceeded(soft)) }), soft * 1000));
      }
      if (limits.hard && limits.hard > 0) {
        const hard = limits.hard;
        timers.push(setTimeout(() => this.kill(slot, new TimeLimitExceeded(hard)), hard * 1000));
      }
      slot.running = {
        job,
        run,
        timers,
        finish: (o) => {
          for (const t of timers) clearTimeout(t);
          slot.running = null;
          this.byJob.delete(job);
          resolve(o);
        },
      };
      this.byJob.set(job, slot);
      const { delivery } = job;
      slot.handle.send({
        type: 'run',
        request: job.request,
        deliveryInfo: {
          exchange: delivery.exchange,
          routing_key: delivery.routingKey,
          priority: Number(delivery.message.properties.priority ?? 0),
          redelivered: delivery.redelivered,
        },
      });
    });
  }

  resize(size: number): void {
    this.size = size;
    let live = [...this.slots].filter((s) => !s.retiring);
    // Shrink: idle children leave now, busy ones when their task ends (see done()).
    for (const slot of live) {
      if (live.length <= size) break;
      if (slot.running) continue;
      this.retire(slot);
      live = live.filter((s) => s !== slot);
    }
    for (let n = live.length; n < size; n++) this.spawn().ready.catch((err: Error) => this.opts.log.error(`pool: a new ${this.kind} child failed to start: ${err.message}`));
  }

  terminate(job: Job, reason: Error): void {
    const slot = this.byJob.get(job);
    if (slot) this.kill(slot, reason);
  }

  stats(): PoolStats {
    return {
      implementation: this.kind === 'threads' ? 'celeriac:ThreadPool' : 'celeriac:ProcessPool',
      processes: [...this.slots].map((s) => s.handle.pid),
      maxTasksPerChild: this.opts.maxTasksPerChild,
    };
  }

  async close(): Promise<void> {
    this.closing = true;
    const gone = [...this.slots].map((slot) => new Promise<void>((resolve) => slot.handle.onExit(() => resolve())));
    for (const slot of this.slots) {
      if (slot.running) this.kill(slot, new Error('pool closed'));
      else this.retire(slot);
    }
    const timer = setTimeout(() => {
      for (const slot of this.slots) slot.handle.kill();
    }, CLOSE_GRACE_MS);
    await Promise.all(gone);
    clearTimeout(timer);
  }

  // ---- children ----

  private spawn(): Slot {
    const handle = this.opts.start(this.opts.init);
    let started: () => void = () => undefined;
    let failed: (e: unknown) => void = () => undefined;
    const slot: Slot = {
      handle,
      ready: new Promise<void>((resolve, reject) => ((started = resolve), (failed = reject))),
      running: null,
      tasks: 0,
      retiring: false,
    };
    slot.ready.catch(() => undefined); // awaited by whoever needs the child; never unhandled
    handle.onMessage((msg) => {
      if (msg.type === 'ready') started();
      else if (msg.type === 'failedToStart') {
        failed(decodeError(msg.error));
        this.retire(slot);
      } else this.onMessage(slot, msg);
    });
    handle.onExit((why) => {
      failed(new WorkerLostError(`Worker exited prematurely: ${why}.`));
      this.onExit(slot, why);
    });
    this.slots.add(slot);
    return slot;
  }

  /** An idle child, or a new one when all are busy (the worker never runs more than its size). */
  private acquire(): Slot {
    let slot = [...this.slots].find((s) => !s.running && !s.retiring && !this.reserved.has(s));
    slot ??= this.spawn();
    this.reserved.add(slot);
    return slot;
  }

  /** Children handed out by acquire() whose task is not sent yet (execute() awaits their ready). */
  private readonly reserved = new Set<Slot>();

  private onMessage(slot: Slot, msg: Exclude<FromChild, { type: 'ready' | 'failedToStart' }>): void {
    const running = slot.running;
    if (msg.type === 'updateState') {
      const ack = (): void => slot.handle.send({ type: 'stateStored', seq: msg.seq });
      if (!running) return ack();
      running.run.updateState(msg.state, msg.meta).then(ack, (err: Error) => {
        this.opts.log.error(`pool: could not store state ${msg.state}: ${err.message}`);
        ack();
      });
      return;
    }
    if (!running) return;
    slot.tasks++;
    const overTasks = this.opts.maxTasksPerChild !== null && slot.tasks >= this.opts.maxTasksPerChild;
    const overMemory = this.opts.maxMemoryPerChild !== null && msg.memory > this.opts.maxMemoryPerChild;
    if (overMemory) this.opts.log.warn(`pool: child ${slot.handle.pid} uses ${msg.memory} KiB > max_memory_per_child ${this.opts.maxMemoryPerChild}: replaced`);
    const live = [...this.slots].filter((s) => !s.retiring).length;
    if (overTasks || overMemory || live > this.size) this.retire(slot);
    running.finish(msg.ok ? { ok: true, value: msg.value } : { ok: false, error: decodeError(msg.error) });
  }

  private onExit(slot: Slot, why: string): void {
    this.slots.delete(slot);
    if (slot.running) {
      if (!slot.retiring) this.opts.log.error(`pool: ${this.kind} child ${slot.handle.pid} died running ${slot.running.job.request.task}[${slot.running.job.request.id}] (${why})`);
      slot.running.finish({ ok: false, error: new WorkerLostError(`Worker exited prematurely: ${why}.`) });
    }
    // Keep the pool at its size: replace the child (a recycled one, or one that died).
    if (this.closing) return;
    const live = [...this.slots].filter((s) => !s.retiring).length;
    if (live < this.size) this.spawn().ready.catch((err: Error) => this.opts.log.error(`pool: a replacement child failed to start: ${err.message}`));
  }

  private retire(slot: Slot): void {
    if (slot.retiring) return;
    slot.retiring = true;
    slot.handle.send({ type: 'exit' });
  }

  /** Kill the child under a task now: the task ends with `error` at once, a new child replaces it. */
  private kill(slot: Slot, error: Error): void {
    slot.retiring = true;
    slot.running?.finish({ ok: false, error });
    slot.handle.kill();
  }
}
