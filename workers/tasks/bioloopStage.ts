/**
 * The second half of Bioloop's workflows: stage_dataset, validate_dataset, setup_dataset_download
 * and delete_dataset (workers/tasks/{stage,validate,download,delete}.py), on local storage.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { BadTar, copyWithProgress, extractTar } from '../datasets/bundle';
import { ValidationFailed } from '../datasets/errors';
import { downloadLinks, stagedBundlePath, stagingPath } from '../datasets/layout';
import { exists, md5File } from '../datasets/tree';
import type { StepCall } from './bioloopSteps';

/**
 * Fetches the archived bundle into the bundle stage directory, checks its md5 against the one
 * recorded at archive time, and extracts it to `<staging>/<alias>/<name>`. A mismatch or an
 * unreadable tar is a ValidationFailed: fetching again cannot fix the archive.
 */
export async function stageDataset(call: StepCall): Promise<void> {
  const { store, settings, log } = call.deps;
  const dataset = await store.get(call.datasetId);
  if (!dataset.archive_path || !dataset.bundle) throw new ValidationFailed(`dataset ${dataset._id} (${dataset.name}) has no archived bundle: run archive_dataset first`);
  if (!(await exists(dataset.archive_path))) throw new ValidationFailed(`archived bundle ${dataset.archive_path} does not exist`);
  const { dir, alias } = stagingPath(settings, dataset);
  const local = stagedBundlePath(settings, dataset);

  const fetchReport = call.progress('fetch', dataset.bundle.size);
  await copyWithProgress(dataset.archive_path, local, (n) => fetchReport.update(n), call.signal);
  const md5 = await md5File(local, undefined, call.signal);
  if (md5 !== dataset.bundle.md5) {
    throw new ValidationFailed(`Expected checksum of downloaded file to be ${dataset.bundle.md5}, but evaluated checksum was ${md5}`);
  }
  log.info(`${dataset.name}: extracting ${local} to ${dir}`);
  try {
    await extractTar(local, dir);
  } catch (err) {
    if (err instanceof BadTar) throw new ValidationFailed(err.message);
    throw err;
  }
  await store.update(dataset._id, { staged_path: dir }, { stage_alias: alias });
  await store.addState(dataset._id, 'FETCHED');
}

/** Every recorded file is present in the staged tree with its md5 (links: present). Progress in bytes. */
export async function validateDataset(call: StepCall): Promise<void> {
  const { store } = call.deps;
  const dataset = await store.get(call.datasetId);
  if (!dataset.staged_path) throw new ValidationFailed(`dataset ${dataset._id} (${dataset.name}) is not staged: run stage_dataset first`);
  const report = call.progress('validate', dataset.size);
  const problems: [string, string][] = [];
  let checked = 0;
  for await (const file of store.listFiles(dataset._id)) {
    const abs = path.join(dataset.staged_path, file.path);
    const st = await fs.lstat(abs).catch(() => null);
    if (!st) problems.push([abs, 'file does not exist']);
    else if (!st.isSymbolicLink() && (await md5File(abs, undefined, call.signal)) !== file.md5) problems.push([abs, 'checksum mismatch']);
    report.update((checked += file.size));
  }
  if (problems.length) {
    const shown = problems.slice(0, 5).map(([p, why]) => `${p}: ${why}`).join('; ');
    throw new ValidationFailed(`${problems.length} validation errors in ${dataset.staged_path}: ${shown}${problems.length > 5 ? '; ...' : ''}`, problems);
  }
  await store.update(dataset._id, { is_staged: true });
  await store.addState(dataset._id, 'STAGED');
}

/**
 * Links `<download>/<alias>` to the staged tree and `<download>/<name>.<type>.tar` to the staged
 * bundle, then lets others read them: o+r on everything, o+x on directories and on the chain of
 * parents up to the staging root.
 */
export async function setupDatasetDownload(call: StepCall): Promise<void> {
  const { store, settings } = call.deps;
  const dataset = await store.get(call.datasetId);
  const staged = dataset.staged_path;
  if (!staged || !(await exists(staged))) throw new ValidationFailed(`Staged path does not exist ${staged}`);
  const alias = dataset.metadata.stage_alias ?? stagingPath(settings, dataset).alias;
  const links = downloadLinks(settings, dataset, alias);
  const bundle = stagedBundlePath(settings, dataset);
  await fs.mkdir(settings.download_dir, { recursive: true });
  await replaceWithLink(links.dataset, staged);
  await replaceWithLink(links.bundle, bundle);
  await grantReadToOthers(staged);
  await grantReadToOthers(bundle);
  for (let p = path.dirname(staged); p.startsWith(settings.staging_dir) && p !== path.dirname(settings.staging_dir); p = path.dirname(p)) {
    const st = await fs.stat(p);
    await fs.chmod(p, st.mode | 0o001);
  }
}

async function replaceWithLink(linkPath: string, target: string): Promise<void> {
  await fs.rm(linkPath, { recursive: true, force: true });
  await fs.symlink(target, linkPath);
}

async function grantReadToOthers(root: string): Promise<void> {
  const st = await fs.lstat(root).catch(() => null);
  if (!st || st.isSymbolicLink()) return;
  await fs.chmod(root, st.mode | (st.isDirectory() ? 0o005 : 0o004));
  if (st.isDirectory()) for (const name of await fs.readdir(root)) await grantReadToOthers(path.join(root, name));
}

/** Removes the archived bundle, then flags the dataset deleted and renames it `name-id` (DELETED). */
export async function deleteDataset(call: StepCall): Promise<void> {
  const { store } = call.deps;
  const dataset = await store.get(call.datasetId);
  if (dataset.archive_path) await fs.rm(dataset.archive_path, { force: true });
  await store.markDeleted(dataset);
}
