/** Raised when a result is not ready within the caller's timeout (Celery's celery.exceptions.TimeoutError). */
export class TimeoutError extends Error {
  override name = 'TimeoutError';
}
