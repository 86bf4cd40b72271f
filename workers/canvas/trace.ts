/**
 * The worker's side of the canvas (celery/app/trace.py): after a task succeeds, send its
 * callbacks (link) and the next step of its chain, before storing the result so they appear in
 * its `children`; after the result is stored, report to its chord; after a failure, report to the
 * chord, fail the rest of the chain and run the errbacks; after replace(), send the replacement.
 */
import './maps'; // registers every signature kind for fromDict
import type { TaskRequest } from '../protocol/message';
import type { ResultTuple } from '../producer/asyncResult';
import { Group } from './group';
import { isGroup } from './kinds';
import { maybeSignature, type Signature } from './signature';
import { ChordJoin } from './chordJoin';
import { callErrbacks, errbackRequest, failChain } from './errbacks';
import type { CanvasEnv } from './env';
import type { ParentTask } from './types';

function parentOf(request: TaskRequest): ParentTask {
  return { id: request.id, rootId: request.rootId ?? request.id, children: [] };
}

export class WorkerCanvas {
  private readonly chords: ChordJoin;

  constructor(readonly env: CanvasEnv) {
    this.chords = new ChordJoin(env);
  }

  /** True when a finished task has canvas work to do (most tasks have none: skip it all). */
  static involved(request: TaskRequest): boolean {
    const e = request.embed;
    return Boolean(e.callbacks?.length || e.errbacks?.length || e.chain?.length || e.chord);
  }

  /**
   * Send callbacks and the next chain step with the task's return value; returns the `children`
   * to store with the result.
   */
  async dispatch(request: TaskRequest, retval: unknown): Promise<ResultTuple[]> {
    const { callbacks, chain } = request.embed;
    if (!callbacks?.length && !chain?.length) return [];
    const parent = parentOf(request);
    const host = this.env.host(parent);
    const ids = { parent_id: request.id, root_id: parent.rootId };
    if (callbacks?.length === 1) {
      await maybeSignature(callbacks[0]).applyVia(host, [retval], {}, ids);
    } else if (callbacks?.length) {
      // Groups run as groups; plain signatures go out together as one group (Celery, issue 1936).
      const sigs: Signature[] = [];
      for (const cb of callbacks) {
        const sig = maybeSignature(cb);
        if (isGroup(sig)) await sig.applyVia(host, [retval], {}, ids);
        else sigs.push(sig);
      }
      if (sigs.length) await new Group(sigs).applyVia(host, [retval], {}, ids);
    }
    if (chain?.length) {
      const next = maybeSignature(chain[chain.length - 1]);
      await next.applyVia(host, [retval], {}, { ...ids, chain: chain.slice(0, -1) });
    }
    return parent.children.map((r) => r.asTuple());
  }

  /** After SUCCESS is stored: a chord header member reports its result. */
  async succeeded(request: TaskRequest, retval: unknown): Promise<void> {
    if (request.embed.chord) await this.chords.partReturn(memberOf(request), 'SUCCESS', retval, parentOf(request));
  }

  /** After FAILURE is stored: chord, rest of the chain, errbacks (Celery's mark_as_failure). */
  async failed(request: TaskRequest, error: unknown, traceback: string | null): Promise<void> {
    const parent = parentOf(request);
    if (request.embed.chord) await this.chords.partReturn(memberOf(request), 'FAILURE', error, parent);
    await failChain(this.env, request.embed.chain, error, traceback, (m, state, exc) => this.chords.partReturn(m, state, exc, parent));
    if (request.embed.errbacks?.length) await callErrbacks(this.env, errbackRequest(request, this.env.hostname), error, traceback, parent);
  }

  /** After REVOKED is stored (terminated while running): the chord counts it as failed. */
  async revoked(request: TaskRequest, error: unknown): Promise<void> {
    if (request.embed.chord) await this.chords.partReturn(memberOf(request), 'REVOKED', error, parentOf(request));
  }

  /** ctx.replace(): send the replacement (already frozen with this task's id). */
  async replaced(request: TaskRequest, signature: Record<string, unknown>): Promise<void> {
    await maybeSignature(signature).applyVia(this.env.host(parentOf(request)));
  }
}

function memberOf(request: TaskRequest): { id: string; group: string | null; groupIndex: number | null; chord: unknown } {
  return { id: request.id, group: request.group, groupIndex: request.groupIndex, chord: request.embed.chord };
}
