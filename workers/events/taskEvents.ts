/**
 * The worker's own task events -> Celery's task events (-E), with the fields Celery's worker sends:
 * celery/worker/strategy.py (task-received), celery/worker/request.py (started, succeeded,
 * failed, retried, revoked, rejected), celery/worker/consumer/consumer.py (task-failed for an
 * unregistered task). Attached from outside the worker: it knows nothing of events.
 */
import type { EventEmitter } from 'node:events';
import type { TaskRequest } from '../protocol/message';
import { pyRepr } from '../protocol/repr';
import { formatTraceback, serializeException } from '../backends/meta';
import type { EventDispatcher, EventFields } from './dispatcher';

/** What Worker emits (workers/worker/worker.ts). */
interface Succeeded {
  request: TaskRequest;
  result: unknown;
  runtime: number;
}
interface Failed {
  request: TaskRequest;
  exception: string;
  /** Absent for an unregistered task: Celery sends no traceback then. */
  traceback?: string;
}
interface Retried {
  request: TaskRequest;
  reason: string;
  /** The Retry raised by the task; its `exc` is the error that caused it, if any. */
  retry?: Error & { exc?: unknown };
}
interface Revoked {
  request: TaskRequest;
  expired: boolean;
}
interface Rejected {
  /** Absent for a message that was not a task at all: Celery sends no event for those. */
  request?: TaskRequest;
  requeue?: boolean;
}

/** Python's repr of an exception instance: ValueError('boom'), KeyError('a', 1), Retry(). */
function excRepr(exc: unknown): string {
  if (exc === undefined || exc === null) return 'None';
  const { exc_type, exc_message } = serializeException(exc);
  const args = Array.isArray(exc_message) ? exc_message : [exc_message];
  return `${exc_type}(${args.map((a) => pyRepr(a)).join(', ')})`;
}

function receivedFields(req: TaskRequest): EventFields {
  return {
    uuid: req.id,
    name: req.task,
    // Celery sends the reprs here, never the arguments themselves.
    args: req.argsrepr,
    kwargs: req.kwargsrepr,
    root_id: req.rootId,
    parent_id: req.parentId,
    retries: req.retries,
    eta: req.etaIso,
    expires: req.expiresIso,
  };
}

/** Send Celery's task events for everything `worker` reports; returns a function that stops it. */
export function attachTaskEvents(worker: EventEmitter, dispatcher: Pick<EventDispatcher, 'send'>): () => void {
  const send = (type: string, fields: EventFields): void => void dispatcher.send(type, fields);
  const attached: [string, (payload: unknown) => void][] = [];
  // The worker's emitter is untyped: each payload's shape is the worker's contract (see above).
  const on = <T>(name: string, fn: (payload: T) => void): void => {
    const listener = (payload: unknown): void => fn(payload as T);
    worker.on(name, listener);
    attached.push([name, listener]);
  };
  on<TaskRequest>('task-received', (req) => {
    // Celery checks expiry before it announces the task: one expired on arrival only gets task-revoked.
    if (req.expires && req.expires.getTime() <= Date.now()) return;
    send('task-received', receivedFields(req));
  });
  on<TaskRequest>('task-started', (req) => send('task-started', { uuid: req.id }));
  // The result travels as its repr (Celery's trace sends saferepr(retval)); runtime in seconds.
  on<Succeeded>('task-succeeded', (e) => send('task-succeeded', { uuid: e.request.id, result: pyRepr(e.result), runtime: e.runtime }));
  on<Failed>('task-failed', (e) =>
    send('task-failed', e.traceback === undefined ? { uuid: e.request.id, exception: e.exception } : { uuid: e.request.id, exception: e.exception, traceback: e.traceback }),
  );
  on<Retried>('task-retried', (e) =>
    send('task-retried', { uuid: e.request.id, exception: excRepr(e.retry?.exc), traceback: formatTraceback(e.retry ?? e.reason) }),
  );
  on<Revoked>('task-revoked', (e) => send('task-revoked', { uuid: e.request.id, terminated: false, signum: null, expired: e.expired }));
  on<Rejected>('task-rejected', (e) => {
    if (e.request) send('task-rejected', { uuid: e.request.id, requeue: e.requeue ?? false });
  });
  return () => {
    for (const [name, fn] of attached.splice(0)) worker.off(name, fn);
  };
}
