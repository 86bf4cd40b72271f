/**
 * The documents of a dataset, shaped as Bioloop's API returns them to its workers, so a task body
 * reads the same fields whichever side wrote them.
 */

/** Bioloop's dataset states, in the order the integrated workflow reaches them. */
export const DATASET_STATES = ['REGISTERED', 'READY', 'ARCHIVED', 'FETCHED', 'STAGED', 'DELETED'] as const;
export type DatasetState = (typeof DATASET_STATES)[number];

export interface StateEntry {
  state: DatasetState;
  timestamp: Date;
  metadata: Record<string, unknown> | null;
}

export interface Bundle {
  name: string;
  size: number;
  md5: string;
}

export interface DatasetMetadata {
  stage_alias?: string;
  num_genome_files?: number;
  [key: string]: unknown;
}

/** One workflow started for a dataset (Bioloop's dataset <-> workflow association). */
export interface DatasetWorkflowRef {
  id: string;
  name: string;
  created_at: Date;
}

export interface DatasetDoc {
  /** A UUID string: Bioloop's integer ids need a counter, which FerretDB cannot increment atomically. */
  _id: string;
  name: string;
  type: string;
  create_method: string;
  origin_path: string;
  archive_path: string | null;
  staged_path: string | null;
  du_size: number | null;
  size: number | null;
  num_files: number | null;
  num_directories: number | null;
  bundle: Bundle | null;
  metadata: DatasetMetadata;
  is_staged: boolean;
  is_deleted: boolean;
  /** Append-only: entries are pushed, never rewritten. */
  states: StateEntry[];
  workflows: DatasetWorkflowRef[];
  /** The ids of `workflows`, flat, so one index answers "which datasets reference these workflows". */
  workflow_ids: string[];
  created_at: Date;
  updated_at: Date;
}

export type FileType = 'file' | 'directory' | 'symbolic link' | 'other';

export interface DatasetFileDoc {
  /** `<dataset_id>/<path>`: re-inspection replaces, never duplicates. */
  _id: string;
  dataset_id: string;
  path: string;
  /** null for symbolic links, as Bioloop records them. */
  md5: string | null;
  size: number;
  type: FileType;
}

/** What inspection writes onto the dataset. */
export interface InspectionSummary {
  du_size: number;
  size: number;
  num_files: number;
  num_directories: number;
  num_genome_files: number;
}

/** Fields a task may set on a dataset (everything else has its own method). */
export type DatasetUpdate = Partial<Pick<DatasetDoc, 'archive_path' | 'staged_path' | 'bundle' | 'is_staged' | 'du_size' | 'size' | 'num_files' | 'num_directories'>>;
