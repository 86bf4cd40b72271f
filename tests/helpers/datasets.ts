/**
 * Dataset fixtures: settings over temp dirs, a small tree with the kinds of entries Bioloop meets
 * (nested dirs, a multi-MiB file, a genome file, a symlink), md5 of files, and a way to call a
 * registered Bioloop task in-process with a recording `this`.
 *
 *   datasetSettings(root): DatasetsConfig     every directory under `root`, thresholds for tests
 *   makeTree(dir): Promise<void>             writes the sample tree
 *   md5Of(path): string
 *   runTask(app, name, datasetId, kwargs): Promise<{ value?: unknown, error?: unknown, states }>
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { DatasetsConfig } from '../../config';
import type { Celeriac, TaskContext } from '../../workers';

export function datasetSettings(root: string, over: Partial<DatasetsConfig> = {}): DatasetsConfig {
  const dir = (name: string): string => {
    const p = path.join(root, name);
    fs.mkdirSync(p, { recursive: true });
    return p;
  };
  return {
    type: 'RAW_DATA',
    watch_root: dir('incoming'),
    archive_dir: dir('archive'),
    bundle_dir: dir('bundles'),
    staging_dir: dir('staging'),
    download_dir: dir('download'),
    rejects: ['.snapshots'],
    recency_threshold_seconds: 0,
    stability_check_interval_seconds: 0.1,
    poll_interval_seconds: 0.2,
    full_scan_every_n_scans: 3,
    file_batch_size: 2,
    stage_alias_salt: 'salt',
    genome_file_types: ['.fastq.gz', '.bam'],
    workflow: 'integrated',
    retry_delay_seconds: 0.2,
    purge: { workflow_types: ['integrated', 'stage', 'delete'], age_threshold_seconds: 3600, max_purge_count: 10 },
    ...over,
  };
}

/** 5 files (one 3 MiB, one genome file, one empty), 2 dirs, 1 symlink to a file. */
export function makeTree(dir: string): void {
  fs.mkdirSync(path.join(dir, 'lane1', 'reads'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'README'), 'sample run\n');
  fs.writeFileSync(path.join(dir, 'empty.txt'), '');
  const big = Buffer.alloc(3 * 1024 * 1024 + 17);
  for (let i = 0; i < big.length; i++) big[i] = (i * 31 + 7) & 0xff;
  fs.writeFileSync(path.join(dir, 'lane1', 'big.bin'), big);
  fs.writeFileSync(path.join(dir, 'lane1', 'reads', 'r1.fastq.gz'), 'ACGT'.repeat(1000));
  fs.symlinkSync('../README', path.join(dir, 'lane1', 'readme-link'));
}

export function md5Of(p: string): string {
  return createHash('md5').update(fs.readFileSync(p)).digest('hex');
}

export interface TaskRun {
  value?: unknown;
  error?: unknown;
  /** Every update_state the task made, in order. */
  states: { state: string; meta: unknown }[];
}

export async function runTask(app: Celeriac, name: string, datasetId: unknown, kwargs: Record<string, unknown> = {}, signal: AbortSignal = new AbortController().signal): Promise<TaskRun> {
  const def = app.tasks.get(name);
  if (!def) throw new Error(`task ${name} is not registered`);
  const states: TaskRun['states'] = [];
  const ctx = {
    id: `test-${name}`,
    name,
    retries: 0,
    args: [datasetId],
    kwargs,
    signal,
    updateState: async (state: string, meta?: unknown) => {
      states.push({ state, meta });
    },
  } as unknown as TaskContext;
  try {
    return { value: await def.fn.call(ctx, datasetId, kwargs), states };
  } catch (error) {
    return { error, states };
  }
}
