/**
 * What a job needs from the climate compute core (workers/climate): the dataset's files in a date
 * range, and per file either the area statistic of each step or the clipped grid of each step.
 * A port, so the job runner is tested on its own and the core can change behind one adapter
 * (climateCompute.ts).
 */
import type { Dataset } from './datasets';
import type { DownloadGrid } from './downloads';
import type { JobRequest } from './request';

export interface JobFile {
  path: string;
  /** ISO 8601 UTC. */
  date: string;
}

export interface StepStatistic {
  /** ISO 8601 UTC. */
  date: string;
  value: number;
}

export interface ComputeSession {
  /** Statistic per time step of one file (operationtype 0-5). Never throws for a bad file: warns. */
  statistics(file: JobFile): Promise<{ steps: StepStatistic[]; warnings: string[] }>;
  /** Clipped grid per time step of one file (downloads). Never throws for a bad file: warns. */
  grids(file: JobFile): Promise<{ grids: DownloadGrid[]; warnings: string[] }>;
}

export interface JobCompute {
  /** Files of the dataset whose date is in begin..end (ISO days, inclusive), in date order. */
  files(dataset: Dataset, begin: string, end: string): Promise<{ files: JobFile[]; warnings: string[] }>;
  /** One session per job: the area mask is computed once per grid and reused for every file. */
  session(dataset: Dataset, request: JobRequest): ComputeSession;
}
