/** Task definitions: a name, a function, and Celery's per-task options. */
import type { TaskRequest } from '../protocol/message';
import type { SerializerName } from '../protocol/serializers';
import type { Signature } from '../canvas/signature';
import type { ResultNode, SignatureDict } from '../canvas/types';

type ErrorClass = abstract new (...args: never[]) => Error;

/** Per-task options, named as Celery names them so a Celery user recognises each one. */
export interface TaskOptions {
  queue?: string;
  acks_late?: boolean;
  reject_on_worker_lost?: boolean;
  ignore_result?: boolean;
  track_started?: boolean;
  /** null = retry forever; Celery's default is 3. */
  max_retries?: number | null;
  /** Seconds; Celery's default is 180. */
  default_retry_delay?: number;
  /** Errors (classes, or error names as strings) that retry the task automatically. */
  autoretry_for?: (ErrorClass | string)[];
  /** true = factor 1; a number is the factor in seconds (2 ** retries * factor). */
  retry_backoff?: boolean | number;
  retry_backoff_max?: number;
  retry_jitter?: boolean;
  soft_time_limit?: number | null;
  time_limit?: number | null;
  /** Celery's rate_limit: 'N/s', 'N/m', 'N/h' or a number (per second); null/0 = none. Over it, tasks wait. */
  rate_limit?: string | number | null;
  serializer?: SerializerName;
  /**
   * Run this task in this pool whatever the worker's -P (e.g. 'threads' for one CPU-bound task on
   * an async worker). The worker starts that pool beside its own; slots are shared.
   */
  pool?: 'async' | 'threads' | 'processes';
  /**
   * Names of the positional parameters, so kwargs sent by Python bind by name
   * (send_task('demo.add', kwargs={'x': 1, 'y': 2})). Without it, non-empty kwargs are passed as
   * one extra last argument.
   */
  params?: string[];
  /**
   * How this task is called when it is an errback (link_error) of a failed task. 'old' (the
   * default, what Celery does with an errback it cannot inspect): sent as a task with the failed
   * task's id as its only argument. 'new': called at once in the failing task's worker with
   * (request, error, traceback), like a Celery errback declared with three parameters.
   */
  errback_signature?: 'old' | 'new';
  /**
   * Celery's Task.before_start: run by the worker just before the task (in the worker's own
   * thread, whatever the pool). Throwing fails the task with that error, as in Celery.
   */
  before_start?: (taskId: string, args: readonly unknown[], kwargs: Readonly<Record<string, unknown>>) => void | Promise<void>;
  /** Celery's Task.on_success: after the SUCCESS is stored. Its errors are logged, the outcome stays. */
  on_success?: (retval: unknown, taskId: string, args: readonly unknown[], kwargs: Readonly<Record<string, unknown>>) => void | Promise<void>;
  /** Celery's Task.on_failure: after a FAILURE is stored (not for retries, rejects or revokes). */
  on_failure?: (error: unknown, taskId: string, args: readonly unknown[], kwargs: Readonly<Record<string, unknown>>) => void | Promise<void>;
}

export interface RetryOptions {
  countdown?: number;
  eta?: Date;
  /** The error that caused the retry; stored with the RETRY state and raised when retries run out. */
  exc?: unknown;
  max_retries?: number | null;
  args?: unknown[];
  kwargs?: Record<string, unknown>;
}

export interface DeliveryInfo {
  exchange: string;
  routing_key: string;
  priority: number;
  redelivered: boolean;
}

/** What a running task sees as `this` (Celery's bound `self.request` plus helpers). */
export interface TaskContext {
  readonly id: string;
  readonly name: string;
  readonly retries: number;
  readonly args: readonly unknown[];
  readonly kwargs: Readonly<Record<string, unknown>>;
  readonly hostname: string;
  readonly delivery_info: DeliveryInfo;
  readonly request: TaskRequest;
  /** Aborted on soft time limit, hard time limit, revoke --terminate and cold shutdown. */
  readonly signal: AbortSignal;
  /** Re-send this task with retries+1 after a countdown; always throws (use `throw this.retry()` for clarity). */
  retry(opts?: RetryOptions): never;
  /** Store a custom state (e.g. 'PROGRESS') with meta, as Task.update_state. */
  updateState(state: string, meta?: unknown): Promise<void>;
  /**
   * Replace this task by a signature or canvas (Celery's Task.replace): it inherits this task's
   * id, callbacks, errbacks, chord and the rest of its chain. Always throws: `throw this.replace(sig)`.
   */
  replace(sig: Signature | SignatureDict): never;
  /**
   * Add a signature (or a canvas such as group | task) to the chord this task is a header member
   * of (Celery's Task.add_to_chord): the chord's body waits for it too. Sent at once, or returned
   * unsent with lazy = true. Needs the Redis result backend (NotImplementedError elsewhere).
   */
  addToChord(sig: Signature | SignatureDict, lazy?: false): Promise<ResultNode>;
  addToChord(sig: Signature | SignatureDict, lazy: true): Promise<Signature>;
}

export type TaskFn<A extends unknown[] = unknown[], R = unknown> = (this: TaskContext, ...args: A) => R | Promise<R>;

export interface TaskDefinition<A extends unknown[] = unknown[], R = unknown> {
  readonly name: string;
  readonly fn: TaskFn<A, R>;
  readonly options: Readonly<TaskOptions>;
}

/** Bind kwargs to positional args as a Python call would (see TaskOptions.params). */
export function bindArguments(def: TaskDefinition, args: readonly unknown[], kwargs: Record<string, unknown>): unknown[] {
  // No kwargs (most calls): the list itself, not a copy; callers only spread it into fn.apply,
  // which copies it into the call's arguments.
  for (const _ in kwargs) return bindKeywords(def, args, kwargs);
  return args as unknown[];
}

function bindKeywords(def: TaskDefinition, args: readonly unknown[], kwargs: Record<string, unknown>): unknown[] {
  const keys = Object.keys(kwargs);
  const params = def.options.params;
  if (!params) return [...args, kwargs];
  const out = [...args];
  const rest: Record<string, unknown> = {};
  for (const k of keys) {
    const i = params.indexOf(k);
    if (i < 0) rest[k] = kwargs[k];
    else if (i < args.length) throw new TypeError(`${def.name}() got multiple values for argument '${k}'`);
    else out[i] = kwargs[k];
  }
  if (Object.keys(rest).length) out.push(rest);
  return out;
}

/**
 * What a producer knows of the tasks it calls, by name: `{ 'tasks.add': (x: number, y: number) => number }`
 * (an interface or type; the functions need not exist here). Give it to `new Celeriac<Tasks>()`
 * and sendTask/signature check each known task's arguments and type its result. Build it from
 * task handles with TaskMapOf.
 */
export type TaskMap = object;

/** The task names a TaskMap knows. */
export type KnownTask<T extends TaskMap> = Extract<keyof T, string>;

/** The arguments of a task function type (its `this` aside). */
export type TaskArgs<F> = F extends (...args: infer A) => unknown ? A : never;

/** What a task function type's result resolves to. */
export type TaskResult<F> = F extends (...args: never[]) => infer R ? Awaited<R> : unknown;

/**
 * The arguments a partial signature may hold: a tail of the task's arguments, since a chain or
 * chord puts the previous result(s) in front (`add.s(4)` for add(x, y) is called as add(prev, 4)).
 */
export type ArgsTail<A extends readonly unknown[]> = A | (A extends readonly [unknown, ...infer Rest] ? ArgsTail<Rest> : never);
