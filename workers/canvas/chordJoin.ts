/**
 * A chord header task finished (celery/backends/redis.py on_chord_part_return): record its
 * result atomically; the worker whose result completes the header takes the claim, reads the
 * results in order and sends the body with them. A failed header task fails the chord: the body
 * gets a ChordError ("Dependency <id> raised ...") and its errbacks run.
 */
import { randomUUID } from 'node:crypto';
import { ChordError, PythonError } from '../app/errors';
import { serializeException } from '../backends/meta';
import { RedisBackend } from '../backends/redis/redisBackend';
import type { RedisChordStore } from '../backends/redis/chord';
import { stringifyJson } from '../protocol/serializers';
import { resultFromTuple } from '../producer/groupResult';
import { maybeSignature } from './signature';
import { chordErrorFromStack, excRepr, type ChordMember } from './errbacks';
import type { CanvasEnv } from './env';
import type { ParentTask } from './types';

/** Claim lifetime while joining: twice result_chord_join_timeout (3 s), at least 5 s. */
const CLAIM_SECONDS = 6;
/** Claim lifetime while publishing the body: covers the default publish retry policy. */
const PUBLISH_CLAIM_SECONDS = 21;
/** How long the 'done' marker keeps late header copies out. */
const DONE_SECONDS = 300;

const PROPAGATE = new Set(['FAILURE', 'REVOKED']);

/** One recorded [1, id, state, result]: the value, or a ChordError for a failed dependency. */
function unpack(entry: unknown): unknown {
  const [, tid, state, retval] = entry as [number, string, string, unknown];
  if (PROPAGATE.has(state)) throw new ChordError(`Dependency ${tid} raised ${excRepr(asError(retval))}`, asError(retval));
  return retval;
}

/** A stored exception document as an error object (type and arguments kept for repr). */
function asError(v: unknown): unknown {
  if (v && typeof v === 'object' && typeof (v as { exc_type?: unknown }).exc_type === 'string') {
    const d = v as { exc_type: string; exc_message: unknown; exc_module: string | null };
    const args = Array.isArray(d.exc_message) ? d.exc_message : [d.exc_message];
    return new PythonError(d.exc_type, args.map(String).join(', '), d.exc_module, args);
  }
  return v;
}

export class ChordJoin {
  constructor(private readonly env: CanvasEnv) {}

  private store(): RedisChordStore | null {
    return this.env.backend instanceof RedisBackend ? this.env.backend.chords() : null;
  }

  /** Report one header member's outcome (state SUCCESS, FAILURE or REVOKED). */
  partReturn = async (member: ChordMember, state: string, result: unknown, parent: ParentTask | null = null): Promise<void> => {
    const store = this.store();
    // Other backends are joined by celery.chord_unlock polling the header results.
    if (!store || !member.group || !member.id) return;
    const encoded = stringifyJson([1, member.id, state, state === 'SUCCESS' ? result : serializeFailure(result)]);
    const token = randomUUID().replace(/-/g, '');
    const part = await store.partReturn(member.group, member.id, encoded, member.groupIndex, CLAIM_SECONDS, token);
    if (part.count === -1 || part.total === null) return;
    const gid = member.group;
    try {
      if (part.count !== part.total || !part.claimed) return;
      const values = await this.join(store, gid, part.total);
      if (!(await store.extendClaim(gid, token, PUBLISH_CLAIM_SECONDS))) {
        this.env.log.warn(`Chord callback for '${gid}' not published: dispatch claim is no longer owned by this worker`);
        return;
      }
      try {
        await maybeSignature(member.chord).applyVia(this.env.host(parent), [values]);
      } catch (err) {
        this.env.log.error(`Chord callback for '${gid}' raised: ${excRepr(err)}`);
        await chordErrorFromStack(this.env, member.chord, new ChordError(`Callback error: ${excRepr(err)}`, err), parent, this.partReturn);
      } finally {
        if (!(await store.cleanup(gid, token, DONE_SECONDS))) this.env.log.warn(`Chord callback claim for '${gid}' was lost before cleanup; chord data was left for expiry`);
      }
    } catch (err) {
      const chordError = err instanceof ChordError ? err : new ChordError(`Join error: ${excRepr(err)}`, err);
      this.env.log.error(`Chord '${gid}' raised: ${excRepr(chordError)}`);
      try {
        await chordErrorFromStack(this.env, member.chord, chordError, parent, this.partReturn);
      } finally {
        // A late copy of a header task must not fail the chord a second time.
        await store.dropSize(gid);
      }
    }
  };

  /** Header results in order; a header made of groups was saved whole and gives nested lists. */
  private async join(store: RedisChordStore, gid: string, total: number): Promise<unknown[]> {
    const saved = await store.savedGroup(gid);
    if (saved) {
      const group = resultFromTuple(saved, this.env.backend);
      return (await group.get({ timeout: 3 })) as unknown[];
    }
    return (await store.results(gid, total)).map(unpack);
  }
}

function serializeFailure(exc: unknown): unknown {
  if (exc && typeof exc === 'object' && 'exc_type' in exc) return exc;
  return serializeException(exc);
}
