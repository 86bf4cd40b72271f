/**
 * The control commands that change how the worker runs, live (celery/worker/control.py):
 * pool_grow / pool_shrink, time_limit and rate_limit, with the replies Celery's worker sends.
 */
import type { ControlContext, ControlHandler } from './commands';
import { parseRate } from '../worker/rate';
import { pyRepr } from '../protocol/repr';

const ok = (value: unknown): { ok: unknown } => ({ ok: value });
const nok = (value: unknown): { error: unknown } => ({ error: value });
// Celery 5.7's answer: with --autoscale the range is what a user changes (the autoscale command).
const NOT_WITH_AUTOSCALE = (command: string): string => `${command} is not supported with autoscale. Adjust autoscale range instead.`;

/** Celery's `n` argument: an int, 1 when absent. */
function count(v: unknown): number {
  const n = v === undefined || v === null ? 1 : Number(v);
  if (!Number.isFinite(n)) throw Object.assign(new Error(`invalid literal for int(): '${String(v)}'`), { name: 'ValueError' });
  return Math.trunc(n);
}

/** A seconds argument: a number, or null for none (the CLI sends floats, app.control may send None). */
function seconds(v: unknown): number | null {
  if (v === undefined || v === null || v === '') return null;
  const n = Number(v);
  if (Number.isNaN(n)) throw Object.assign(new Error(`could not convert string to float: '${String(v)}'`), { name: 'ValueError' });
  return n;
}

function knownTask(ctx: ControlContext, name: unknown): name is string {
  return typeof name === 'string' && ctx.worker.app.tasks.has(name);
}

/** Python truthiness of the rate argument ('' / 0 / None switch the limit off). */
function pyFalsy(v: unknown): boolean {
  return v === undefined || v === null || v === '' || v === 0 || v === false;
}

export const TUNING_COMMANDS: Readonly<Record<string, ControlHandler>> = {
  pool_grow: (ctx, args) => {
    if (ctx.worker.autoscaler) return nok(NOT_WITH_AUTOSCALE('pool_grow'));
    const size = ctx.worker.resize(count(args.n));
    ctx.log.info(`pool grown to ${size}`);
    return ok('pool will grow');
  },

  autoscale: (ctx, args) => {
    const autoscaler = ctx.worker.autoscaler;
    if (!autoscaler) throw Object.assign(new Error('Autoscale not enabled'), { name: 'ValueError' });
    const arg = (v: unknown): number | null => (v === undefined || v === null ? null : count(v));
    const [max, min] = autoscaler.update(arg(args.max), arg(args.min));
    return ok(`autoscale now max=${max} min=${min}`);
  },

  pool_shrink: (ctx, args) => {
    if (ctx.worker.autoscaler) return nok(NOT_WITH_AUTOSCALE('pool_shrink'));
    const size = ctx.worker.resize(-count(args.n));
    ctx.log.info(`pool shrunk to ${size}`);
    return ok('pool will shrink');
  },

  time_limit: (ctx, args) => {
    if (!knownTask(ctx, args.task_name)) {
      ctx.log.error(`Change time limit attempt for unknown task ${String(args.task_name)}`);
      return nok('unknown task');
    }
    const soft = seconds(args.soft);
    const hard = seconds(args.hard);
    ctx.worker.setTimeLimits(args.task_name, soft, hard);
    ctx.log.info(`New time limits for tasks of type ${args.task_name}: soft=${soft ?? 'None'} hard=${hard ?? 'None'}`);
    return ok('time limits set successfully');
  },

  rate_limit: (ctx, args) => {
    const limit = args.rate_limit;
    // Celery checks the rate first, then the name.
    try {
      if (limit !== undefined && limit !== null && typeof limit !== 'string' && typeof limit !== 'number') throw new Error(`bad rate ${pyRepr(limit)}`);
      parseRate(limit);
    } catch (err) {
      return nok(`Invalid rate limit string: ValueError(${pyRepr((err as Error).message)})`);
    }
    if (!knownTask(ctx, args.task_name)) {
      ctx.log.error(`Rate limit attempt for unknown task ${String(args.task_name)}`);
      return nok('unknown task');
    }
    ctx.worker.setRateLimit(args.task_name, limit);
    if (pyFalsy(limit)) {
      ctx.log.info(`Rate limits disabled for tasks of type ${args.task_name}`);
      return ok('rate limit disabled successfully');
    }
    ctx.log.info(`New rate limit for tasks of type ${args.task_name}: ${String(limit)}.`);
    return ok('new rate limit set successfully');
  },
};
