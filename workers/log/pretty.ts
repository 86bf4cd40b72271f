/**
 * A human-readable destination for pino, in Celery's log format:
 *   [2024-05-01 12:00:00,123: INFO/celeriac] Task demo.add[<id>] received
 * pino-pretty is not a dependency; reformatting pino's own JSON line keeps this to one function.
 */
import type { DestinationStream } from 'pino';

const LABELS: Readonly<Record<number, string>> = {
  10: 'TRACE',
  20: 'DEBUG',
  30: 'INFO',
  40: 'WARNING',
  50: 'ERROR',
  60: 'CRITICAL',
};

/** Fields pino always writes; anything else is appended after the message as JSON. */
const STANDARD_KEYS = new Set(['level', 'time', 'msg', 'name', 'pid', 'hostname', 'err']);

/** Wrap `out` so each pino JSON line is written as a Celery-style text line. */
export function prettyDestination(out: DestinationStream): DestinationStream {
  return { write: (line: string) => out.write(formatLine(line)) };
}

export function formatLine(line: string): string {
  let rec: Record<string, unknown>;
  try {
    rec = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line; // not pino JSON: pass it through rather than lose it
  }
  const level = typeof rec.level === 'number' ? (LABELS[rec.level] ?? String(rec.level)) : String(rec.level);
  const name = typeof rec.name === 'string' ? rec.name : 'celeriac';
  const time = typeof rec.time === 'number' ? celeryTime(new Date(rec.time)) : '';
  let text = `[${time}: ${level}/${name}] ${rec.msg === undefined ? '' : String(rec.msg)}`;

  const extra = Object.fromEntries(Object.entries(rec).filter(([k]) => !STANDARD_KEYS.has(k)));
  if (Object.keys(extra).length > 0) text += ` ${JSON.stringify(extra)}`;
  const err = rec.err as { stack?: unknown } | undefined;
  if (err !== undefined && typeof err.stack === 'string') text += `\n${err.stack}`;
  return `${text}\n`;
}

/** Local time as `YYYY-MM-DD HH:MM:SS,mmm`, like Python logging's asctime. */
function celeryTime(d: Date): string {
  const p = (n: number, w = 2): string => String(n).padStart(w, '0');
  return (
    `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ` +
    `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())},${p(d.getMilliseconds(), 3)}`
  );
}
