/**
 * What `enqueue-regrid` and `enqueue-curate` send: the index rows in the chosen date range and
 * variables, minus what is already done. "Done" is read from the outputs themselves (the
 * regridded file exists; the store's chunks of the file's time range exist), so re-running after
 * a crash sends exactly what is missing.
 */
import { existsSync } from 'node:fs';
import type { IndexRow } from './indexCsv';
import { regriddedPath } from './regrid';
import { timeIndex, type CurationSettings } from './settings';
import { timeRangeWritten } from './store';

export interface Selection {
  /** ISO dates; rows whose start_date is in from..to (inclusive). */
  from?: string;
  to?: string;
  /** Default: the configured variables. */
  variables?: string[];
}

function bound(text: string | undefined, fallback: number, flag: string): number {
  if (text === undefined) return fallback;
  const ms = Date.parse(/^\d{4}$/.test(text) ? `${text}-01-01T00:00:00Z` : /[zZ]$|[+-]\d\d:?\d\d$/.test(text) ? text : `${text.replace(' ', 'T')}${text.length <= 10 ? 'T00:00:00' : ''}Z`);
  if (Number.isNaN(ms)) throw new Error(`${flag}: not a date: '${text}'`);
  return ms;
}

export function selectRows(rows: IndexRow[], selection: Selection, settings: CurationSettings): IndexRow[] {
  const from = bound(selection.from, -Infinity, '--from');
  const to = selection.to !== undefined && /^\d{4}$/.test(selection.to) ? bound(`${Number(selection.to) + 1}`, Infinity, '--to') - 1 : bound(selection.to, Infinity, '--to');
  const names = new Set(selection.variables ?? settings.variables.map((v) => v.name));
  return rows.filter((r) => names.has(r.name) && r.start >= from && r.start <= to);
}

export interface Plan {
  send: string[];
  /** Already done. */
  skipped: number;
  /** Cannot be sent yet or at all, with the reason (e.g. not regridded yet). */
  blocked: { file: string; reason: string }[];
  /** Sent, but sharing a store chunk with another file: curate them one at a time. */
  unaligned: string[];
}

export function planRegrid(rows: IndexRow[], settings: CurationSettings): Plan {
  const plan: Plan = { send: [], skipped: 0, blocked: [], unaligned: [] };
  for (const r of rows) {
    if (existsSync(regriddedPath(settings, r.file))) plan.skipped += 1;
    else plan.send.push(r.file);
  }
  return plan;
}

/** Curate reads the regridded file; the row's dates say which store chunks it fills. */
export function planCurate(rows: IndexRow[], settings: CurationSettings): Plan {
  const plan: Plan = { send: [], skipped: 0, blocked: [], unaligned: [] };
  const chunk = settings.timeChunk;
  for (const r of rows) {
    const source = regriddedPath(settings, r.file);
    const variable = settings.variables.find((v) => v.name === r.name);
    const first = timeIndex(settings, r.start);
    const last = timeIndex(settings, r.end);
    if (!variable) plan.blocked.push({ file: r.file, reason: `variable '${r.name}' is not configured` });
    else if (first < 0 || last < 0) plan.blocked.push({ file: r.file, reason: 'its dates are not on the store time axis' });
    else if (timeRangeWritten(settings, variable, first, last)) plan.skipped += 1;
    else if (!existsSync(source)) plan.blocked.push({ file: r.file, reason: `not regridded yet (${source})` });
    else {
      plan.send.push(source);
      if (first % chunk !== 0 || ((last + 1) % chunk !== 0 && last + 1 !== settings.timeSteps)) plan.unaligned.push(source);
    }
  }
  return plan;
}
