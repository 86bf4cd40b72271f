/**
 * Messages between the worker and its pool threads/processes. Values travel by structured clone
 * (worker_threads, and fork() with serialization 'advanced'), so Dates, BigInts and Buffers
 * survive; errors do not keep their class, so they travel as WireError and are rebuilt here.
 */
import type { TaskRequest } from '../protocol/message';
import type { AppOptions } from '../app/app';
import type { DeliveryInfo } from '../app/task';
import {
  Ignore,
  PythonError,
  Reject,
  Replace,
  Retry,
  SoftTimeLimitExceeded,
  TaskRevokedError,
  TimeLimitExceeded,
  type RetrySpec,
} from '../app/errors';

/** What a child needs to build its own app: options without the logger, and task modules. */
export interface ChildInit {
  appOptions: Omit<AppOptions, 'logger'>;
  /** Absolute paths of the task modules the worker loaded. */
  modules: string[];
  hostname: string;
}

export type ToChild =
  | { type: 'run'; request: TaskRequest; deliveryInfo: DeliveryInfo }
  /** The soft time limit: abort the running task's signal with this error. */
  | { type: 'abort'; error: WireError }
  | { type: 'stateStored'; seq: number }
  /** Leave when idle (recycling: max tasks/memory per child, or the pool shrank). */
  | { type: 'exit' };

export type FromChild =
  | { type: 'ready' }
  | { type: 'failedToStart'; error: WireError }
  | { type: 'updateState'; seq: number; state: string; meta: unknown }
  /** memory: KiB this child uses (process RSS, or the thread's V8 heap), for max_memory_per_child. */
  | { type: 'done'; ok: true; value: unknown; memory: number }
  | { type: 'done'; ok: false; error: WireError; memory: number };

export type WireError =
  | { kind: 'retry'; message: string; spec: RetrySpec; exc?: WireError }
  | { kind: 'ignore' }
  /** ctx.replace(): the replacement signature (a plain dict) travels back to be sent. */
  | { kind: 'replace'; signature: Record<string, unknown> }
  | { kind: 'reject'; message: string; requeue: boolean }
  | { kind: 'python'; pyType: string; message: string; pyModule: string | null; pyArgs: unknown[]; stack?: string }
  | { kind: 'error'; name: string; message: string; stack?: string }
  | { kind: 'value'; value: string };

export function encodeError(err: unknown): WireError {
  if (err instanceof Retry) return { kind: 'retry', message: err.message, spec: err.spec, exc: err.exc === undefined ? undefined : encodeError(err.exc) };
  // Replace is an Ignore: test it first.
  if (err instanceof Replace) return { kind: 'replace', signature: err.signature };
  if (err instanceof Ignore) return { kind: 'ignore' };
  if (err instanceof Reject) return { kind: 'reject', message: err.message, requeue: err.requeue };
  if (err instanceof PythonError) {
    return { kind: 'python', pyType: err.pyType, message: err.message, pyModule: err.pyModule, pyArgs: cloneable(err.pyArgs), stack: err.stack };
  }
  if (err instanceof Error) return { kind: 'error', name: err.name, message: err.message, stack: err.stack };
  return { kind: 'value', value: String(err) };
}

/** The worker-side error classes the outcome code tests with instanceof. */
const REBUILT: Record<string, (args: unknown[], message: string) => PythonError> = {
  SoftTimeLimitExceeded: (args) => new SoftTimeLimitExceeded(Number(args[0])),
  TimeLimitExceeded: (args) => new TimeLimitExceeded(Number(args[0])),
  TaskRevokedError: (_args, message) => new TaskRevokedError(message),
};

export function decodeError(w: WireError): unknown {
  switch (w.kind) {
    case 'retry':
      return new Retry(w.message, w.spec, w.exc === undefined ? undefined : decodeError(w.exc));
    case 'ignore':
      return new Ignore();
    case 'replace':
      return new Replace(w.signature);
    case 'reject':
      return new Reject(w.message, w.requeue);
    case 'python': {
      const make = w.pyModule !== 'builtins' ? REBUILT[w.pyType] : undefined;
      const err = make ? make(w.pyArgs, w.message) : new PythonError(w.pyType, w.message, w.pyModule, w.pyArgs);
      if (w.stack) err.stack = w.stack;
      return err;
    }
    case 'error': {
      const err = new Error(w.message);
      err.name = w.name;
      if (w.stack) err.stack = w.stack;
      return err;
    }
    case 'value':
      return w.value;
  }
}

/** Exception args may hold anything; what cannot be cloned travels as its string. */
function cloneable(values: unknown[]): unknown[] {
  return values.map((v) => {
    try {
      structuredClone(v);
      return v;
    } catch {
      return String(v);
    }
  });
}
