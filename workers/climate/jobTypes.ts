/**
 * The JSON inputs and outputs of the climate tasks (workers/tasks/climate.ts), for whoever
 * enqueues them (the job API) and whoever reads their results. Every field is plain JSON.
 */
import type { AreaGeometry, AreaValues, ClimateWarning, DatedFile, StatOperation } from './types';

/**
 * One request for area statistics over a dataset's folder (what the job API turns a ClimateSERV
 * `submitDataRequest` into, after validating it).
 */
export interface AreaRequest {
  /** Folder holding the dataset's files (not recursive). */
  folder: string;
  /** Name of the data variable in the files, e.g. 'precipitation'. */
  variable: string;
  /**
   * File-name date pattern (see dates.ts): a glob whose date tokens %Y %m %d %H %M %S %j say where
   * the date is. Default DEFAULT_DATE_PATTERN, ClimateSERV's `*%Y%m%dT%H%M%SZ*.nc4`.
   */
  pattern?: string;
  geometry: AreaGeometry;
  operation: StatOperation;
  /** First and last day, inclusive, as ISO dates 'YYYY-MM-DD' (UTC). */
  begin: string;
  end: string;
  /** Files per chunk task (default 16); chunks never span two years. */
  chunkSize?: number;
}

/** The input of one `climate.area_values` task: some files of one year, in date order. */
export interface AreaChunk {
  files: DatedFile[];
  variable: string;
  geometry: AreaGeometry;
  operation: StatOperation;
  /** Steps outside begin..end (ISO dates, inclusive) are dropped (multi-step files). */
  begin: string;
  end: string;
  /** Warnings to hand on unchanged in this chunk's result (the plan's, on the first chunk). */
  notes?: ClimateWarning[];
}

/** What `planAreaRequest` returns: the chunks to run, in date order, and how many files. */
export interface AreaPlan {
  chunks: AreaChunk[];
  fileCount: number;
  /** Years spanned, in order (one chord header entry per chunk, chunks grouped by year). */
  years: number[];
  /** File names that match the pattern but encode no valid date. */
  warnings: ClimateWarning[];
}

/** Result of `climate.area_values` and of the merge (`climate.merge_area_values`). */
export type AreaChunkResult = AreaValues;
