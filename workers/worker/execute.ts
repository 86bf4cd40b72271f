/**
 * Running one task function under Celery's time limits: the soft limit aborts the task's signal
 * (the task decides how to stop), the hard limit fails the task with TimeLimitExceeded and frees
 * the slot at once, whatever the function is still doing.
 */
import { SoftTimeLimitExceeded, TimeLimitExceeded } from '../app/errors';

export interface Limits {
  soft: number | null;
  hard: number | null;
}

export type Outcome = { ok: true; value: unknown } | { ok: false; error: unknown };

export async function runWithLimits(
  call: () => unknown,
  limits: Limits,
  controller: () => AbortController,
): Promise<Outcome> {
  const timers: NodeJS.Timeout[] = [];
  let hardFired: ((o: Outcome) => void) | null = null;
  const hard = new Promise<Outcome>((resolve) => (hardFired = resolve));
  if (limits.soft && limits.soft > 0) {
    const soft = limits.soft;
    timers.push(setTimeout(() => controller().abort(new SoftTimeLimitExceeded(soft)), soft * 1000));
  }
  if (limits.hard && limits.hard > 0) {
    const limit = limits.hard;
    timers.push(
      setTimeout(() => {
        const error = new TimeLimitExceeded(limit);
        if (!controller().signal.aborted) controller().abort(error);
        hardFired?.({ ok: false, error });
      }, limit * 1000),
    );
  }
  try {
    const run = (async (): Promise<Outcome> => {
      try {
        return { ok: true, value: await call() };
      } catch (error) {
        return { ok: false, error };
      }
    })();
    return timers.length ? await Promise.race([run, hard]) : await run;
  } finally {
    for (const t of timers) clearTimeout(t);
  }
}
