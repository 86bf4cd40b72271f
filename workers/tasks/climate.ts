/**
 * Climate tasks. Inputs and outputs are JSON (types in workers/climate/jobTypes.ts):
 *
 * - `climate.area_request(request: AreaRequest) → AreaValues` — lists the folder, splits the
 *   files per year into chunks, and replaces itself with a chord of `climate.area_values` (one
 *   per chunk, spread over every pool slot of every worker) joined by
 *   `climate.merge_area_values`; its result (under the same task id) is the merged AreaValues in
 *   date order. Before replacing itself it stores state PROGRESS with
 *   `{ chunk_ids, file_count, years, warnings }`, so a caller can count finished chunks.
 * - `climate.area_values(chunk: AreaChunk) → AreaValues` — one value per time step of each file.
 * - `climate.merge_area_values(parts: AreaValues[]) → AreaValues` — the chord body.
 *
 * The work is CPU-bound: run the worker with `-P processes` or `-P threads` so chunks run in
 * parallel. Bad files never fail a task: they come back as warnings. A malformed request or chunk
 * (a field missing or of the wrong kind) fails it with a ValueError naming the field.
 */
import type { Celeriac } from '../index';
import {
  AREA_REQUEST_TASK,
  AREA_VALUES_TASK,
  MERGE_AREA_VALUES_TASK,
  areaValuesChord,
  checkAreaChunk,
  checkAreaRequest,
  fileAreaValues,
  mergeAreaValues,
  planAreaRequest,
  type AreaChunk,
  type AreaRequest,
  type AreaValues,
  preloadNetcdfLibraries,
  sharedMaskCache,
} from '../climate';

/** Values of a chunk's files; the process-wide MaskCache computes each grid's mask once per request. */
export async function areaValuesOfChunk(input: AreaChunk): Promise<AreaValues> {
  const chunk = checkAreaChunk(input);
  const masks = sharedMaskCache(chunk.geometry);
  const parts: AreaValues[] = [{ values: [], warnings: chunk.notes ?? [] }];
  for (const file of chunk.files) parts.push(await fileAreaValues(file, chunk.variable, masks, chunk.operation, { begin: chunk.begin, end: chunk.end }));
  return mergeAreaValues(parts);
}

export function register(app: Celeriac) {
  // Compile h5wasm's wasm now (seconds on a busy machine), in every pool process that loads this
  // module, rather than inside the first request's time. A failure here is reported when a file
  // is opened (as a warning for that file), so it is ignored here.
  preloadNetcdfLibraries().catch(() => undefined);
  return {
    // acks_late: a chunk is a pure read, so a worker killed while it runs loses nothing; the
    // message goes back to the queue and the chord still completes (a climate job still finishes).
    areaValues: app.task(AREA_VALUES_TASK, (chunk: AreaChunk) => areaValuesOfChunk(chunk), { params: ['chunk'], acks_late: true, reject_on_worker_lost: true }),

    mergeAreaValues: app.task(MERGE_AREA_VALUES_TASK, (parts: AreaValues[]) => mergeAreaValues(parts), { params: ['parts'] }),

    areaRequest: app.task(
      AREA_REQUEST_TASK,
      async function (request: AreaRequest): Promise<AreaValues> {
        const plan = await planAreaRequest(checkAreaRequest(request));
        if (plan.chunks.length === 0) return { values: [], warnings: plan.warnings };
        const { canvas, chunkIds } = areaValuesChord(plan);
        await this.updateState('PROGRESS', { chunk_ids: chunkIds, file_count: plan.fileCount, years: plan.years, warnings: plan.warnings });
        throw this.replace(canvas);
      },
      { params: ['request'] },
    ),
  };
}
