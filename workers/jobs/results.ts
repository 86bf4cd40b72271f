/**
 * getDataFromRequest's answer, as ClimateSERV sends it: `{"data": [{"date": "MM/DD/YYYY",
 * "workid": "<uuid>", "epochTime": "<seconds>", "value": {"<op key>": n}}, ...]}` in date order.
 * The job writes it once to `<output_dir>/<uuid>.json`; the API streams that file back.
 */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

export interface StepEntry {
  date: string;
  workid: string;
  epochTime: string;
  /** Statistics: `{avg: 1.5}`; downloads: 1 when the step's file was written. */
  value: Record<string, number> | number;
}

export interface DataAnswer {
  data: StepEntry[];
}

/** ISO instant -> ClimateSERV's MM/DD/YYYY (UTC). */
export function usDate(iso: string): string {
  const d = new Date(iso);
  const pad = (n: number): string => String(n).padStart(2, '0');
  return `${pad(d.getUTCMonth() + 1)}/${pad(d.getUTCDate())}/${d.getUTCFullYear()}`;
}

export function stepEntry(iso: string, value: StepEntry['value']): StepEntry {
  return { date: usDate(iso), workid: randomUUID(), epochTime: String(Math.floor(Date.parse(iso) / 1000)), value };
}

export function sortByDate(entries: StepEntry[]): StepEntry[] {
  return entries.sort((a, b) => Number(a.epochTime) - Number(b.epochTime));
}

export const dataFile = (dir: string, uuid: string): string => path.join(dir, `${uuid}.json`);

/** Written aside and renamed, so a reader never sees half a file. */
export async function writeDataFile(dir: string, uuid: string, answer: DataAnswer): Promise<string> {
  await fs.promises.mkdir(dir, { recursive: true });
  const file = dataFile(dir, uuid);
  const tmp = `${file}.part-${process.pid}`;
  await fs.promises.writeFile(tmp, JSON.stringify(answer));
  await fs.promises.rename(tmp, file);
  return file;
}
