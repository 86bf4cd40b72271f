/**
 * Log level names shared by the logger and the config schema. Pino's names are canonical;
 * Celery's names (WARNING, CRITICAL, upper case) are accepted too because people pass
 * `--loglevel=WARNING` out of habit from `celery worker`.
 */

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

const CELERY_ALIASES: Readonly<Record<string, LogLevel>> = {
  warning: 'warn',
  critical: 'fatal',
};

/** The pino level for `value` (case-insensitive, Celery aliases allowed), or undefined. */
export function normalizeLogLevel(value: string): LogLevel | undefined {
  const lower = value.trim().toLowerCase();
  const alias = CELERY_ALIASES[lower];
  if (alias !== undefined) return alias;
  return (LOG_LEVELS as readonly string[]).includes(lower) ? (lower as LogLevel) : undefined;
}
