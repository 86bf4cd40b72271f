/**
 * The dataset registry: ClimateSERV's integer `datatype` -> where its files are and what to read.
 * Comes from config `climate.datasets` (or JSON in CELERIAC_CLIMATE_DATASETS); each entry is
 * checked here so a typo names its key instead of failing a job later.
 */
import type { ClimateDatasetConfig } from '../../config/types';

export interface Dataset extends ClimateDatasetConfig {
  datatype: number;
}

export class DatasetConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DatasetConfigError';
  }
}

const nonEmpty = (v: unknown): v is string => typeof v === 'string' && v.trim() !== '';

/** Validates every entry; throws DatasetConfigError naming `climate.datasets.<id>.<field>`. */
export function datasetRegistry(raw: Readonly<Record<string, unknown>>): ReadonlyMap<number, Dataset> {
  const out = new Map<number, Dataset>();
  for (const [key, value] of Object.entries(raw)) {
    const at = `climate.datasets.${key}`;
    if (!/^\d+$/.test(key)) throw new DatasetConfigError(`${at}: the key must be a ClimateSERV datatype (a whole number)`);
    if (typeof value !== 'object' || value === null) throw new DatasetConfigError(`${at}: must be {name, folder, variable, pattern?}`);
    const v = value as Record<string, unknown>;
    for (const field of ['name', 'folder', 'variable'] as const) {
      if (!nonEmpty(v[field])) throw new DatasetConfigError(`${at}.${field}: must be a non-empty string`);
    }
    if (v.pattern !== undefined && !nonEmpty(v.pattern)) throw new DatasetConfigError(`${at}.pattern: must be a non-empty string when given`);
    out.set(Number(key), {
      datatype: Number(key),
      name: v.name as string,
      folder: v.folder as string,
      variable: v.variable as string,
      ...(v.pattern !== undefined ? { pattern: v.pattern as string } : {}),
    });
  }
  return out;
}
