/**
 * Bioloop's task errors (module `workers.exceptions`), with their Python identity so a Python
 * `AsyncResult.get()` or the workflow view shows the class Bioloop's own workers raise.
 * Integrity failures fail a step at once; anything else is a RetryableException and is retried.
 */
import { PythonError } from '../index';

const MODULE = 'workers.exceptions';

export class InspectionFailed extends PythonError {
  constructor(message: string, readonly problems: string[] = [message]) {
    super('InspectionFailed', message, MODULE, [problems.length === 1 ? problems[0] : problems]);
  }
}

export class ValidationFailed extends PythonError {
  constructor(message: string, readonly problems: [string, string][] = []) {
    super('ValidationFailed', message, MODULE, [problems.length ? problems : message]);
  }
}

export class RetryableException extends PythonError {
  constructor(cause: unknown) {
    const why = cause instanceof Error ? `${cause.name}: ${cause.message}` : String(cause);
    super('RetryableException', why, MODULE);
  }
}

export class DatasetNotFound extends PythonError {
  constructor(id: string) {
    super('DatasetNotFound', `dataset ${id} not found`, MODULE);
  }
}

export function isIntegrityFailure(err: unknown): boolean {
  return err instanceof InspectionFailed || err instanceof ValidationFailed || err instanceof DatasetNotFound;
}
