/**
 * Walking a dataset's directory tree without following symbolic links (as Python's rglob), and
 * md5 of a file streamed in chunks: no file is ever held in memory whole.
 */
import { createHash } from 'node:crypto';
import { constants as fsc } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { FileType } from './types';

export interface TreeEntry {
  /** Relative to the root, '/'-separated. */
  path: string;
  abs: string;
  /** lstat: a link's own size and times. */
  lstat: import('node:fs').Stats;
  type: FileType;
  /** What a link points at, or the entry itself; null for a dangling link. */
  target: 'file' | 'directory' | 'other' | null;
  readable: boolean;
}

async function canRead(abs: string, dir: boolean): Promise<boolean> {
  try {
    await fs.access(abs, dir ? fsc.R_OK | fsc.X_OK : fsc.R_OK);
    return true;
  } catch {
    return false;
  }
}

function kind(st: import('node:fs').Stats): 'file' | 'directory' | 'other' {
  return st.isFile() ? 'file' : st.isDirectory() ? 'directory' : 'other';
}

/** Every entry under root (root excluded), depth first, names in sorted order. */
export async function* walkTree(root: string): AsyncGenerator<TreeEntry> {
  const names = (await fs.readdir(root)).sort();
  for (const name of names) {
    const abs = path.join(root, name);
    yield* walkFrom(abs, name);
  }
}

async function* walkFrom(abs: string, rel: string): AsyncGenerator<TreeEntry> {
  // An entry removed between readdir and lstat (a tree still being written) is simply not there.
  const lstat = await fs.lstat(abs).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return null;
    throw err;
  });
  if (lstat === null) return;
  const isLink = lstat.isSymbolicLink();
  const target = isLink ? await fs.stat(abs).then(kind, () => null) : kind(lstat);
  const type: FileType = isLink ? 'symbolic link' : (target ?? 'other');
  const readable = target !== null && (await canRead(abs, target === 'directory'));
  yield { path: rel, abs, lstat, type, target, readable };
  if (!isLink && target === 'directory' && readable) {
    const names = await fs.readdir(abs).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return [];
      throw err;
    });
    for (const name of names.sort()) yield* walkFrom(path.join(abs, name), `${rel}/${name}`);
  }
}

const MD5_CHUNK = 1 << 20;

/**
 * md5 hex digest of a file, read in 1 MiB chunks; onChunk(bytes) after each one. Two buffers,
 * reused: the next chunk is read (on libuv's thread pool) while this one is hashed, so reading and
 * hashing overlap, and no buffer is allocated per chunk (a read stream allocates one each time).
 */
export async function md5File(abs: string, onChunk?: (bytes: number) => void, signal?: AbortSignal): Promise<string> {
  signal?.throwIfAborted();
  const hash = createHash('md5');
  const file = await fs.open(abs, 'r');
  const buffers = [Buffer.allocUnsafe(MD5_CHUNK), Buffer.allocUnsafe(MD5_CHUNK)] as const;
  let current = 0;
  let reading = file.read(buffers[current], 0, MD5_CHUNK, null);
  try {
    for (;;) {
      const { bytesRead } = await reading;
      if (bytesRead === 0) break;
      signal?.throwIfAborted();
      const chunk = buffers[current].subarray(0, bytesRead);
      current ^= 1;
      reading = file.read(buffers[current], 0, MD5_CHUNK, null);
      hash.update(chunk);
      onChunk?.(bytesRead);
    }
  } finally {
    // A read still in flight when hashing stopped (abort, a throwing onChunk) settles before close.
    await reading.catch(() => undefined);
    await file.close();
  }
  return hash.digest('hex');
}

/**
 * The latest change in a tree: max(mtime, ctime) over the root and everything under it. ctime too
 * because a copy that preserves mtimes (cp -p, rsync -t) still moves ctime.
 */
export async function lastModifiedMs(root: string): Promise<number> {
  const st = await fs.lstat(root);
  let latest = Math.max(st.mtimeMs, st.ctimeMs);
  for await (const e of walkTree(root)) {
    latest = Math.max(latest, e.lstat.mtimeMs, e.lstat.ctimeMs);
  }
  return latest;
}

/** An entry's share of Bioloop's du_size, which is `du -sb`: apparent sizes, directories included. */
export function duBytes(st: import('node:fs').Stats): number {
  return st.size;
}

export async function exists(p: string): Promise<boolean> {
  return fs.lstat(p).then(() => true, () => false);
}
