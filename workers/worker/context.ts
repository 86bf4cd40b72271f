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
  /** A value, or made on first read (most tasks never look at it). */
  deliveryInfo: DeliveryInfo | (() => DeliveryInfo);
  /** Lazy: most tasks never look at their signal. */
  signal(): AbortSignal;
  updateState(state: string, meta: unknown): Promise<void>;
  /** Sends on behalf of this task (its parent id, its root): for add_to_chord. */
  canvasHost(): Promise<CanvasHost>;
}

type AddToChord = TaskContext['addToChord'];

/**
 * One per task run, so it is kept small (#16: an object literal with a getter and five closures
 * was ~1.3 kB per task, much of it surviving into the old generation). The helpers are made on
 * first read and stay bound, so `const { retry } = this` works as before.
 */
class Context implements TaskContext {
  readonly id: string;
  readonly name: string;
  readonly retries: number;
  readonly args: readonly unknown[];
  readonly kwargs: Readonly<Record<string, unknown>>;
  readonly hostname: string;
  readonly request: TaskRequest;
  readonly #deps: ContextDeps;
  #deliveryInfo: DeliveryInfo | undefined;
  #retry: ((opts?: RetryOptions) => never) | undefined;
  #updateState: TaskContext['updateState'] | undefined;
  #replace: TaskContext['replace'] | undefined;
  #addToChord: AddToChord | undefined;

  constructor(deps: ContextDeps) {
    const req = deps.request;
    this.id = req.id;
    this.name = req.task;
    this.retries = req.retries;
    this.args = req.args;
    this.kwargs = req.kwargs;
    this.hostname = deps.hostname;
    this.request = req;
    this.#deps = deps;
  }

  get delivery_info(): DeliveryInfo {
    const info = this.#deps.deliveryInfo;
    return (this.#deliveryInfo ??= typeof info === 'function' ? info() : info);
  }

  get signal(): AbortSignal {
    return this.#deps.signal();
  }

  get updateState(): TaskContext['updateState'] {
    const deps = this.#deps;
    return (this.#updateState ??= (state, meta) => deps.updateState(state, meta ?? null));
  }

  get replace(): TaskContext['replace'] {
    const req = this.#deps.request;
    return (this.#replace ??= (sig): never => {
      throw replacement(req, sig);
    });
  }

  get addToChord(): AddToChord {
    const deps = this.#deps;
    return (this.#addToChord ??= (async (sig: Parameters<AddToChord>[0], lazy = false) =>
      addToChord(deps.request, await deps.canvasHost(), sig, lazy)) as AddToChord);
  }

  get retry(): (opts?: RetryOptions) => never {
    const deps = this.#deps;
    return (this.#retry ??= (opts = {}) => retry(deps, opts));
  }
}

function retry(deps: ContextDeps, opts: RetryOptions): never {
  const req = deps.request;
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
}

export function createContext(deps: ContextDeps): TaskContext {
  return new Context(deps);
}
