/**
 * Claim bookkeeping for the filesystem transport. kombu's consumer moves a message to a temp dir
 * and deletes it before the task runs, so a crash loses it. Celeriac instead renames the message
 * into `<data_folder_in>/.celeriac/claims/<pid>@<host>@<id>/` (rename is atomic and only one
 * renamer wins, so it is also the arbiter between consumers) and removes it on ack. Claims of a
 * dead owner are renamed back into the queue by whichever live consumer notices first.
 */
import { randomUUID } from 'node:crypto';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { parseClaimFolderName } from './filesystemLayout';

export function errCode(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | null)?.code;
}

/** Signal 0 probes without delivering; EPERM means it exists but belongs to another user. */
export function pidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return errCode(err) === 'EPERM';
  }
}

/** Atomic write inside `dir` (same filesystem as `target`), then rename over `target`. */
export async function replaceFile(target: string, data: string): Promise<void> {
  const tmp = path.join(path.dirname(target), `.tmp-${randomUUID()}`);
  try {
    await fsp.writeFile(tmp, data);
    await fsp.rename(tmp, target);
  } catch (err) {
    await fsp.unlink(tmp).catch(() => undefined);
    throw err;
  }
}

/**
 * Set the envelope's top-level "redelivered": true, as kombu's Channel._restore does, before a
 * claimed message goes back. Unparseable content is left untouched (it is moved back as is and
 * the consumer that claims it next decides what to do with it).
 */
export async function markRedelivered(file: string): Promise<void> {
  let doc: unknown;
  try {
    doc = JSON.parse(await fsp.readFile(file, 'utf8'));
  } catch (err) {
    if (errCode(err) === 'ENOENT') throw err;
    return;
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) return;
  const record = doc as Record<string, unknown>;
  if (record.redelivered === true) return;
  record.redelivered = true;
  await replaceFile(file, JSON.stringify(record));
}

/** rename, falling back to copy+unlink when the target is on another filesystem. */
export async function moveFile(src: string, dst: string): Promise<void> {
  try {
    await fsp.rename(src, dst);
  } catch (err) {
    if (errCode(err) !== 'EXDEV') throw err;
    await fsp.copyFile(src, dst);
    await fsp.unlink(src);
  }
}

export interface RecoveryContext {
  claimsRoot: string;
  /** This consumer's own claim folder: recovered files pass through it so rename arbitrates. */
  ownDir: string;
  inbox: string;
  host: string;
  visibilityMs: number;
}

/** Is the owner of this claim folder gone: dead pid on this host, or no heartbeat for too long. */
async function isOrphan(ctx: RecoveryContext, name: string, now: number): Promise<boolean> {
  const owner = parseClaimFolderName(name);
  if (owner && owner.host === ctx.host && owner.pid !== process.pid && !pidAlive(owner.pid)) return true;
  // Live owners touch their folder on every maintenance tick (heartbeat), so a stale mtime means
  // a dead owner on another host, a recycled pid, or a hung process.
  const st = await fsp.stat(path.join(ctx.claimsRoot, name)).catch(() => null);
  return st !== null && st.isDirectory() && now - st.mtimeMs > ctx.visibilityMs;
}

/**
 * Put every message of orphaned claim folders back into the queue under its original file name,
 * so it keeps its FIFO position. Returns how many messages were restored.
 */
export async function recoverOrphanClaims(ctx: RecoveryContext, ownName: string): Promise<number> {
  let owners: string[];
  try {
    owners = await fsp.readdir(ctx.claimsRoot);
  } catch (err) {
    if (errCode(err) === 'ENOENT') return 0;
    throw err;
  }
  const now = Date.now();
  let restored = 0;
  for (const name of owners) {
    if (name === ownName || !(await isOrphan(ctx, name, now))) continue;
    const dir = path.join(ctx.claimsRoot, name);
    const files = await fsp.readdir(dir).catch(() => [] as string[]);
    for (const file of files) {
      const src = path.join(dir, file);
      if (file.startsWith('.')) {
        // A rewrite temp: the original it was copied from is still in the folder.
        await fsp.unlink(src).catch(() => undefined);
        continue;
      }
      const mine = path.join(ctx.ownDir, file);
      try {
        await fsp.rename(src, mine);
      } catch (err) {
        if (errCode(err) === 'ENOENT') continue; // another consumer recovered it first
        throw err;
      }
      await markRedelivered(mine);
      await fsp.rename(mine, path.join(ctx.inbox, file));
      restored += 1;
    }
    await fsp.rmdir(dir).catch(() => undefined);
  }
  return restored;
}
