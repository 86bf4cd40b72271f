/**
 * Climate compute core: read NetCDF grids (NetCDF4 via h5wasm, classic via netcdfjs), cut the
 * lat/lon window of a request, mask the cells whose centre is in a GeoJSON area, and compute
 * ClimateSERV's statistics per time step. The job API (workers/jobs) and the download writers
 * call these; the tasks in workers/tasks/climate.ts run them on the pool.
 *
 * Typical use (one file):
 *   const masks = new MaskCache(geometry);
 *   const { values, warnings } = await fileAreaValues({ path, date }, 'precipitation', masks, 5);
 *
 * Nothing here throws for a bad data file: a file that cannot be read, lacks the variable or
 * has no lat/lon grid becomes a ClimateWarning and contributes no value.
 */
export * from './types';
export * from './jobTypes';
export { openNetcdf, NetcdfReadError, preloadNetcdfLibraries } from './netcdf/open';
export { variableEncoding, decodeValues } from './netcdf/encoding';
export { geometryBBox, gridWindow, gridKeyOf, readWindow, findLatLon, type LatLonNames } from './grid';
export { cellMask, MaskCache, sharedMaskCache } from './mask';
export { STAT_KEYS, statKey, isStatOperation, areaStatistic, type AreaStatistic } from './stats';
export { DEFAULT_DATE_PATTERN, compileDatePattern, dateFromFileName, listDatedFiles, type DatePattern } from './dates';
export { fileAreaValues, fileAreaGrids, mergeAreaValues, type AreaGrid, type StepRange } from './values';
export { planAreaRequest, areaValuesChord, AREA_VALUES_TASK, MERGE_AREA_VALUES_TASK, AREA_REQUEST_TASK } from './plan';
export { normaliseLon } from './grid';
export { stepDates, decodeTimes } from './timeAxis';
export { inDays, dayStart } from './dates';
export { checkAreaRequest, checkAreaChunk, checkGeometry } from './validate';
