/**
 * Errors with a Python identity. When a task throws one, the result backend stores the Python
 * class and module Celery would, so Python's AsyncResult.get() raises the same class.
 */

/** Base for errors that carry an explicit Python class: `new PythonError('KeyError', 'x')`. */
export class PythonError extends Error {
  constructor(
    readonly pyType: string,
    message: string,
    readonly pyModule: string | null = 'builtins',
    readonly pyArgs: unknown[] = [message],
  ) {
    super(message);
    this.name = pyType;
  }
}

abstract class CeleryError extends PythonError {
  constructor(pyType: string, message: string, pyModule = 'celery.exceptions', pyArgs: unknown[] = [message]) {
    super(pyType, message, pyModule, pyArgs);
  }
}

export class MaxRetriesExceededError extends CeleryError {
  constructor(message: string) {
    super('MaxRetriesExceededError', message);
  }
}

export class NotRegistered extends CeleryError {
  constructor(taskName: string) {
    // Celery stores NotRegistered(name): its repr is the quoted task name.
    super('NotRegistered', `'${taskName}'`, 'celery.exceptions', [taskName]);
  }
}

export class SoftTimeLimitExceeded extends PythonError {
  constructor(seconds: number) {
    super('SoftTimeLimitExceeded', `SoftTimeLimitExceeded(${seconds})`, 'billiard.exceptions', [seconds]);
  }
}

export class TimeLimitExceeded extends PythonError {
  constructor(seconds: number) {
    super('TimeLimitExceeded', `TimeLimitExceeded(${seconds})`, 'billiard.exceptions', [seconds]);
  }
}

export class WorkerLostError extends PythonError {
  constructor(message: string) {
    super('WorkerLostError', message, 'billiard.exceptions');
  }
}

export class TaskRevokedError extends CeleryError {
  constructor(message: string) {
    super('TaskRevokedError', message);
  }
}

/** Where and when a retry goes: what ctx.retry() decided. */
export interface RetrySpec {
  countdown?: number;
  eta?: Date;
  args?: unknown[];
  kwargs?: Record<string, unknown>;
}

/** Thrown by ctx.retry(): tells the worker to re-send the task, not to fail it. */
export class Retry extends CeleryError {
  constructor(
    message: string,
    readonly spec: RetrySpec,
    readonly exc?: unknown,
  ) {
    super('Retry', message);
  }
}

/** Throw to reject the message (optionally requeue), as celery.exceptions.Reject. */
export class Reject extends CeleryError {
  constructor(
    reason: string,
    readonly requeue = false,
  ) {
    super('Reject', reason);
  }
}

/** Throw to ignore the task's result entirely, as celery.exceptions.Ignore. */
export class Ignore extends CeleryError {
  constructor(reason = '') {
    super('Ignore', reason);
  }
}

/** A chord could not complete (a header task failed, or its body could not be sent). */
export class ChordError extends CeleryError {
  constructor(
    message: string,
    /** What made the chord fail (the header task's exception), for a group body's members. */
    readonly original?: unknown,
  ) {
    super('ChordError', message);
  }
}

/**
 * Thrown by ctx.replace(): the task ends without a result of its own; the replacing signature
 * (already frozen with this task's id) is sent and its result becomes this task's result.
 * Carries the signature as its message dict, so it can cross a process boundary.
 */
export class Replace extends Ignore {
  constructor(readonly signature: Record<string, unknown>) {
    super('Replaced by new task');
  }
}
