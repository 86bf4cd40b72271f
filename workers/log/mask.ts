/**
 * Hide credentials before they reach a log line or an error message.
 *
 * Broker and backend URLs carry passwords (`redis://:secret@host/0`), and they end up in startup
 * banners, connection errors and config validation messages. Like Celery's `maskurl` and kombu's
 * `as_uri(include_password=False)`, only the password is replaced (by `**`), so the user name,
 * host, port and path stay readable for debugging.
 */

const MASK = '**';

/** A URL scheme followed by `://`; everything up to RUN_END is treated as that URL. */
const SCHEME_RE = /[a-zA-Z][a-zA-Z0-9+.-]*:\/\//g;
/** Ends a URL inside free text: whitespace, quotes, angle brackets, and `;` (Celery's failover list separator). */
const RUN_END_RE = /[\s"'`<>;]/;
/** Secrets passed as query parameters (redis-py accepts `?password=`). */
const QUERY_SECRET_RE = /([?&](?:password|passwd|pwd|secret|token)=)[^&#]+/gi;

/** Object keys whose string values are secrets by name (used by maskValue). */
export const SECRET_KEY_RE = /passw(or)?d|^pwd$|secret|token|api_?key|private_?key/i;

/** Mask the password of one URL: `amqp://user:pw@host//` -> `amqp://user:**@host//`. */
export function maskUrl(url: string): string {
  return maskSecrets(url);
}

/** Mask the password of every URL found in `text` (messages, stack traces, JSON). */
export function maskSecrets(text: string): string {
  const starts = [...text.matchAll(SCHEME_RE)].map((m) => ({ at: m.index, len: m[0].length }));
  if (starts.length === 0) return text;

  let out = text.slice(0, starts[0].at);
  starts.forEach((s, i) => {
    const bodyStart = s.at + s.len;
    const nextScheme = i + 1 < starts.length ? starts[i + 1].at : text.length;
    const endMatch = RUN_END_RE.exec(text.slice(bodyStart, nextScheme));
    const bodyEnd = endMatch === null ? nextScheme : bodyStart + endMatch.index;
    out += text.slice(s.at, bodyStart) + maskUrlBody(text.slice(bodyStart, bodyEnd));
    out += text.slice(bodyEnd, nextScheme);
  });
  return out;
}

/** `body` is what follows `scheme://`: [user[:password]@]host[:port][/path][?query]. */
function maskUrlBody(body: string): string {
  const at = userinfoEnd(body);
  let masked = body;
  if (at !== -1) {
    const colon = body.indexOf(':');
    // An empty password has nothing to hide; keep it as written (Celery does the same).
    if (colon !== -1 && colon < at - 1) masked = body.slice(0, colon + 1) + MASK + body.slice(at);
  }
  return masked.replace(QUERY_SECRET_RE, `$1${MASK}`);
}

/** Index of the `@` that ends the userinfo, or -1 when the URL has none. */
function userinfoEnd(body: string): number {
  const authorityEnd = body.search(/[/?#]/);
  const authority = authorityEnd === -1 ? body : body.slice(0, authorityEnd);
  const at = authority.lastIndexOf('@');
  if (at !== -1) return at;
  // Generated passwords (base64 tokens) may contain an unescaped '/', which cuts the authority
  // short. Prefer over-masking: take the last '@' when what precedes it looks like user:password
  // rather than host:port/path (a port is all digits up to the first '/').
  const lastAt = body.lastIndexOf('@');
  if (lastAt === -1) return -1;
  const colon = body.indexOf(':');
  if (colon === -1 || colon > lastAt) return -1;
  const afterColon = body.slice(colon + 1, lastAt).split(/[/?#]/)[0];
  return /^\d+$/.test(afterColon) ? -1 : lastAt;
}

/**
 * A deep copy of `value` with every string passed through maskSecrets and every string under a
 * secret-looking key (password, token, ...) replaced by `**`. Errors become plain
 * `{type, message, stack, ...}` objects so their text can be masked too; other class instances
 * (Date, Buffer, ...) are kept as they are.
 */
export function maskValue(value: unknown): unknown {
  return maskInner(value, new WeakSet<object>());
}

function maskInner(value: unknown, seen: WeakSet<object>): unknown {
  if (typeof value === 'string') return maskSecrets(value);
  if (typeof value !== 'object' || value === null) return value;
  if (seen.has(value)) return '[Circular]';
  seen.add(value);
  try {
    if (Array.isArray(value)) return value.map((v: unknown) => maskInner(v, seen));
    if (value instanceof Error) return maskInner(errorToObject(value), seen);
    if (!isPlainObject(value)) return value;
    const copy: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      copy[k] = typeof v === 'string' && SECRET_KEY_RE.test(k) && v !== '' ? MASK : maskInner(v, seen);
    }
    return copy;
  } finally {
    // Only cycles are circular; the same object seen twice side by side is not.
    seen.delete(value);
  }
}

function isPlainObject(value: object): value is Record<string, unknown> {
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

function errorToObject(err: Error): Record<string, unknown> {
  return { ...err, type: err.constructor.name, message: err.message, stack: err.stack };
}
