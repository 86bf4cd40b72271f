/**
 * The first half of Bioloop's integrated workflow: await_stability, inspect_dataset,
 * archive_dataset (workers/tasks/{await_stability,inspect,archive}.py), on local storage.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { copyWithProgress, createTar } from '../datasets/bundle';
import { InspectionFailed } from '../datasets/errors';
import { archivePath, generatedBundlePath } from '../datasets/layout';
import { duBytes, exists, lastModifiedMs, md5File, walkTree } from '../datasets/tree';
import type { DatasetFileDoc, InspectionSummary } from '../datasets/types';
import { numberKwarg, sleep, type StepCall } from './bioloopSteps';

/**
 * Waits until nothing in the tree changed for recency_threshold seconds, checking every
 * wait_seconds (both overridable per call, as in Bioloop). Progress: the last change as `name`
 * and the seconds still to wait. A vanished origin ends the wait; inspection then reports it.
 */
export async function awaitStability(call: StepCall): Promise<void> {
  const { store, settings, log } = call.deps;
  const dataset = await store.get(call.datasetId);
  const threshold = numberKwarg(call.kwargs, 'recency_threshold', settings.recency_threshold_seconds);
  const waitSeconds = numberKwarg(call.kwargs, 'wait_seconds', settings.stability_check_interval_seconds);
  while (await exists(dataset.origin_path)) {
    const modified = await lastModifiedMs(dataset.origin_path);
    const delta = (Date.now() - modified) / 1000;
    log.info(`${dataset.name}: last modified ${Math.floor(delta)} s ago (threshold ${threshold} s)`);
    call.reportState({ name: new Date(modified).toISOString(), time_remaining_sec: threshold - delta });
    if (delta > threshold) break;
    await sleep(waitSeconds * 1000, call.signal);
  }
  await store.addState(call.datasetId, 'READY');
}

/**
 * Walks the origin tree: counts, sizes, du, and the md5 of every regular file, streamed
 * (links recorded with md5 null). Unreadable entries fail the inspection with every such path
 * named. Files are written in batches; progress counts bytes hashed.
 */
export async function inspectDataset(call: StepCall): Promise<void> {
  const { store, settings } = call.deps;
  const dataset = await store.get(call.datasetId);
  if (dataset.is_deleted) throw new InspectionFailed(`Dataset ${dataset._id} is already deleted; nothing to inspect.`);
  const source = dataset.origin_path;
  const st = await fs.stat(source).catch(() => null);
  if (!st) throw new InspectionFailed(`origin_path does not exist: ${source}`);
  if (!st.isDirectory()) throw new InspectionFailed(`origin_path is not a directory: ${source}`);

  // First pass: what is there, so progress has a total and unreadable paths fail before hashing.
  const entries = [];
  const problems: string[] = [];
  const summary: InspectionSummary = { du_size: duBytes(await fs.lstat(source)), size: 0, num_files: 0, num_directories: 0, num_genome_files: 0 };
  for await (const e of walkTree(source)) {
    summary.du_size += duBytes(e.lstat);
    if (!e.readable) problems.push(`${e.abs} is not readable/traversable`);
    else if (e.target === 'file') {
      summary.num_files += 1;
      summary.size += e.lstat.size;
      if (e.type === 'file' && isGenomeFile(e.path, settings.genome_file_types)) summary.num_genome_files += 1;
      entries.push(e);
    } else if (e.target === 'directory') summary.num_directories += 1;
  }
  if (problems.length) throw new InspectionFailed(problems.join('; '), problems);

  const report = call.progress('md5', summary.size);
  let hashed = 0;
  const files: Omit<DatasetFileDoc, '_id' | 'dataset_id'>[] = [];
  for (const e of entries) {
    const md5 = e.type === 'symbolic link' ? null : await md5File(e.abs, (n) => report.update((hashed += n)), call.signal);
    if (e.type === 'symbolic link') report.update((hashed += e.lstat.size));
    files.push({ path: e.path, md5, size: e.lstat.size, type: e.type });
  }
  await store.saveInspection(dataset._id, summary);
  await store.replaceFiles(dataset._id, files, settings.file_batch_size);
}

function isGenomeFile(relPath: string, suffixes: string[]): boolean {
  // Bioloop compares ''.join(p.suffixes): everything from the first dot of the base name.
  const base = path.posix.basename(relPath);
  const dot = base.indexOf('.', 1);
  return dot > 0 && suffixes.includes(base.slice(dot));
}

/**
 * Tars the origin tree into the bundle directory, takes its md5, and puts it in the archive
 * directory, unless a file with the same md5 is already there (Bioloop's preflight check before
 * an upload). Progress: bytes of tar written, then bytes copied.
 */
export async function archiveDataset(call: StepCall): Promise<void> {
  const { store, settings, log } = call.deps;
  const dataset = await store.get(call.datasetId);
  const bundlePath = generatedBundlePath(settings, dataset);
  const tarReport = call.progress('tar', dataset.du_size ?? dataset.size);
  await createTar(dataset.origin_path, bundlePath, (n) => tarReport.update(n));
  const size = (await fs.stat(bundlePath)).size;
  const md5 = await md5File(bundlePath, undefined, call.signal);

  const target = archivePath(settings, dataset);
  const archived = await exists(target) ? await md5File(target, undefined, call.signal) : null;
  if (archived === md5) {
    log.warn(`${dataset.name}: ${target} already holds a bundle with md5 ${md5}; not copying`);
  } else {
    const copyReport = call.progress('archive', size);
    await copyWithProgress(bundlePath, target, (n) => copyReport.update(n), call.signal);
  }
  await store.update(dataset._id, { archive_path: target, bundle: { name: path.basename(bundlePath), size, md5 } });
  await store.addState(dataset._id, 'ARCHIVED');
}
