/**
 * `inspect conf` as a Celery worker answers it, so tools that read it (Flower's config tab,
 * scripts, Celery's own integration suite) see Celery's setting names: Celeriac's value where it
 * has the setting (its config already uses Celery's names), Celery's default for every other one,
 * plus `include` (the task modules, and the celery.* builtins Celeriac implements).
 *
 * Celery trims the answer to the settings changed from their defaults unless with_defaults=True;
 * Celeriac always answers the whole table: a reader looking up any Celery setting finds it.
 */
import { CELERY_DEFAULTS } from './celeryDefaults';

/** The URL-valued settings Celery derives from broker_url when they are unset. */
const BROKER_URL_ALIASES = ['broker_read_url', 'broker_write_url'];

/** `own`: the worker's settings under Celery's names; its `include` lists the task modules loaded. */
export function celeryConf(own: Record<string, unknown>): Record<string, unknown> {
  const include = Array.isArray(own.include) ? own.include : [];
  const out: Record<string, unknown> = { ...CELERY_DEFAULTS, ...own, include: [...include, 'celery.app.builtins'] };
  for (const key of BROKER_URL_ALIASES) if (!(key in own)) out[key] = own.broker_url ?? out[key];
  return out;
}
