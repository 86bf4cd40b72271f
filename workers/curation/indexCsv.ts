/**
 * The index of NetCDF files, cBottle's index.csv: one row per file with the columns
 * `file, table, param, name, start_date, end_date`. Dates are written as pandas prints them
 * (`2020-01-01 00:00:00`), so `pd.read_csv(..., parse_dates=[...])` reads the same index.
 */
import { readFile, readdir, writeFile, rename } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { decodeTimes, openNetcdf } from '../climate';

export interface IndexRow {
  file: string;
  /** ERA5 table and parameter id; -1 when the name does not say. */
  table: number;
  param: number;
  /** The variable's short name (the store's array name), e.g. '2t'. */
  name: string;
  /** First and last time step in the file, ms since the epoch (UTC). */
  start: number;
  end: number;
}

export const INDEX_COLUMNS = ['file', 'table', 'param', 'name', 'start_date', 'end_date'] as const;

/** `YYYY-MM-DD HH:MM:SS` (UTC), pandas' text for a timestamp. */
export function formatIndexDate(ms: number): string {
  return new Date(ms).toISOString().slice(0, 19).replace('T', ' ');
}

function parseIndexDate(text: string, line: number): number {
  const ms = Date.parse(`${text.trim().replace(' ', 'T')}${/[zZ]$/.test(text.trim()) ? '' : 'Z'}`);
  if (Number.isNaN(ms)) throw new Error(`index line ${line}: bad date '${text}'`);
  return ms;
}

function quote(field: string): string {
  return /[",\n]/.test(field) ? `"${field.replace(/"/g, '""')}"` : field;
}

/** Split one CSV line (RFC 4180 quoting; no newlines inside fields: paths and names have none). */
function splitCsvLine(line: string): string[] {
  const fields: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i];
    if (quoted) {
      if (ch === '"' && line[i + 1] === '"') {
        field += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else field += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ',') {
      fields.push(field);
      field = '';
    } else field += ch;
  }
  fields.push(field);
  return fields;
}

export function formatIndex(rows: IndexRow[]): string {
  const lines = [INDEX_COLUMNS.join(',')];
  for (const r of rows) lines.push([r.file, String(r.table), String(r.param), r.name, formatIndexDate(r.start), formatIndexDate(r.end)].map(quote).join(','));
  return `${lines.join('\n')}\n`;
}

/**
 * Parse an index. Columns are found by header name, so pandas' extra leading index column
 * (`to_csv` without `index=False`) is tolerated. Throws naming the line of a malformed row.
 */
export function parseIndex(text: string): IndexRow[] {
  const lines = text.split(/\r?\n/).filter((l) => l.trim() !== '');
  if (lines.length === 0) return [];
  const header = splitCsvLine(lines[0]);
  const at = Object.fromEntries(INDEX_COLUMNS.map((c) => [c, header.indexOf(c)])) as Record<(typeof INDEX_COLUMNS)[number], number>;
  const missing = INDEX_COLUMNS.filter((c) => at[c] < 0);
  if (missing.length > 0) throw new Error(`index header lacks ${missing.join(', ')} (has ${header.join(', ')})`);
  return lines.slice(1).map((line, i) => {
    const f = splitCsvLine(line);
    const n = i + 2;
    if (f.length < header.length) throw new Error(`index line ${n}: ${f.length} fields, header has ${header.length}`);
    return {
      file: f[at.file],
      table: Number(f[at.table]),
      param: Number(f[at.param]),
      name: f[at.name],
      start: parseIndexDate(f[at.start_date], n),
      end: parseIndexDate(f[at.end_date], n),
    };
  });
}

export async function readIndex(path: string): Promise<IndexRow[]> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  return parseIndex(text);
}

/** Written to a temp name and renamed: a crash never leaves half an index. */
export async function writeIndex(path: string, rows: IndexRow[]): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  await writeFile(tmp, formatIndex(rows));
  await rename(tmp, path);
}

/** YYYYMMDDHH (cBottle's file-name dates). */
function tenDigitDate(text: string): number {
  const m = /^(\d{4})(\d{2})(\d{2})(\d{2})?$/.exec(text);
  if (!m) return NaN;
  const [, y, mo, d, h = '0'] = m;
  return Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h));
}

/** What the name pattern says about a file; null fields are read from the file itself. */
export function rowFromName(path: string, pattern: RegExp): Partial<IndexRow> | null {
  const g = pattern.exec(basename(path))?.groups;
  if (!g) return null;
  const start = g.start === undefined ? NaN : tenDigitDate(g.start);
  const end = g.end === undefined ? NaN : tenDigitDate(g.end);
  return {
    file: path,
    table: g.table === undefined ? -1 : Number(g.table),
    param: g.param === undefined ? -1 : Number(g.param),
    ...(g.name === undefined ? {} : { name: g.name }),
    ...(Number.isNaN(start) || Number.isNaN(end) ? {} : { start, end }),
  };
}

/** The file's data variable with a time dimension: its `short_name` attribute, else its name. */
function dataVariableName(reader: Awaited<ReturnType<typeof openNetcdf>>, timeDim: string): string {
  const data = reader.variables().filter((v) => v.dimensions[0] === timeDim && v.dimensions.length > 1);
  if (data.length !== 1) throw new Error(`cannot tell the variable from the file: ${data.length} data variables (${data.map((v) => v.name).join(', ')}); name the file by the pattern`);
  const short = data[0].attributes.short_name;
  return typeof short === 'string' && short !== '' ? short : data[0].name;
}

/** A row from the file's own time variable (and its single data variable when the name does not say). */
export async function rowFromFile(path: string, known: Partial<IndexRow> = {}): Promise<IndexRow> {
  const reader = await openNetcdf(path);
  try {
    const timeVar = ['time', 'valid_time'].find((n) => reader.variable(n) !== undefined);
    if (timeVar === undefined) throw new Error('no time variable');
    const times = decodeTimes(reader, timeVar);
    if (times.length === 0) throw new Error('the time variable is empty');
    return {
      file: path,
      table: known.table ?? -1,
      param: known.param ?? -1,
      name: known.name ?? dataVariableName(reader, timeVar),
      start: Math.min(...times),
      end: Math.max(...times),
    };
  } finally {
    reader.close();
  }
}

export interface IndexUpdate {
  rows: IndexRow[];
  added: number;
  kept: number;
  /** Files that could be neither parsed by name nor read: with the reason. */
  skipped: { file: string; reason: string }[];
}

/**
 * Index the `.nc`/`.nc4` files of a folder into `existing`: rows of files already indexed are
 * kept as they are; new files are added (by name pattern, else from the file's time variable).
 * Rows are sorted by name, then start date, then file.
 */
export async function updateIndex(folder: string, existing: IndexRow[], pattern: RegExp): Promise<IndexUpdate> {
  const have = new Set(existing.map((r) => r.file));
  const names = (await readdir(folder)).filter((n) => /\.nc4?$/.test(n)).sort();
  const rows = [...existing];
  const skipped: IndexUpdate['skipped'] = [];
  let added = 0;
  for (const name of names) {
    const path = join(folder, name);
    if (have.has(path)) continue;
    const known = rowFromName(path, pattern);
    try {
      rows.push(known?.name !== undefined && known.start !== undefined && known.end !== undefined ? (known as IndexRow) : await rowFromFile(path, known ?? {}));
      added += 1;
    } catch (error) {
      skipped.push({ file: path, reason: (error as Error).message });
    }
  }
  rows.sort((a, b) => a.name.localeCompare(b.name) || a.start - b.start || a.file.localeCompare(b.file));
  return { rows, added, kept: existing.length, skipped };
}
