/**
 * Python-style repr of JSON-like values, for the argsrepr/kwargsrepr headers that Flower and
 * `celery inspect` show. Truncated like Celery's saferepr so a huge payload stays a short header.
 */
const MAX_REPR = 1024;

/** A value Python holds as a tuple: repr'd with parentheses (e.g. a signature's args). */
export class PyTuple {
  constructor(readonly items: readonly unknown[]) {}
}

/** Objects that know their Python form (canvas signatures) repr as that form. */
export interface PyReprSource {
  pyReprValue(): unknown;
}

function hasPyForm(v: object): v is PyReprSource {
  return typeof (v as Partial<PyReprSource>).pyReprValue === 'function';
}

function reprString(s: string): string {
  const quote = s.includes("'") && !s.includes('"') ? '"' : "'";
  const escaped = s
    .replace(/\\/g, '\\\\')
    .replace(/\n/g, '\\n')
    .replace(/\r/g, '\\r')
    .replace(/\t/g, '\\t')
    .split(quote)
    .join(`\\${quote}`);
  return `${quote}${escaped}${quote}`;
}

function reprValue(value: unknown, depth: number): string {
  if (value === null || value === undefined) return 'None';
  if (value === true) return 'True';
  if (value === false) return 'False';
  if (typeof value === 'number') {
    if (Number.isNaN(value)) return 'nan';
    if (!Number.isFinite(value)) return value > 0 ? 'inf' : '-inf';
    return String(value);
  }
  if (typeof value === 'bigint') return value.toString();
  if (typeof value === 'string') return reprString(value);
  if (Buffer.isBuffer(value)) return `b${reprString(value.toString('latin1'))}`;
  if (value instanceof Date) return reprString(value.toISOString());
  if (depth > 8) return '...';
  if (value instanceof PyTuple) {
    const inner = value.items.map((v) => reprValue(v, depth + 1)).join(', ');
    return value.items.length === 1 ? `(${inner},)` : `(${inner})`;
  }
  if (typeof value === 'object' && hasPyForm(value)) return reprValue(value.pyReprValue(), depth);
  if (Array.isArray(value)) return `[${value.map((v) => reprValue(v, depth + 1)).join(', ')}]`;
  if (typeof value === 'object') {
    const parts = Object.entries(value as Record<string, unknown>).map(
      ([k, v]) => `${reprString(k)}: ${reprValue(v, depth + 1)}`,
    );
    return `{${parts.join(', ')}}`;
  }
  return reprString(String(value));
}

function truncate(s: string): string {
  return s.length > MAX_REPR ? `${s.slice(0, MAX_REPR - 3)}...` : s;
}

/** repr(value) as Python would print it. */
export function pyRepr(value: unknown): string {
  return truncate(reprValue(value, 0));
}

/** repr(tuple(args)): Celery's argsrepr is the args tuple's repr. */
export function argsRepr(args: readonly unknown[]): string {
  const inner = args.map((a) => reprValue(a, 1)).join(', ');
  return truncate(args.length === 1 ? `(${inner},)` : `(${inner})`);
}
