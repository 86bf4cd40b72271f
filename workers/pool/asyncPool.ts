/** The default pool: tasks run on the event loop; a time limit or terminate aborts their signal. */
import { bindArguments } from '../app/task';
import { createContext } from '../worker/context';
import { runWithLimits, type Outcome } from '../worker/execute';
import type { Job } from '../worker/job';
import type { PoolStats, TaskPool, TaskRun } from './pool';

export class AsyncPool implements TaskPool {
  readonly kind = 'async';

  async start(): Promise<void> {}

  execute(run: TaskRun): Promise<Outcome> {
    const { job } = run;
    const { request, options, def, delivery } = job;
    const controller = (): AbortController => (job.controller ??= new AbortController());
    const ctx = createContext({
      request,
      options,
      hostname: run.hostname,
      deliveryInfo: {
        exchange: delivery.exchange,
        routing_key: delivery.routingKey,
        priority: Number(delivery.message.properties.priority ?? 0),
        redelivered: delivery.redelivered,
      },
      signal: () => controller().signal,
      updateState: run.updateState,
      canvasHost: run.canvasHost,
    });
    return runWithLimits(() => def.fn.apply(ctx, bindArguments(def, request.args, request.kwargs)), run.limits, controller);
  }

  resize(): void {}

  terminate(job: Job, reason: Error): void {
    (job.controller ??= new AbortController()).abort(reason);
  }

  stats(): PoolStats {
    return { implementation: 'celeriac:AsyncPool', processes: [process.pid], maxTasksPerChild: null };
  }

  async close(): Promise<void> {}
}
