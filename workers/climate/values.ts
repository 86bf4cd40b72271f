/** One value per time step of a file over the area; a bad file is a warning, never an error. */
import { readWindow } from './grid';
import type { MaskCache } from './mask';
import { NetcdfReadError, openNetcdf } from './netcdf/open';
import { hdf5Reason } from './netcdf/hdf5';
import { areaStatistic } from './stats';
import { stepDates } from './timeAxis';
import type { AreaValues, CellMask, ClimateWarning, DatedFile, NcReader, StatOperation, StepValue } from './types';
import { MISSING_VALUE } from './types';
import { inDays } from './dates';

/** Keep only steps from begin to end (ISO days, inclusive). */
export interface StepRange {
  begin: string;
  end: string;
}

/** One step's clipped grid for downloads: NaN outside the area and where the data are missing. */
export interface AreaGrid {
  date: string;
  values: Float64Array;
}

function message(error: unknown): string {
  if (error instanceof NetcdfReadError) return error.reason;
  return hdf5Reason(error);
}

interface Step {
  date: string;
  leading: number[];
}

/** Open the file, find its mask and steps, and hand them to `each`; failures become warnings. */
async function withSteps(file: DatedFile, variable: string, masks: MaskCache, range: StepRange | undefined, warnings: ClimateWarning[], each: (reader: NcReader, mask: CellMask, step: Step) => void): Promise<void> {
  let reader: NcReader;
  try {
    reader = await openNetcdf(file.path);
  } catch (error) {
    warnings.push({ file: file.path, date: file.date, message: `skipped: ${message(error)}` });
    return;
  }
  try {
    const mask = masks.forFile(reader, variable);
    const meta = reader.variable(variable);
    const leadingDims = (meta?.dimensions ?? []).slice(0, -2);
    if (leadingDims.length > 1) throw new Error(`'${variable}' has ${leadingDims.length} dimensions before lat/lon; only one (time) is supported`);
    const steps = leadingDims.length ? (meta?.shape[0] ?? 1) : 1;
    const dates = stepDates(reader, leadingDims[0], steps, file.date);
    if (mask.cellCount === 0) warnings.push({ file: file.path, message: 'the area covers no cell centre of this grid' });
    dates.forEach((date, i) => {
      if (range && !inDays(new Date(date), range.begin, range.end)) return;
      each(reader, mask, { date, leading: leadingDims.length ? [i] : [] });
    });
  } catch (error) {
    warnings.push({ file: file.path, date: file.date, message: `skipped: ${message(error)}` });
  } finally {
    reader.close();
  }
}

/**
 * The statistic of every time step of one file over the area (masks holds the geometry and the
 * masks already computed for it). An all-missing step gives −9999 and a warning.
 */
export async function fileAreaValues(file: DatedFile, variable: string, masks: MaskCache, operation: StatOperation, range?: StepRange): Promise<AreaValues> {
  const values: StepValue[] = [];
  const warnings: ClimateWarning[] = [];
  await withSteps(file, variable, masks, range, warnings, (reader, mask, step) => {
    const { value, validCells } = areaStatistic(readWindow(reader, variable, mask.window, step.leading), mask, operation);
    if (value === MISSING_VALUE && validCells === 0 && mask.cellCount > 0) warnings.push({ file: file.path, date: step.date, message: 'no data in the area for this step: value -9999' });
    values.push({ date: step.date, epochTime: Math.floor(Date.parse(step.date) / 1000), value, validCells, file: file.path });
  });
  return { values, warnings };
}

/**
 * The clipped grids of every step of one file (for the download writers), with the mask (its
 * window gives the lats/lons); mask is null when the file could not be read (see warnings).
 */
export async function fileAreaGrids(file: DatedFile, variable: string, masks: MaskCache, range?: StepRange): Promise<{ mask: CellMask | null; grids: AreaGrid[]; warnings: ClimateWarning[] }> {
  const grids: AreaGrid[] = [];
  const warnings: ClimateWarning[] = [];
  let used: CellMask | null = null;
  await withSteps(file, variable, masks, range, warnings, (reader, mask, step) => {
    used = mask;
    const values = readWindow(reader, variable, mask.window, step.leading);
    for (let i = 0; i < values.length; i++) if (mask.inside[i] === 0) values[i] = NaN;
    grids.push({ date: step.date, values });
  });
  return { mask: used, grids, warnings };
}

/** Merge chunk results: values in date order (file path breaks ties), warnings in chunk order. */
export function mergeAreaValues(parts: readonly AreaValues[]): AreaValues {
  const values = parts.flatMap((p) => p.values);
  values.sort((a, b) => a.date.localeCompare(b.date) || a.file.localeCompare(b.file));
  return { values, warnings: parts.flatMap((p) => p.warnings) };
}
