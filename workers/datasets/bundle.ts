/**
 * Tar bundles of a dataset (the `tar` package: no shelling out) and byte-counted copies between
 * the bundle, archive and staging directories. Every file is written under a temporary name and
 * renamed into place, so an interrupted step never leaves a half file under the final name.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as tar from 'tar';

function partialName(dest: string): string {
  return `${dest}.partial-${process.pid}`;
}

/** Copies src to dest (replacing it), calling onBytes(total copied so far) as it goes. */
export async function copyWithProgress(src: string, dest: string, onBytes: (done: number) => void, signal?: AbortSignal): Promise<void> {
  await fs.mkdir(path.dirname(dest), { recursive: true });
  const tmp = partialName(dest);
  let done = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      done += chunk.length;
      onBytes(done);
      cb(null, chunk);
    },
  });
  try {
    await pipeline(createReadStream(src, { highWaterMark: 1 << 20 }), counter, createWriteStream(tmp), { signal });
    await fs.rename(tmp, dest);
  } finally {
    await fs.rm(tmp, { force: true });
  }
}

/**
 * Writes `<tarPath>` holding the directory `sourceDir` under its own name (as
 * `tar -cf tarPath -C parent name`), links stored as links. `portable` leaves out owner names and
 * ids, so the same tree gives the same bytes on any machine. onBytes polls the growing file.
 */
export async function createTar(sourceDir: string, tarPath: string, onBytes: (done: number) => void): Promise<void> {
  await fs.mkdir(path.dirname(tarPath), { recursive: true });
  const tmp = partialName(tarPath);
  const timer = setInterval(() => {
    fs.stat(tmp).then((st) => onBytes(st.size), () => undefined);
  }, 1000);
  try {
    await tar.c({ file: tmp, cwd: path.dirname(sourceDir), portable: true, strict: true }, [path.basename(sourceDir)]);
    await fs.rename(tmp, tarPath);
  } finally {
    clearInterval(timer);
    await fs.rm(tmp, { force: true });
  }
}

/** Thrown for a tar that cannot be read back: its message says what tar found wrong. */
export class BadTar extends Error {}

/**
 * Extracts a bundle into `targetDir` (replacing it): into a temporary directory beside it first,
 * then the bundle's one top-level directory is renamed to targetDir.
 */
export async function extractTar(tarPath: string, targetDir: string): Promise<void> {
  const parent = path.dirname(targetDir);
  await fs.mkdir(parent, { recursive: true });
  const tmp = await fs.mkdtemp(path.join(parent, '.extract-'));
  try {
    const warnings: string[] = [];
    try {
      await tar.x({ file: tarPath, cwd: tmp, strict: true, onwarn: (_code, message) => warnings.push(String(message)) });
    } catch (err) {
      throw new BadTar(`cannot extract ${tarPath}: ${(err as Error).message}`);
    }
    if (warnings.length) throw new BadTar(`cannot extract ${tarPath}: ${warnings.join('; ')}`);
    const top = await fs.readdir(tmp);
    if (top.length !== 1) throw new BadTar(`${tarPath} must hold one top-level directory, found ${top.length} entries`);
    const root = path.join(tmp, top[0] ?? '');
    if (!(await fs.lstat(root)).isDirectory()) throw new BadTar(`${tarPath}: top-level entry ${top[0]} is not a directory`);
    await fs.rm(targetDir, { recursive: true, force: true });
    await fs.rename(root, targetDir);
  } finally {
    // tar may still be finishing writes after it rejected a bad entry: retry the cleanup, and
    // never let it hide the error that matters.
    await fs.rm(tmp, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 }).catch(() => undefined);
  }
}
