/** Dates of the time steps inside one file (CF `units: "<unit> since <date>"`, standard calendar). */
import type { NcReader } from './types';

const UNIT_MS: Record<string, number> = {
  day: 86_400_000,
  days: 86_400_000,
  d: 86_400_000,
  hour: 3_600_000,
  hours: 3_600_000,
  h: 3_600_000,
  minute: 60_000,
  minutes: 60_000,
  min: 60_000,
  second: 1000,
  seconds: 1000,
  s: 1000,
};

/** Parse the reference date of CF units ('1980-1-1', '1980-01-01 00:00:00', '1980-01-01T00:00:00Z'). */
function referenceMs(text: string): number {
  const m = /^(-?\d{1,4})-(\d{1,2})-(\d{1,2})(?:[T ](\d{1,2}):(\d{1,2})(?::(\d{1,2}(?:\.\d*)?))?)?/.exec(text.trim());
  if (!m) return NaN;
  const [, y, mo, d, h = '0', mi = '0', s = '0'] = m;
  return Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), 0) + Number(s) * 1000;
}

/**
 * The instants (ms since the epoch) of every value of a time coordinate variable, decoded from
 * its CF units (standard calendars only); throws naming the units when they cannot be decoded.
 */
export function decodeTimes(reader: NcReader, timeVar: string): number[] {
  const time = reader.variable(timeVar);
  const units = typeof time?.attributes.units === 'string' ? time.attributes.units : '';
  const m = /^\s*(\w+)\s+since\s+(.+)$/.exec(units);
  const calendar = String(time?.attributes.calendar ?? 'standard').toLowerCase();
  if (!time || !m || !(m[1].toLowerCase() in UNIT_MS) || !['standard', 'gregorian', 'proleptic_gregorian'].includes(calendar)) {
    throw new Error(`time '${timeVar}' has no decodable CF units ('${units}', calendar ${calendar})`);
  }
  const base = referenceMs(m[2]);
  if (Number.isNaN(base)) throw new Error(`time units '${units}': bad reference date`);
  const scale = UNIT_MS[m[1].toLowerCase()];
  return Array.from(reader.readAll(timeVar), (t) => base + Math.round(t * scale));
}

/**
 * The date of each index of the leading (time) dimension. One step: the file's own date (from its
 * name). Several: decoded from the time coordinate's CF units; throws when they cannot be.
 */
export function stepDates(reader: NcReader, timeDim: string | undefined, steps: number, fileDate: string): string[] {
  if (steps === 1 || timeDim === undefined) return [fileDate];
  try {
    return decodeTimes(reader, timeDim).map((ms) => new Date(ms).toISOString());
  } catch (error) {
    throw new Error(`${steps} time steps but ${(error as Error).message}`, { cause: error });
  }
}
