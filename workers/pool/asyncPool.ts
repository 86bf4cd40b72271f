/** The default pool: tasks run on the event loop; a time limit or terminate aborts their signal. */
import { bindArguments, type DeliveryInfo, type TaskOptions } from '../app/task';
import type { TaskRequest } from '../protocol/message';
import type { CanvasHost } from '../canvas/types';
import { createContext, type ContextDeps } from '../worker/context';
import { runWithLimits, type Outcome } from '../worker/execute';
import type { Job } from '../worker/job';
import type { PoolStats, TaskPool, TaskRun } from './pool';

/** What the task's `this` reads, from the run: one object per task instead of a closure per helper (#16). */
class RunDeps implements ContextDeps {
  readonly request: TaskRequest;
  readonly options: TaskOptions;
  readonly hostname: string;

  constructor(private readonly run: TaskRun) {
    this.request = run.job.request;
    this.options = run.job.options;
    this.hostname = run.hostname;
  }

  deliveryInfo(): DeliveryInfo {
    const { delivery } = this.run.job;
    return {
      exchange: delivery.exchange,
      routing_key: delivery.routingKey,
      priority: Number(delivery.message.properties.priority ?? 0),
      redelivered: delivery.redelivered,
    };
  }

  signal(): AbortSignal {
    return controllerOf(this.run.job).signal;
  }

  updateState(state: string, meta: unknown): Promise<void> {
    return this.run.updateState(state, meta);
  }

  canvasHost(): Promise<CanvasHost> {
    return this.run.canvasHost();
  }
}

/** Made on first use (time limit, this.signal, terminate): one per message costs noticeably at 40k/s. */
function controllerOf(job: Job): AbortController {
  return (job.controller ??= new AbortController());
}

export class AsyncPool implements TaskPool {
  readonly kind = 'async';

  async start(): Promise<void> {}

  execute(run: TaskRun): Promise<Outcome> {
    const { job } = run;
    const { request, def } = job;
    const ctx = createContext(new RunDeps(run));
    return runWithLimits(() => def.fn.apply(ctx, bindArguments(def, request.args, request.kwargs)), run.limits, () => controllerOf(job));
  }

  resize(): void {}

  terminate(job: Job, reason: Error): void {
    controllerOf(job).abort(reason);
  }

  stats(): PoolStats {
    return { implementation: 'celeriac:AsyncPool', processes: [process.pid], maxTasksPerChild: null };
  }

  async close(): Promise<void> {}
}
