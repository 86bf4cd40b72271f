/**
 * Chord bookkeeping on Redis, with the keys Celery's RedisBackend uses, so Python and Celeriac
 * workers can finish header tasks of the same chord:
 *   celery-taskset-meta-<gid>.s  chord size          .t  tasks added later (add_to_chord)
 *   celery-taskset-meta-<gid>.j  results: zset scored by group_index (result_chord_ordered) or list
 *   celery-taskset-meta-<gid>.d  "<task id>:<index>" already recorded (a redelivery counts once)
 *   celery-taskset-meta-<gid>.c  dispatch claim token, then 'done'
 *   celery-taskset-meta-<gid>    saved GroupResult, when header members are groups
 * Each atomic change is one named Lua script beside this file.
 */
import { join } from 'node:path';
import type Redis from 'ioredis';
import { LuaScript, type RedisReply } from '../../redis/script';
import { parseJson, stringifyJson } from '../../protocol/serializers';

const PART_RETURN = LuaScript.fromFile('chordPartReturn', join(__dirname, 'chordPartReturn.lua'));
const CLAIM_EXTEND = LuaScript.fromFile('chordClaimExtend', join(__dirname, 'chordClaimExtend.lua'));
const CLEANUP = LuaScript.fromFile('chordCleanup', join(__dirname, 'chordCleanup.lua'));
const SET_SIZE = LuaScript.fromFile('chordSetSize', join(__dirname, 'chordSetSize.lua'));

export interface PartReturn {
  /** Header results recorded so far; -1 when the chord was already completed. */
  count: number;
  /** Size + tasks added later, or null when the size is gone (chord failed or not a chord). */
  total: number | null;
  claimed: boolean;
}

function toNumber(v: RedisReply): number | null {
  if (v === null || v === undefined) return null;
  const n = Number(Buffer.isBuffer(v) ? v.toString() : v);
  return Number.isFinite(n) ? n : null;
}

export class RedisChordStore {
  constructor(
    private readonly client: Redis,
    private readonly key: (groupId: string, suffix?: string) => string,
    /** result_expires (Celery's chord_expires defaults to it); 0 = none. */
    private readonly expires: number,
    readonly ordered: boolean,
  ) {}

  private keys(gid: string): { j: string; t: string; s: string; d: string; g: string; c: string } {
    return { j: this.key(gid, '.j'), t: this.key(gid, '.t'), s: this.key(gid, '.s'), d: this.key(gid, '.d'), g: this.key(gid), c: this.key(gid, '.c') };
  }

  async setSize(gid: string, size: number): Promise<void> {
    const k = this.keys(gid);
    await SET_SIZE.run(this.client, [k.c, k.s], [size, this.expires || 0]);
  }

  /** Task.add_to_chord: the chord waits for one more header result (the .t key adds to the size). */
  async addToChord(gid: string): Promise<void> {
    await this.client.incr(this.key(gid, '.t'));
  }

  /** Header results that are groups: keep the GroupResult so the body gets nested lists. */
  async saveGroup(gid: string, tuple: unknown): Promise<void> {
    const value = stringifyJson({ result: tuple });
    if (this.expires > 0) await this.client.set(this.key(gid), value, 'EX', this.expires);
    else await this.client.set(this.key(gid), value);
  }

  async savedGroup(gid: string): Promise<unknown | null> {
    const raw = await this.client.get(this.key(gid));
    return raw === null ? null : (parseJson(raw) as { result: unknown }).result;
  }

  async partReturn(gid: string, taskId: string, encoded: string, index: number | null, claimSeconds: number, token: string): Promise<PartReturn> {
    const k = this.keys(gid);
    // Header results outlive the chord by at least result_expires (both 0 = no expiry).
    const groupTtl = this.expires > 0 ? this.expires : 0;
    const reply = (await PART_RETURN.run(this.client, [k.j, k.t, k.s, k.d, k.g, k.c], [
      taskId,
      encoded,
      this.ordered ? 1 : 0,
      index === null ? '+inf' : index,
      this.expires || 0,
      groupTtl,
      claimSeconds,
      token,
    ])) as RedisReply[];
    const count = toNumber(reply[0]!) ?? 0;
    const size = toNumber(reply[2]!);
    return { count, total: size === null ? null : size + (toNumber(reply[1]!) ?? 0), claimed: toNumber(reply[3]!) === 1 };
  }

  /** The recorded [1, id, state, result] entries, in group_index order when ordered. */
  async results(gid: string, total: number): Promise<unknown[]> {
    const j = this.key(gid, '.j');
    const raw = this.ordered ? await this.client.zrange(j, '0', '-1') : await this.client.lrange(j, 0, total);
    return raw.map((r) => parseJson(r));
  }

  async extendClaim(gid: string, token: string, seconds: number): Promise<boolean> {
    const k = this.keys(gid);
    return toNumber((await CLAIM_EXTEND.run(this.client, [k.c, k.s], [token, seconds])) as RedisReply) === 1;
  }

  async cleanup(gid: string, token: string, doneSeconds: number): Promise<boolean> {
    const k = this.keys(gid);
    return toNumber((await CLEANUP.run(this.client, [k.c, k.j, k.t, k.s, k.d], [token, doneSeconds])) as RedisReply) === 1;
  }

  /** After a failed chord: a late copy of a header task must not fail it again. */
  async dropSize(gid: string): Promise<void> {
    await this.client.del(this.key(gid, '.s'));
  }
}
