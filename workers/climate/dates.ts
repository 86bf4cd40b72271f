/**
 * Dates from file names. A pattern is a glob over the whole file name (`*` any run, `?` one
 * character) whose tokens say where the date is: %Y year, %m month, %d day, %H hour, %M minute,
 * %S second, %j day of year, %% a percent sign. Missing parts default to the start (month 1,
 * day 1, 00:00:00), all UTC.
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { ClimateWarning, DatedFile } from './types';

/** ClimateSERV's default: a YYYYMMDDTHHMMSSZ part in a `*.nc4` name. */
export const DEFAULT_DATE_PATTERN = '*%Y%m%dT%H%M%SZ*.nc4';

type Field = 'Y' | 'm' | 'd' | 'H' | 'M' | 'S' | 'j';
const WIDTH: Record<Field, number> = { Y: 4, m: 2, d: 2, H: 2, M: 2, S: 2, j: 3 };

export interface DatePattern {
  source: string;
  regex: RegExp;
  fields: Field[];
}

/** Compile a pattern; throws naming the bad token (deployers see it at startup). */
export function compileDatePattern(pattern: string = DEFAULT_DATE_PATTERN): DatePattern {
  const fields: Field[] = [];
  let source = '^';
  for (let i = 0; i < pattern.length; i++) {
    const ch = pattern[i];
    if (ch === '%') {
      const token = pattern[++i];
      if (token === '%') source += '%';
      else if (token in WIDTH) {
        if (fields.includes(token as Field)) throw new Error(`date pattern '${pattern}' has %${token} twice`);
        fields.push(token as Field);
        source += `(\\d{${WIDTH[token as Field]}})`;
      } else throw new Error(`date pattern '${pattern}': unknown token %${token ?? ''} (use %Y %m %d %H %M %S %j %%)`);
    } else if (ch === '*') source += '.*';
    else if (ch === '?') source += '.';
    else source += ch.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  if (!fields.includes('Y')) throw new Error(`date pattern '${pattern}' has no %Y`);
  if (fields.includes('j') && (fields.includes('m') || fields.includes('d'))) throw new Error(`date pattern '${pattern}' mixes %j with %m/%d`);
  return { source: pattern, regex: new RegExp(`${source}$`), fields };
}

/** The UTC instant a file name encodes, or null when the name does not match or the date is invalid. */
export function dateFromFileName(name: string, pattern: DatePattern): Date | null {
  const match = pattern.regex.exec(name);
  if (!match) return null;
  const part: Partial<Record<Field, number>> = {};
  pattern.fields.forEach((field, i) => (part[field] = Number(match[i + 1])));
  const { Y = 0, m = 1, d = 1, H = 0, M = 0, S = 0, j } = part;
  if (m < 1 || m > 12 || H > 23 || M > 59 || S > 59) return null;
  if (j !== undefined) {
    const date = new Date(Date.UTC(Y, 0, j, H, M, S));
    return j >= 1 && date.getUTCFullYear() === Y ? date : null;
  }
  const date = new Date(Date.UTC(Y, m - 1, d, H, M, S));
  return date.getUTCMonth() === m - 1 && date.getUTCDate() === d ? date : null;
}

/** Start of an ISO day 'YYYY-MM-DD' (UTC), in ms. */
export function dayStart(isoDay: string): number {
  const ms = Date.parse(`${isoDay.slice(0, 10)}T00:00:00Z`);
  if (Number.isNaN(ms)) throw new Error(`not an ISO date: '${isoDay}'`);
  return ms;
}

const DAY_MS = 86_400_000;

/** True when `date` falls on a day from begin to end (ISO days, inclusive). */
export function inDays(date: Date, begin: string, end: string): boolean {
  const t = date.getTime();
  return t >= dayStart(begin) && t < dayStart(end) + DAY_MS;
}

/**
 * The files of a folder whose names match the pattern and whose date falls in begin..end (ISO
 * days, inclusive; both optional), sorted by date. A name that matches the glob but encodes an
 * impossible date (month 13) is a warning. A folder that cannot be listed throws: that is a
 * configuration error, not a bad file.
 */
export async function listDatedFiles(folder: string, pattern: DatePattern, begin?: string, end?: string): Promise<{ files: DatedFile[]; warnings: ClimateWarning[] }> {
  let names: string[];
  try {
    names = await readdir(folder);
  } catch (error) {
    throw new Error(`dataset folder '${folder}' cannot be listed: ${(error as Error).message}`, { cause: error });
  }
  const files: DatedFile[] = [];
  const warnings: ClimateWarning[] = [];
  const from = begin === undefined ? -Infinity : dayStart(begin);
  const to = end === undefined ? Infinity : dayStart(end) + DAY_MS;
  for (const name of names) {
    if (!pattern.regex.test(name)) continue;
    const date = dateFromFileName(name, pattern);
    if (!date) {
      warnings.push({ file: join(folder, name), message: `file name has no valid date for pattern '${pattern.source}'` });
      continue;
    }
    if (date.getTime() >= from && date.getTime() < to) files.push({ path: join(folder, name), date: date.toISOString() });
  }
  files.sort((a, b) => a.date.localeCompare(b.date) || a.path.localeCompare(b.path));
  return { files, warnings };
}
