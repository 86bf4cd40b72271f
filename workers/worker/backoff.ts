/** celery.utils.time.get_exponential_backoff_interval, for autoretry_for + retry_backoff. */
export function exponentialBackoff(factor: number, retries: number, maximum: number, fullJitter: boolean): number {
  const countdown = Math.min(maximum, factor * 2 ** retries);
  const jittered = fullJitter ? Math.floor(Math.random() * (countdown + 1)) : countdown;
  return Math.max(0, jittered);
}
