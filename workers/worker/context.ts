/** The `this` of a running task: request fields plus retry() and updateState(). */
import type { TaskRequest } from '../protocol/message';
import type { DeliveryInfo, RetryOptions, TaskContext, TaskOptions } from '../app/task';
import { MaxRetriesExceededError, Retry } from '../app/errors';
import { pyRepr } from '../protocol/repr';
import { replacement } from '../canvas/replace';
import { addToChord } from '../canvas/addToChord';
import type { CanvasHost } from '../canvas/types';

export interface ContextDeps {
  request: TaskRequest;
  options: TaskOptions;
  hostname: string;
  deliveryInfo: DeliveryInfo;
  /** Lazy: most tasks never look at their signal. */
  signal(): AbortSignal;
  updateState(state: string, meta: unknown): Promise<void>;
  /** Sends on behalf of this task (its parent id, its root): for add_to_chord. */
  canvasHost(): Promise<CanvasHost>;
}

export function createContext(deps: ContextDeps): TaskContext {
  const req = deps.request;
  const ctx: TaskContext = {
    id: req.id,
    name: req.task,
    retries: req.retries,
    args: req.args,
    kwargs: req.kwargs,
    hostname: deps.hostname,
    delivery_info: deps.deliveryInfo,
    request: req,
    get signal(): AbortSignal {
      return deps.signal();
    },
    updateState: (state, meta) => deps.updateState(state, meta ?? null),
    replace(sig): never {
      throw replacement(req, sig);
    },
    addToChord: (async (sig: Parameters<TaskContext['addToChord']>[0], lazy = false) =>
      addToChord(req, await deps.canvasHost(), sig, lazy)) as TaskContext['addToChord'],
    retry(opts: RetryOptions = {}): never {
      const max = opts.max_retries !== undefined ? opts.max_retries : (deps.options.max_retries ?? 3);
      if (max !== null && req.retries >= max) {
        // Celery re-raises the causing exception if one was given, else MaxRetriesExceededError.
        if (opts.exc !== undefined) throw opts.exc;
        throw new MaxRetriesExceededError(`Can't retry ${req.task}[${req.id}] args:${req.argsrepr} kwargs:${req.kwargsrepr}`);
      }
      const countdown = opts.eta ? undefined : (opts.countdown ?? deps.options.default_retry_delay ?? 180);
      const when = opts.eta ? `at ${opts.eta.toISOString()}` : `in ${countdown}s`;
      const cause = opts.exc instanceof Error ? `: ${opts.exc.name}(${pyRepr(opts.exc.message)})` : '';
      throw new Retry(`Retry ${when}${cause}`, { countdown, eta: opts.eta, args: opts.args, kwargs: opts.kwargs }, opts.exc);
    },
  };
  return ctx;
}
