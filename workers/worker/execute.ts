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

/** The task's return value or its error, as an Outcome (never rejects). */
async function outcomeOf(call: () => unknown): Promise<Outcome> {
  try {
    return { ok: true, value: await call() };
  } catch (error) {
    return { ok: false, error };
  }
}

export function runWithLimits(call: () => unknown, limits: Limits, controller: () => AbortController): Promise<Outcome> {
  // Nearly every task has no limit: no timers, no race, one promise (#16).
  if (!(limits.soft && limits.soft > 0) && !(limits.hard && limits.hard > 0)) return outcomeOf(call);
  return runTimed(call, limits, controller);
}

async function runTimed(call: () => unknown, limits: Limits, controller: () => AbortController): Promise<Outcome> {
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
    return await Promise.race([outcomeOf(call), hard]);
  } finally {
    for (const t of timers) clearTimeout(t);
  }
}
