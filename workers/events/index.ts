/**
 * Celery events for one worker, as Celery's Events and Heart bootsteps run them
 * (celery/worker/consumer/events.py, heart.py): worker heartbeats unless --without-heartbeat,
 * task events only with -E / worker_send_task_events.
 *
 *   const events = new WorkerEvents(worker, { taskEvents, heartbeat, logger });  // before start
 *   await worker.start(); await events.start();         // worker-online, then every 2 s
 *   await events.stopHeart(); ...drain...; events.close();   // worker-offline first, as Celery
 */
import type { Worker } from '../worker/worker';
import { EventDispatcher, type DispatcherLogger } from './dispatcher';
import { Heart, workerStats } from './heartbeat';
import { attachTaskEvents } from './taskEvents';

export { EventDispatcher, EVENT_EXCHANGE, utcoffset } from './dispatcher';
export { Heart, SOFTWARE_INFO } from './heartbeat';
export { attachTaskEvents } from './taskEvents';

export interface WorkerEventsOptions {
  taskEvents: boolean;
  heartbeat: boolean;
  /** Seconds between heartbeats (Celery: 2.0). */
  heartbeatInterval?: number;
  logger?: DispatcherLogger;
}

export class WorkerEvents {
  readonly dispatcher: EventDispatcher;
  private readonly heart: Heart | null;
  private readonly detach: (() => void)[] = [];

  constructor(worker: Worker, opts: WorkerEventsOptions) {
    this.dispatcher = new EventDispatcher({
      hostname: worker.options.hostname,
      transport: () => worker.app.transport(),
      logger: opts.logger,
    });
    // Attached before the worker consumes, so its first task is announced too.
    if (opts.taskEvents) this.detach.push(attachTaskEvents(worker, this.dispatcher));
    if (opts.heartbeat) {
      const stats = workerStats(worker);
      this.detach.push(stats.detach);
      this.heart = new Heart(this.dispatcher, stats, opts.heartbeatInterval);
    } else {
      this.heart = null;
    }
  }

  /** worker-online and the heartbeat timer; call once the worker consumes. */
  async start(): Promise<void> {
    await this.heart?.start();
  }

  /**
   * worker-offline. Celery stops the heart when the consumer stops, before running tasks have
   * drained; their task events still go out until close().
   */
  async stopHeart(): Promise<void> {
    await this.heart?.stop();
  }

  /** Before the app closes its broker connection. */
  close(): void {
    for (const d of this.detach.splice(0)) d();
    this.dispatcher.close();
  }
}
