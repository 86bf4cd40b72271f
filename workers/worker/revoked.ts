/**
 * Celery's worker_state.revoked: the ids of revoked tasks, bounded (REVOKES_MAX) and forgotten after
 * REVOKE_EXPIRES, so a revoke reaches messages that arrive later. With `--statedb` the set survives
 * restarts, as Celery's Persistent state does (ours is a JSON file, not a Python shelve).
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

const REVOKES_MAX = 50_000;
const REVOKE_EXPIRES_MS = 10_800 * 1000;

interface StateFile {
  version: 1;
  /** [task id, revoked at (ms since the epoch)], oldest first. */
  revoked: [string, number][];
}

export class RevokedSet {
  /** id -> when it was revoked; a Map keeps insertion order, so the oldest comes first. */
  private readonly ids = new Map<string, number>();

  constructor(
    /** The --statedb file, or null to keep the set in memory only. */
    private readonly statePath: string | null = null,
    private readonly now: () => number = Date.now,
  ) {
    if (statePath) this.load(statePath);
  }

  has(id: string): boolean {
    const at = this.ids.get(id);
    if (at === undefined) return false;
    if (this.now() - at <= REVOKE_EXPIRES_MS) return true;
    this.ids.delete(id);
    return false;
  }

  add(ids: readonly string[]): void {
    const at = this.now();
    for (const id of ids) {
      this.ids.delete(id); // re-adding moves it to the newest end
      this.ids.set(id, at);
    }
    this.prune();
    this.save();
  }

  get size(): number {
    return this.ids.size;
  }

  list(): string[] {
    this.prune();
    return [...this.ids.keys()];
  }

  private prune(): void {
    const cutoff = this.now() - REVOKE_EXPIRES_MS;
    for (const [id, at] of this.ids) {
      if (this.ids.size <= REVOKES_MAX && at >= cutoff) break;
      this.ids.delete(id);
    }
  }

  private load(path: string): void {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return; // first start
      throw err;
    }
    const data = JSON.parse(text) as Partial<StateFile>;
    if (data.version !== 1 || !Array.isArray(data.revoked)) throw new Error(`${path} is not a Celeriac state file`);
    for (const [id, at] of data.revoked) if (typeof id === 'string' && typeof at === 'number') this.ids.set(id, at);
    this.prune();
  }

  /** Written at once (revokes are rare), through a rename so a crash never leaves half a file. */
  private save(): void {
    if (!this.statePath) return;
    const data: StateFile = { version: 1, revoked: [...this.ids] };
    mkdirSync(dirname(this.statePath), { recursive: true });
    const tmp = `${this.statePath}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify(data));
    renameSync(tmp, this.statePath);
  }
}
