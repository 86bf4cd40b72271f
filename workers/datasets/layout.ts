/**
 * Where a dataset's bytes live at each step, as Bioloop's workers/dataset.py lays them out, on
 * local directories: the archive directory stands in for tape (Bioloop's SDA).
 */
import { createHash } from 'node:crypto';
import path from 'node:path';
import type { DatasetsConfig } from '../../config';
import type { DatasetDoc } from './types';

export type DatasetPaths = Pick<DatasetsConfig, 'watch_root' | 'archive_dir' | 'bundle_dir' | 'staging_dir' | 'download_dir' | 'stage_alias_salt'>;

/** The configured directories made absolute (relative ones are taken from the working directory). */
export function resolvePaths<T extends DatasetPaths>(cfg: T, base = process.cwd()): T {
  const abs = (p: string): string => path.resolve(base, p);
  return { ...cfg, watch_root: abs(cfg.watch_root), archive_dir: abs(cfg.archive_dir), bundle_dir: abs(cfg.bundle_dir), staging_dir: abs(cfg.staging_dir), download_dir: abs(cfg.download_dir) };
}

type Named = Pick<DatasetDoc, '_id' | 'name' | 'type'>;

/** Bioloop's stage alias: the first 32 hex digits of sha256(id + name + salt), stable per dataset. */
export function stageAlias(dataset: Named, salt: string): string {
  return createHash('sha256').update(`${dataset._id}${dataset.name}${salt}`, 'utf8').digest('hex').slice(0, 32);
}

export function archiveBundleName(dataset: Named): string {
  return `${dataset.name}.tar`;
}

/** The staged copy's name carries the type: `<name>.<type>.tar`. */
export function stagedBundleName(dataset: Named): string {
  return `${dataset.name}.${dataset.type}.tar`;
}

export function generatedBundlePath(p: DatasetPaths, dataset: Named): string {
  return path.join(p.bundle_dir, 'generate', archiveBundleName(dataset));
}

export function archivePath(p: DatasetPaths, dataset: Named): string {
  return path.join(p.archive_dir, dataset.type, archiveBundleName(dataset));
}

export function stagedBundlePath(p: DatasetPaths, dataset: Named): string {
  return path.join(p.bundle_dir, 'stage', stagedBundleName(dataset));
}

export function stagingPath(p: DatasetPaths, dataset: Named & Pick<DatasetDoc, 'metadata'>): { dir: string; alias: string } {
  const alias = dataset.metadata.stage_alias ?? stageAlias(dataset, p.stage_alias_salt);
  return { dir: path.join(p.staging_dir, alias, dataset.name), alias };
}

export function downloadLinks(p: DatasetPaths, dataset: Named, alias: string): { dataset: string; bundle: string } {
  return { dataset: path.join(p.download_dir, alias), bundle: path.join(p.download_dir, stagedBundleName(dataset)) };
}
