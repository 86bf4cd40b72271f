/** What every Bioloop step body gets: the store, the settings, and its task's progress and signal. */
import type { DatasetsConfig } from '../../config';
import type { AppLogger } from '../index';
import type { DatasetStore } from '../datasets/store';
import { StepProgress, type ProgressSink } from '../datasets/progress';

export interface BioloopDeps {
  store: DatasetStore;
  /** Paths already absolute (resolvePaths). */
  settings: DatasetsConfig;
  log: Pick<AppLogger, 'info' | 'warn'>;
}

export interface StepCall {
  deps: BioloopDeps;
  datasetId: string;
  /** Python-side kwargs beyond dataset_id (workflow_id, step, app_id, and a step's own options). */
  kwargs: Record<string, unknown>;
  signal: AbortSignal;
  progress(name: string, total: number | null, units?: string): StepProgress;
  /** A STARTED meta written as is (await_stability's {name, time_remaining_sec}). */
  reportState(meta: Record<string, unknown>): void;
}

export function progressFactory(sink: ProgressSink): StepCall['progress'] {
  return (name, total, units = 'bytes') => new StepProgress(sink, name, total, units);
}

/** Sleeps, ending early (with the abort reason) on revoke or a time limit. */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason as Error);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal.reason as Error);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/** A number from kwargs, or the fallback (Bioloop lets a workflow step override its settings). */
export function numberKwarg(kwargs: Record<string, unknown>, key: string, fallback: number): number {
  const v = kwargs[key];
  return typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : fallback;
}
