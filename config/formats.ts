/**
 * Custom convict formats. Each one states its expectation in words ("must be a positive
 * integer") because that text ends up verbatim in the start-up error, and convict's built-in
 * messages are either vague ("must be of type Number") or wrong for us (`nat` says "positive"
 * but accepts 0). Each also coerces the strings that come from environment variables, keeping
 * a string that does not parse as it was so the error can show what the user actually typed.
 */
import convict from 'convict';
import { LOG_LEVELS, normalizeLogLevel } from '../workers/log/levels';

export const BROKER_SCHEMES = ['filesystem', 'redis', 'rediss', 'sentinel', 'amqp', 'amqps', 'pyamqp'] as const;
export const RESULT_BACKEND_SCHEMES = ['file', 'redis', 'rediss', 'sentinel', 'rpc', 'mongodb', 'mongodb+srv'] as const;
export const MONGO_SCHEMES = ['mongodb', 'mongodb+srv'] as const;
export const SERIALIZERS = ['json', 'msgpack', 'yaml'] as const;
/** kombu's content type for each serializer; accept_content may use either form. */
export const CONTENT_TYPES: Readonly<Record<(typeof SERIALIZERS)[number], string>> = {
  json: 'application/json',
  msgpack: 'application/x-msgpack',
  yaml: 'application/x-yaml',
};

/** Format names, prefixed because convict's format registry is global to the process. */
export const FORMAT = {
  positiveInt: 'celeriac-positive-int',
  nonNegativeInt: 'celeriac-non-negative-int',
  maxPriority: 'celeriac-max-priority',
  queueDefinitions: 'celeriac-queue-definitions',
  queueType: 'celeriac-queue-type',
  seconds: 'celeriac-seconds',
  positiveSeconds: 'celeriac-positive-seconds',
  timeLimit: 'celeriac-time-limit',
  boolean: 'celeriac-boolean',
  string: 'celeriac-string',
  name: 'celeriac-name',
  nullableName: 'celeriac-nullable-name',
  nullablePath: 'celeriac-nullable-path',
  stringList: 'celeriac-string-list',
  queueList: 'celeriac-queue-list',
  prioritySteps: 'celeriac-priority-steps',
  brokerUrl: 'celeriac-broker-url',
  backendUrl: 'celeriac-backend-url',
  mongoUrl: 'celeriac-mongo-url',
  logLevel: 'celeriac-log-level',
  serializer: 'celeriac-serializer',
  acceptContent: 'celeriac-accept-content',
  pool: 'celeriac-pool',
  autoscale: 'celeriac-autoscale',
  nullablePositiveInt: 'celeriac-nullable-positive-int',
  nullablePort: 'celeriac-nullable-port',
  port: 'celeriac-port',
  positiveNumber: 'celeriac-positive-number',
  optimization: 'celeriac-optimization',
  failoverStrategy: 'celeriac-failover-strategy',
  nullableHttpUrl: 'celeriac-nullable-http-url',
} as const;

interface Spec {
  expected: string;
  check: (v: unknown) => boolean;
  coerce?: (raw: string) => unknown;
}

const isInt = (v: unknown): v is number => Number.isInteger(v);
const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const isStr = (v: unknown): v is string => typeof v === 'string';
const isStrList = (v: unknown): v is string[] => Array.isArray(v) && v.every((s) => isStr(s) && s.trim() !== '');

const toNumber = (raw: string): unknown => (/^\s*[-+]?\d+(\.\d+)?\s*$/.test(raw) ? Number(raw) : raw);
const toList = (raw: string): string[] =>
  raw
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
const toBoolean = (raw: string): unknown => {
  const v = raw.trim().toLowerCase();
  if (['true', '1', 'yes', 'on'].includes(v)) return true;
  if (['false', '0', 'no', 'off'].includes(v)) return false;
  return raw;
};
const toNullableNumber = (raw: string): unknown =>
  ['', 'null', 'none'].includes(raw.trim().toLowerCase()) ? null : toNumber(raw);

const oneOf = (values: readonly string[]): Spec => ({
  expected: `must be one of ${values.join(', ')}`,
  check: (v) => isStr(v) && values.includes(v),
  coerce: (raw) => raw.trim().toLowerCase(),
});

function urlWithScheme(schemes: readonly string[], allowFailoverList: boolean): Spec {
  const ok = (url: string): boolean => {
    const m = /^([a-z][a-z0-9+.-]*):\/\//i.exec(url.trim());
    return m !== null && schemes.includes(m[1].toLowerCase());
  };
  return {
    expected: `must be a URL with scheme ${schemes.map((s) => `${s}://`).join(', ')}${allowFailoverList ? " (or several, separated by ';' or as a list, for failover)" : ''}`,
    // Celery accepts several broker URLs separated by ';' (or a list) for failover, and
    // sentinel:// lists for the result backend.
    check: (v) =>
      allowFailoverList
        ? (isStr(v) && v.split(';').every(ok)) || (Array.isArray(v) && v.length > 0 && v.every((u) => isStr(u) && ok(u)))
        : isStr(v) && ok(v),
  };
}

const SPECS: Readonly<Record<(typeof FORMAT)[keyof typeof FORMAT], Spec>> = {
  [FORMAT.positiveInt]: { expected: 'must be a positive integer', check: (v) => isInt(v) && v > 0, coerce: toNumber },
  [FORMAT.queueDefinitions]: {
    expected:
      'must be null or a list of {name, exchange?, exchange_type? (direct|topic|fanout), routing_key?, queue_arguments?, durable?, auto_delete?}',
    check: (v) =>
      v === null ||
      (Array.isArray(v) &&
        v.every(
          (q) =>
            typeof q === 'object' &&
            q !== null &&
            isStr((q as { name?: unknown }).name) &&
            [undefined, 'direct', 'topic', 'fanout'].includes((q as { exchange_type?: string }).exchange_type),
        )),
    // From the environment as JSON (CELERIAC_TASK_QUEUES='[{"name": "reports", ...}]').
    coerce: (raw) => {
      try {
        return JSON.parse(raw) as unknown;
      } catch {
        return raw;
      }
    },
  },
  [FORMAT.queueType]: oneOf(['classic', 'quorum']),
  [FORMAT.maxPriority]: {
    expected: 'must be null or an integer 1-255 (RabbitMQ x-max-priority)',
    check: (v) => v === null || (isInt(v) && v >= 1 && v <= 255),
    coerce: toNullableNumber,
  },
  [FORMAT.nonNegativeInt]: {
    expected: 'must be an integer >= 0',
    check: (v) => isInt(v) && v >= 0,
    coerce: toNumber,
  },
  [FORMAT.seconds]: { expected: 'must be a number of seconds >= 0', check: (v) => isNum(v) && v >= 0, coerce: toNumber },
  [FORMAT.positiveSeconds]: {
    expected: 'must be a number of seconds > 0',
    check: (v) => isNum(v) && v > 0,
    coerce: toNumber,
  },
  [FORMAT.timeLimit]: {
    expected: 'must be null (no limit) or a number of seconds > 0',
    check: (v) => v === null || (isNum(v) && v > 0),
    coerce: toNullableNumber,
  },
  [FORMAT.boolean]: { expected: 'must be true or false', check: (v) => typeof v === 'boolean', coerce: toBoolean },
  [FORMAT.string]: { expected: 'must be a string', check: isStr },
  [FORMAT.name]: { expected: 'must be a non-empty string', check: (v) => isStr(v) && v.trim() !== '' },
  [FORMAT.nullableName]: { expected: 'must be null or a non-empty string', check: (v) => v === null || (isStr(v) && v.trim() !== '') },
  [FORMAT.nullablePath]: { expected: 'must be null or a file path', check: (v) => v === null || (isStr(v) && v !== '') },
  [FORMAT.stringList]: { expected: 'must be a list of non-empty strings', check: isStrList, coerce: toList },
  [FORMAT.queueList]: {
    expected: 'must be a non-empty list of queue names (comma-separated in env)',
    check: (v) => isStrList(v) && v.length > 0,
    coerce: toList,
  },
  [FORMAT.prioritySteps]: {
    expected: 'must be a non-empty ascending list of distinct integers 0-255',
    check: (v) =>
      Array.isArray(v) && v.length > 0 && v.every((n, i) => isInt(n) && n >= 0 && n <= 255 && (i === 0 || n > v[i - 1])),
    coerce: (raw) => toList(raw).map(toNumber),
  },
  [FORMAT.brokerUrl]: urlWithScheme(BROKER_SCHEMES, true),
  // '' disables results, like Celery's result_backend = None (DisabledBackend).
  [FORMAT.backendUrl]: (() => {
    const url = urlWithScheme(RESULT_BACKEND_SCHEMES, false);
    const sentinels = urlWithScheme(['sentinel'], true);
    return {
      ...url,
      expected: `${url.expected} (or '' for no results)`,
      check: (v: unknown) => v === '' || url.check(v) || (isStr(v) && sentinels.check(v)),
    };
  })(),
  [FORMAT.mongoUrl]: urlWithScheme(MONGO_SCHEMES, false),
  [FORMAT.logLevel]: { ...oneOf(LOG_LEVELS), coerce: (raw) => normalizeLogLevel(raw) ?? raw },
  [FORMAT.serializer]: oneOf(SERIALIZERS),
  [FORMAT.acceptContent]: {
    expected: `must be a list of ${[...SERIALIZERS, ...Object.values(CONTENT_TYPES)].join(', ')}`,
    check: (v) =>
      Array.isArray(v) &&
      v.every((s) => isStr(s) && ((SERIALIZERS as readonly string[]).includes(s) || Object.values(CONTENT_TYPES).includes(s))),
    coerce: toList,
  },
  [FORMAT.pool]: oneOf(['async', 'threads', 'processes']),
  [FORMAT.failoverStrategy]: oneOf(['round-robin', 'shuffle']),
  // Flower's validate_broker_api: an http(s) URL with a host; '' (an unset variable) is null.
  [FORMAT.nullableHttpUrl]: {
    expected: 'must be null or an http:// or https:// URL with a host',
    check: (v) => v === null || (isStr(v) && /^https?:\/\/[^/?#]+/i.test(v.trim())),
    coerce: (raw) => (['', 'null', 'none'].includes(raw.trim().toLowerCase()) ? null : raw.trim()),
  },
  // Celery's --autoscale=max,min (min defaults to 0 when left out).
  [FORMAT.autoscale]: {
    expected: "must be null or 'max,min' with whole numbers, max >= 1 and max >= min",
    check: (v) => {
      if (v === null) return true;
      const m = isStr(v) ? /^\s*(\d+)\s*(?:,\s*(\d+)\s*)?$/.exec(v) : null;
      return m !== null && Number(m[1]) >= 1 && Number(m[1]) >= Number(m[2] ?? 0);
    },
    coerce: (raw) => (raw === '' || raw === 'null' ? null : raw),
  },
  [FORMAT.nullablePositiveInt]: {
    expected: 'must be null or a whole number > 0',
    check: (v) => v === null || (isInt(v) && v > 0),
    coerce: toNullableNumber,
  },
  [FORMAT.optimization]: oneOf(['default', 'fair']),
  [FORMAT.positiveNumber]: { expected: 'must be a number > 0', check: (v) => isNum(v) && v > 0, coerce: toNumber },
  [FORMAT.port]: {
    expected: 'must be a TCP port (1-65535)',
    check: (v) => isInt(v) && v >= 1 && v <= 65535,
    coerce: toNumber,
  },
  [FORMAT.nullablePort]: {
    expected: 'must be null or a TCP port (1-65535)',
    check: (v) => v === null || (isInt(v) && v >= 1 && v <= 65535),
    coerce: toNullableNumber,
  },
};

let registered = false;

/** Register the formats with convict (idempotent; the schema module calls it on import). */
export function registerFormats(): void {
  if (registered) return;
  for (const [name, spec] of Object.entries(SPECS)) {
    convict.addFormat({
      name,
      validate: (value: unknown) => {
        if (!spec.check(value)) throw new Error(spec.expected);
      },
      coerce: spec.coerce,
    });
  }
  registered = true;
}
