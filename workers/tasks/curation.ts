/**
 * The curation tasks (cBottle's `regrid_file` and `process`), both `acks_late` (a worker killed
 * mid-file leaves the message to be redelivered) and pinned to the processes pool (CPU and
 * wasm memory stay out of the worker's event loop, whatever its -P):
 *
 * - `climate.regrid(file) → { input, output, existed }`: the configured regrid command into
 *   curation.regrid_output, written under a temp name and renamed.
 * - `climate.curate(file) → { file, variables, bytes }`: the regridded file's variables into the
 *   store (curation.zarr) at their time indices.
 *
 * Settings come from the `curation` config section (CELERIAC_CURATION_* in the environment).
 */
import { loadConfig, type Celeriac } from '../index';
import { CURATE_TASK, REGRID_TASK, curateFile, curationSettings, regridFile, type CurationSettings } from '../curation';
import { preloadNetcdfLibraries } from '../climate';

let settings: CurationSettings | undefined;
function current(): CurationSettings {
  settings ??= curationSettings(loadConfig());
  return settings;
}

export function register(app: Celeriac) {
  preloadNetcdfLibraries().catch(() => undefined); // compiled once per pool process, not in the first file's time
  const options = { acks_late: true, pool: 'processes' as const, params: ['file'] };
  return {
    regrid: app.task(REGRID_TASK, (file: string) => regridFile(file, current()), options),
    curate: app.task(CURATE_TASK, (file: string) => curateFile(file, current()), options),
  };
}
