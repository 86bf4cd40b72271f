/**
 * The regrid/curation pipeline (cBottle's ERA5 preparation over Celery on Redis): an index of
 * NetCDF files (index.csv), idempotent enqueueing, `climate.regrid` (a cdo-like command per file)
 * and `climate.curate` (one regridded file's time slices into one zarr v3 store).
 * Commands in scripts/curation.ts, tasks in workers/tasks/curation.ts.
 */
export { curationSettings, timeIndex, type CurationSettings, type StoreVariable } from './settings';
export { readIndex, writeIndex, parseIndex, formatIndex, updateIndex, rowFromName, rowFromFile, type IndexRow, type IndexUpdate } from './indexCsv';
export { initStore, openVariable, timeRangeWritten, arrayShape, loadZarrita, type InitResult } from './store';
export { curateFile, chunkRuns, type CurateResult, type CuratedVariable } from './curate';
export { regridFile, regriddedPath, type RegridResult } from './regrid';
export { selectRows, planRegrid, planCurate, type Plan, type Selection } from './plan';

export const REGRID_TASK = 'climate.regrid';
export const CURATE_TASK = 'climate.curate';
