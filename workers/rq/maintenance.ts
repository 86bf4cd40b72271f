/**
 * rq's maintenance (Worker.run_maintenance_tasks, every maintenance_interval = 10 min and at
 * start): jobs of a worker that died (kill -9, lost host) are retried or failed here as rq's
 * StartedJobRegistry.cleanup would, so a Celeriac-only fleet loses nothing either.
 */
import type Redis from 'ioredis';
import { excPayload } from './failure';
import { instant } from './keys';
import { MAINTAIN } from './scripts';

export const MAINTENANCE_INTERVAL = 600;

/** Python's str(datetime.now(timezone.utc)), as rq's AbandonedJobError text carries it. */
function pyNow(d: Date): string {
  return `${d.toISOString().slice(0, 23).replace('T', ' ')}000+00:00`;
}

/** Cleans `queues` as of `at` (tests pass a later instant); returns the ids it failed or retried. */
export async function maintainQueues(redis: Redis, queues: readonly string[], workerName: string, at = new Date()): Promise<string[]> {
  const now = instant(at);
  const abandoned = excPayload(`Moved to FailedJobRegistry, due to AbandonedJobError, at ${pyNow(at)}`);
  const stuck = excPayload('Job was stuck in intermediate queue.');
  const ids = await MAINTAIN.run(redis, [], [now.int, now.iso, now.ts, workerName, abandoned, stuck, ...queues]);
  return (ids as string[]).map(String);
}
