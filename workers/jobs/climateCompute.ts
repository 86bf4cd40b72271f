/** The job runner's compute port (compute.ts) over the climate compute core (workers/climate). */
import path from 'node:path';
import {
  MaskCache,
  compileDatePattern,
  fileAreaGrids,
  fileAreaValues,
  listDatedFiles,
  type AreaGeometry,
  type ClimateWarning,
  type StatOperation,
} from '../climate';
import type { ComputeSession, JobCompute } from './compute';
import type { Dataset } from './datasets';
import { isDownload, parseUsDate, type JobRequest } from './request';

/** `CHIRPS_20200301.nc4 (2020-03-01): skipped: ...`: the file's name and day lead the message. */
export function warningText(w: ClimateWarning): string {
  const where = [w.file ? path.basename(w.file) : '', w.date ? `(${w.date.slice(0, 10)})` : ''].filter(Boolean).join(' ');
  return where ? `${where}: ${w.message}` : w.message;
}

export const climateCompute: JobCompute = {
  async files(dataset: Dataset, begin: string, end: string) {
    const { files, warnings } = await listDatedFiles(dataset.folder, compileDatePattern(dataset.pattern), begin, end);
    return { files, warnings: warnings.map(warningText) };
  },

  session(dataset: Dataset, request: JobRequest): ComputeSession {
    // One mask cache per job: the mask is computed once per grid, not once per file.
    const masks = new MaskCache(request.geometry as AreaGeometry);
    const day = (us: string, name: string): string => new Date(parseUsDate(us, name)).toISOString().slice(0, 10);
    const range = { begin: day(request.begintime, 'begintime'), end: day(request.endtime, 'endtime') };
    return {
      async statistics(file) {
        if (isDownload(request.operationtype)) throw new Error('statistics asked of a download job');
        const { values, warnings } = await fileAreaValues(file, dataset.variable, masks, request.operationtype as StatOperation, range);
        return { steps: values.map((v) => ({ date: v.date, value: v.value })), warnings: warnings.map(warningText) };
      },
      async grids(file) {
        const { mask, grids, warnings } = await fileAreaGrids(file, dataset.variable, masks, range);
        const lats = mask?.window.lats ?? [];
        const lons = mask?.window.lons ?? [];
        return { grids: grids.map((g) => ({ date: g.date, lats, lons, values: g.values })), warnings: warnings.map(warningText) };
      },
    };
  },
};
