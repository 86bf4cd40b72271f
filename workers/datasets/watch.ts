/**
 * The watch script's core (Bioloop's scripts/watch.py + services/watchlib.py): every new
 * directory under the watched root becomes a dataset and gets its workflow started, once.
 *
 * Once, across restarts and concurrent watchers, with only unique-key inserts as locks:
 *   1. register: insert on the unique (name, type) index — a second insert finds the first;
 *   2. claim the start: insert `<dataset>/<workflow>` into `dataset_workflow_starts` — whoever
 *      inserted it creates the workflow, records it on the claim and the dataset, sends its first
 *      step, and marks the claim started;
 *   3. a claim that never reached `started` (its watcher died) is taken over once it is older
 *      than claimTimeoutMs: of several takers, the one that inserts `<claim>@<claimed_at>`
 *      first. The workflow it recorded, if any, is started rather than a second created.
 * A restart's first scan sees every directory as new, so anything a dead watcher left half done
 * is finished then; every Nth scan is a full scan that does the same while running.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Collection } from 'mongodb';
import { isDuplicateKey, type DatasetStore } from './store';
import type { DatasetDoc } from './types';

/** Creates and starts workflows (sca-rhythm's Workflow(...) and wf.start(dataset_id)). */
export interface WorkflowLauncher {
  /** A new workflow_meta document for the named registry workflow; its id. */
  create(workflowName: string): Promise<string>;
  /** Sends its first step with the dataset id as the argument. */
  start(workflowId: string, datasetId: string): Promise<void>;
}

interface StartClaim {
  _id: string;
  dataset_id: string;
  workflow: string;
  workflow_id: string | null;
  started: boolean;
  claimed_at: Date;
}

export interface WatchOptions {
  root: string;
  type: string;
  workflow: string;
  rejects: string[];
  pollIntervalMs: number;
  fullScanEvery: number;
  /** A claim not started after this long is presumed dead (default 10 minutes). */
  claimTimeoutMs?: number;
  log: { info(m: string): void; warn(m: string): void; error(m: string): void };
}

export interface ScanReport {
  registered: string[];
  started: string[];
}

/** Python's fnmatch.fnmatchcase: `*`, `?`, `[seq]`, `[!seq]`; everything else literal. */
export function fnmatchcase(name: string, pattern: string): boolean {
  let re = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i] as string;
    if (c === '*') re += '[\\s\\S]*';
    else if (c === '?') re += '[\\s\\S]';
    else if (c === '[' && pattern.indexOf(']', i + 2) > 0) {
      const end = pattern.indexOf(']', i + 2);
      let body = pattern.slice(i + 1, end).replace(/\\/g, '\\\\');
      if (body.startsWith('!')) body = `^${body.slice(1)}`;
      re += `[${body}]`;
      i = end;
    } else re += c.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  }
  return new RegExp(`^${re}$`).test(name);
}

export class DatasetWatcher {
  private readonly claims: Collection<StartClaim>;
  private readonly takeovers: Collection<{ _id: string; at: Date }>;
  private known = new Set<string>();
  private scans = 0;

  constructor(private readonly store: DatasetStore, private readonly launcher: WorkflowLauncher, private readonly opts: WatchOptions) {
    this.claims = store.datasets.db.collection<StartClaim>('dataset_workflow_starts');
    this.takeovers = store.datasets.db.collection<{ _id: string; at: Date }>('dataset_workflow_takeovers');
  }

  private isReject(name: string): boolean {
    return this.opts.rejects.some((pat) => fnmatchcase(name, pat));
  }

  /**
   * One poll: directories not seen by this process before (all of them on the first scan, and
   * on every full scan) are registered and their workflows started. A missing root is logged, not
   * fatal: it may be a mount that comes back.
   */
  async scan(full = false): Promise<ScanReport> {
    const report: ScanReport = { registered: [], started: [] };
    const entries = await fs.readdir(this.opts.root, { withFileTypes: true }).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
      this.opts.log.warn(`watch: ${this.opts.root} does not exist; skipping this scan`);
      return null;
    });
    if (entries === null) return report;
    const dirs = entries.filter((e) => e.isDirectory() && !this.isReject(e.name)).map((e) => e.name).sort();
    const candidates = full ? dirs : dirs.filter((d) => !this.known.has(d));
    for (const name of candidates) {
      try {
        const { dataset, created } = await this.store.register({ name, type: this.opts.type, origin_path: path.join(this.opts.root, name) });
        if (created) {
          report.registered.push(dataset._id);
          this.opts.log.info(`watch: registered ${this.opts.type} ${name} as ${dataset._id}`);
        }
        if (await this.ensureWorkflow(dataset)) report.started.push(dataset._id);
        this.known.add(name);
      } catch (err) {
        // Left out of `known`: the next scan tries this one again.
        this.opts.log.error(`watch: ${name}: ${(err as Error).message}`);
      }
    }
    const present = new Set(dirs);
    this.known = new Set([...this.known].filter((d) => present.has(d)));
    return report;
  }

  /** Starts the dataset's workflow unless it was (or is being) started; true when this call started it. */
  private async ensureWorkflow(dataset: DatasetDoc): Promise<boolean> {
    if (dataset.is_deleted) return false;
    const claimId = `${dataset._id}/${this.opts.workflow}`;
    let claim: StartClaim = { _id: claimId, dataset_id: dataset._id, workflow: this.opts.workflow, workflow_id: null, started: false, claimed_at: new Date() };
    try {
      await this.claims.insertOne(claim);
    } catch (err) {
      if (!isDuplicateKey(err)) throw err;
      const taken = await this.takeOver(claimId);
      if (!taken) return false;
      claim = taken;
    }
    let workflowId = claim.workflow_id;
    if (workflowId === null) {
      workflowId = await this.launcher.create(this.opts.workflow);
      await this.claims.updateOne({ _id: claimId }, { $set: { workflow_id: workflowId } });
      await this.store.addWorkflow(dataset._id, { id: workflowId, name: this.opts.workflow });
    }
    await this.launcher.start(workflowId, dataset._id);
    await this.claims.updateOne({ _id: claimId }, { $set: { started: true } });
    this.opts.log.info(`watch: started workflow ${this.opts.workflow} ${workflowId} for ${dataset.name}`);
    return true;
  }

  /**
   * The claim, now ours, if its holder died before starting the workflow; else null. Takers race
   * on inserting `<claim>@<its claimed_at>` (unique): one per stale generation wins. A conditional
   * delete would not do: FerretDB may apply one taker's delete to another's fresh claim.
   */
  private async takeOver(claimId: string): Promise<StartClaim | null> {
    const old = await this.claims.findOne({ _id: claimId });
    const timeout = this.opts.claimTimeoutMs ?? 600_000;
    if (!old || old.started || Date.now() - old.claimed_at.getTime() < timeout) return null;
    try {
      await this.takeovers.insertOne({ _id: `${claimId}@${old.claimed_at.getTime()}`, at: new Date() });
    } catch (err) {
      if (isDuplicateKey(err)) return null;
      throw err;
    }
    const mine: StartClaim = { ...old, claimed_at: new Date() };
    await this.claims.updateOne({ _id: claimId }, { $set: { claimed_at: mine.claimed_at } });
    this.opts.log.warn(`watch: taking over the unfinished start of ${old.workflow} for dataset ${old.dataset_id} (claimed ${old.claimed_at.toISOString()})`);
    return mine;
  }

  /** Polls until the signal aborts; every fullScanEvery-th scan is a full scan. */
  async run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      this.scans += 1;
      const full = this.scans % this.opts.fullScanEvery === 0;
      try {
        await this.scan(full);
      } catch (err) {
        this.opts.log.error(`watch: scan of ${this.opts.root} failed: ${(err as Error).message}`);
      }
      await new Promise<void>((resolve) => {
        const onAbort = (): void => {
          clearTimeout(t);
          resolve();
        };
        // One listener per wait, removed when the wait ends (a long run would pile them up).
        const t = setTimeout(() => {
          signal.removeEventListener('abort', onAbort);
          resolve();
        }, this.opts.pollIntervalMs);
        signal.addEventListener('abort', onAbort, { once: true });
      });
    }
  }
}
