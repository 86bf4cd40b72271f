/**
 * Split a request into chunk tasks and join them with a chord: files are grouped per year, each
 * year cut into chunks of `chunkSize` files, so one big request spreads over every pool slot and
 * the merge puts the values back in date order.
 */
import { randomUUID } from 'node:crypto';
import { chord, signature, type Chord, type Signature } from '../index';
import { compileDatePattern, listDatedFiles } from './dates';
import type { AreaChunk, AreaPlan, AreaRequest } from './jobTypes';
import type { DatedFile } from './types';

/** Task names (registered by workers/tasks/climate.ts). */
export const AREA_VALUES_TASK = 'climate.area_values';
export const MERGE_AREA_VALUES_TASK = 'climate.merge_area_values';
export const AREA_REQUEST_TASK = 'climate.area_request';

const DEFAULT_CHUNK_SIZE = 16;

/** List the request's files and cut them into per-year chunks (dates in order). */
export async function planAreaRequest(request: AreaRequest): Promise<AreaPlan> {
  const chunkSize = Math.max(1, Math.floor(request.chunkSize ?? DEFAULT_CHUNK_SIZE));
  const { files, warnings } = await listDatedFiles(request.folder, compileDatePattern(request.pattern), request.begin, request.end);
  const byYear = new Map<number, DatedFile[]>();
  for (const file of files) {
    const year = Number(file.date.slice(0, 4));
    byYear.set(year, [...(byYear.get(year) ?? []), file]);
  }
  const chunks: AreaChunk[] = [];
  for (const yearFiles of byYear.values()) {
    for (let i = 0; i < yearFiles.length; i += chunkSize) {
      chunks.push({ files: yearFiles.slice(i, i + chunkSize), variable: request.variable, geometry: request.geometry, operation: request.operation, begin: request.begin, end: request.end });
    }
  }
  if (chunks.length > 0 && warnings.length > 0) chunks[0].notes = warnings;
  return { chunks, fileCount: files.length, years: [...byYear.keys()], warnings };
}

/**
 * The chord that runs a plan: one `climate.area_values` per chunk (with known task ids, so the
 * caller can count finished chunks for progress), then `body` with the list of their results
 * (default `climate.merge_area_values`, which returns one AreaValues in date order). A plan with
 * no chunks has nothing to run: do not enqueue it (the answer is empty values).
 */
export function areaValuesChord(plan: AreaPlan, body?: Signature, options: { queue?: string; priority?: number } = {}): { canvas: Chord<unknown>; chunkIds: string[] } {
  if (plan.chunks.length === 0) throw new Error('the plan has no files to read: nothing to enqueue');
  const routing = Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined));
  const chunkIds = plan.chunks.map(() => randomUUID());
  const header = plan.chunks.map((chunk, i) => signature(AREA_VALUES_TASK, [chunk], {}, { ...routing, task_id: chunkIds[i] }));
  return { canvas: chord(header, body ?? signature(MERGE_AREA_VALUES_TASK, [], {}, routing)), chunkIds };
}
