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
 * Writes `<tarPath>` holding the tree under `sourceDir` as entries `./...`, as Bioloop's
 * `tar cf <tar> --sparse -C <source> .` lays them out (so Python's stage_dataset extracts a
 * Celeriac bundle and the other way round); links are stored as links. `portable` leaves out
 * owner names and ids, so the same tree gives the same bytes. onBytes polls the growing file.
 */
export async function createTar(sourceDir: string, tarPath: string, onBytes: (done: number) => void): Promise<void> {
  await fs.mkdir(path.dirname(tarPath), { recursive: true });
  const tmp = partialName(tarPath);
  const timer = setInterval(() => {
    fs.stat(tmp).then((st) => onBytes(st.size), () => undefined);
  }, 1000);
  try {
    await tar.c({ file: tmp, cwd: sourceDir, portable: true, strict: true }, ['.']);
    await fs.rename(tmp, tarPath);
  } finally {
    clearInterval(timer);
    await fs.rm(tmp, { force: true });
  }
}

/** Thrown for a tar that cannot be read back: its message says what tar found wrong. */
export class BadTar extends Error {}

/**
 * Extracts a bundle into `targetDir` (replacing it), by way of a temporary directory beside it.
 * A bundle of `./...` entries (Bioloop's layout) is the tree itself; a bundle holding one
 * top-level directory (`name/...`) is that directory's tree. Anything else is a BadTar.
 */
export async function extractTar(tarPath: string, targetDir: string): Promise<void> {
  const parent = path.dirname(targetDir);
  await fs.mkdir(parent, { recursive: true });
  const tmp = await fs.mkdtemp(path.join(parent, '.extract-'));
  try {
    const warnings: string[] = [];
    let dotted = 0;
    let others = 0;
    let rootMode: number | undefined;
    try {
      await tar.x({
        file: tarPath,
        cwd: tmp,
        strict: true,
        onwarn: (_code, message) => warnings.push(String(message)),
        onReadEntry: (e) => {
          if (e.path === './' || e.path === '.') rootMode = e.mode;
          if (e.path === '.' || e.path.startsWith('./')) dotted += 1;
          else others += 1;
        },
      });
    } catch (err) {
      throw new BadTar(`cannot extract ${tarPath}: ${(err as Error).message}`);
    }
    if (warnings.length) throw new BadTar(`cannot extract ${tarPath}: ${warnings.join('; ')}`);
    let root = tmp;
    if (dotted === 0 || others > 0) {
      const top = await fs.readdir(tmp);
      const only = top.length === 1 ? path.join(tmp, top[0] as string) : null;
      if (!only || !(await fs.lstat(only)).isDirectory()) throw new BadTar(`${tarPath} holds neither ./ entries nor one top-level directory (${top.length} entries at the top)`);
      root = only;
    }
    await fs.rm(targetDir, { recursive: true, force: true });
    await fs.rename(root, targetDir);
    // The temporary directory was created 0700; the tree's root gets the mode the bundle recorded.
    if (root === tmp) await fs.chmod(targetDir, (rootMode ?? 0o755) & 0o7777);
  } finally {
    // tar may still be finishing writes after it rejected a bad entry: retry the cleanup, and
    // never let it hide the error that matters.
    await fs.rm(tmp, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 }).catch(() => undefined);
  }
}
