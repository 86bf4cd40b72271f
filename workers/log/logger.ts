/**
 * The process logger: pino, with every message, field and child binding passed through secret
 * masking before it is serialized, so a broker URL with a password can be logged without care.
 */
import type pino from 'pino';
import type { DestinationStream, LogFn } from 'pino';
import { lazyModule } from '../lazy';
import { normalizeLogLevel, LOG_LEVELS } from './levels';
import { maskSecrets, maskValue } from './mask';
import { prettyDestination } from './pretty';

export type Logger = pino.Logger;

// Loaded by the first logger: a pool child (which logs through its parent) never pays for it (#16).
const pinoLib = lazyModule<typeof import('pino')>('pino');
export type { DestinationStream };

export interface LoggerOptions {
  /** A pino level, or a Celery one (WARNING, CRITICAL), any case. */
  level: string;
  /** Written as `name` on every line (Celery's processName slot in pretty mode). */
  name?: string;
  /** Celery-style text lines instead of JSON. */
  pretty?: boolean;
  /** Where lines go; stdout by default. Tests pass a capturing stream. */
  destination?: DestinationStream;
}

/** pino's fast writer on a file descriptor (1 stdout, 2 stderr). */
export function fdDestination(fd: number): DestinationStream {
  return pinoLib().destination(fd);
}

export function createLogger(opts: LoggerOptions): Logger {
  const level = normalizeLogLevel(opts.level);
  if (level === undefined) {
    throw new Error(`log level "${opts.level}": must be one of ${LOG_LEVELS.join(', ')}`);
  }
  const out: DestinationStream = opts.destination ?? fdDestination(1);
  const options: pino.LoggerOptions = {
    level,
    name: opts.name ?? 'celeriac',
    hooks: {
      logMethod: maskArgs,
      // pino applies formatters.bindings to the root logger only, not to child() bindings, so
      // the finished line gets one more pass. The passes before it still matter: they see raw
      // strings (a password containing a quote is cut short once JSON-escaped) and field names.
      streamWrite: maskSecrets,
    },
    formatters: {
      log: maskFields,
      bindings: (bindings) => maskFields(bindings),
    },
    serializers: {
      // formatters.log runs before serializers, so `err` is left alone there and masked here,
      // after pino has turned it into {type, message, stack}.
      err: (e: Error) => maskValue({ ...pinoLib().stdSerializers.err(e) }),
    },
  };
  return pinoLib().pino(options, opts.pretty === true ? prettyDestination(out) : out);
}

/** A copy of a config object with every URL password (and password-named field) masked. */
export function maskConfigForLog<T extends object>(config: T): T {
  return maskValue(config) as T;
}

/** hooks.logMethod: mask the message and its format arguments before pino interpolates them. */
function maskArgs(this: Logger, args: Parameters<LogFn>, method: LogFn): void {
  const masked: unknown[] = args.map((arg, i) => (i === 0 && typeof arg === 'object' ? arg : maskValue(arg)));
  // With only an object argument pino takes the message from err.message, unmasked: supply it.
  const first = masked[0];
  if (masked.length === 1 && typeof first === 'object' && first !== null) {
    const err = first instanceof Error ? first : (first as { err?: unknown; msg?: unknown }).err;
    if (err instanceof Error && (first as { msg?: unknown }).msg === undefined) {
      masked.push(maskSecrets(err.message));
    }
  }
  method.apply(this, masked as Parameters<LogFn>);
}

function maskFields(fields: Record<string, unknown>): Record<string, unknown> {
  const { err, ...rest } = fields;
  const out = maskValue(rest) as Record<string, unknown>;
  if (err !== undefined) out.err = err;
  return out;
}
