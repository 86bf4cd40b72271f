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

/**
 * What a task failed with, when its signal's abort made it fail. Abortable Node APIs
 * (timers/promises, fetch, fs, streams) reject with an AbortError whose `cause` is the signal's
 * reason; the reason (TaskRevokedError, SoftTimeLimitExceeded, TimeLimitExceeded) is what Celery
 * records, so a terminated task ends REVOKED, not FAILURE with AbortError.
 */
export function unwrapAbort(error: unknown, signal: () => AbortSignal | undefined): unknown {
  if (!(error instanceof Error) || error.name !== 'AbortError') return error;
  const aborted = signal();
  return aborted?.aborted && error.cause === aborted.reason ? aborted.reason : error;
}

/** The task's return value or its error, as an Outcome (never rejects). */
async function outcomeOf(call: () => unknown, controller: () => AbortController): Promise<Outcome> {
  try {
    return { ok: true, value: await call() };
  } catch (error) {
    return { ok: false, error: unwrapAbort(error, () => controller().signal) };
  }
}

export function runWithLimits(call: () => unknown, limits: Limits, controller: () => AbortController): Promise<Outcome> {
  // Nearly every task has no limit: no timers, no race, one promise (#16).
  if (!(limits.soft && limits.soft > 0) && !(limits.hard && limits.hard > 0)) return outcomeOf(call, controller);
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
    return await Promise.race([outcomeOf(call, controller), hard]);
  } finally {
    for (const t of timers) clearTimeout(t);
  }
}
