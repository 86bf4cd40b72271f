/**
 * `inspect registered [attr ...]` (celery/worker/control.py registered): the task names, sorted,
 * celery.* builtins only when asked; with task-info items, each task that has one of those
 * attributes set reads 'name [attr=value ...]', values as Python's str() prints them.
 */
import type { TaskOptions } from '../app/task';

/** Celery's default items (DEFAULT_TASK_INFO_ITEMS): usually unset, so plain names come back. */
const DEFAULT_TASK_INFO_ITEMS = ['exchange', 'routing_key', 'rate_limit'];

/** Attributes of Celery's Task class as a task without options has them (null = None, left out). */
const CELERY_TASK_ATTRIBUTES: Readonly<Record<string, unknown>> = {
  acks_late: false,
  acks_on_failure_or_timeout: true,
  default_retry_delay: 180,
  expires: null,
  ignore_result: false,
  max_retries: 3,
  priority: null,
  rate_limit: null,
  reject_on_worker_lost: null,
  resultrepr_maxsize: 1024,
  send_events: true,
  serializer: 'json',
  soft_time_limit: null,
  store_errors_even_if_ignored: false,
  time_limit: null,
  track_started: false,
  trail: true,
  typing: true,
};

/** Celeriac-only options that are no Celery task attribute (left out of the answer). */
const NOT_CELERY: ReadonlySet<string> = new Set(['pool', 'params', 'errback_signature', 'autoretry_for']);

/** Python's str() of a JSON-like value (True/False/None, lists and dicts as repr). */
function pyStr(v: unknown): string {
  if (v === true) return 'True';
  if (v === false) return 'False';
  if (typeof v === 'string') return v;
  if (typeof v === 'number') return String(v);
  return JSON.stringify(v);
}

export interface RegisteredTask {
  name: string;
  /** The task's effective options, with the live rate_limit / time_limit commands applied. */
  options: TaskOptions;
}

export function registered(tasks: readonly RegisteredTask[], items: unknown, builtins: boolean): string[] {
  const asked = Array.isArray(items) && items.length ? items : DEFAULT_TASK_INFO_ITEMS;
  const wanted = asked.filter((i): i is string => typeof i === 'string' && !i.startsWith('_'));
  return tasks
    .filter((t) => builtins || !t.name.startsWith('celery.'))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    .map((t) => {
      const attrs: Record<string, unknown> = { ...CELERY_TASK_ATTRIBUTES, name: t.name };
      for (const [k, v] of Object.entries(t.options)) if (!NOT_CELERY.has(k) && v !== undefined) attrs[k] = v;
      const fields = wanted.filter((f) => attrs[f] !== undefined && attrs[f] !== null).map((f) => `${f}=${pyStr(attrs[f])}`);
      return fields.length ? `${t.name} [${fields.join(' ')}]` : t.name;
    });
}
