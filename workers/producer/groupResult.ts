/**
 * GroupResult: the results of a group, in the order its tasks were given (Celery's GroupResult).
 * get() resolves with the list of member results; a member that is itself a group gives a list.
 */
import { AsyncResult, type ResultLike, type ResultTuple } from './asyncResult';
import type { ResultBackend } from '../backends/backend';

type Member = AsyncResult | GroupResult;

export class GroupResult<R extends unknown[] = unknown[]> implements ResultLike {
  parent: ResultLike | null = null;

  constructor(
    readonly id: string,
    readonly results: Member[],
  ) {}

  asTuple(): ResultTuple {
    return [[this.id, this.parent ? this.parent.asTuple() : null], this.results.map((r) => r.asTuple())];
  }

  /** Celery's GroupResult.save(): keep the member ids under the group id (backends with saveGroup). */
  async save(backend: ResultBackend): Promise<void> {
    if (!backend.saveGroup) throw new Error(`the ${backend.kind} result backend cannot save groups`);
    await backend.saveGroup(this.id, this.results.map((r) => r.id));
  }

  /** Celery's GroupResult.restore(id): the saved group, its members as AsyncResults; null if none. */
  static async restore(groupId: string, backend: ResultBackend): Promise<GroupResult | null> {
    if (!backend.restoreGroup) throw new Error(`the ${backend.kind} result backend cannot restore groups`);
    const saved = await backend.restoreGroup(groupId);
    return saved ? new GroupResult(saved.id, saved.taskIds.map((id) => new AsyncResult(id, backend))) : null;
  }

  get length(): number {
    return this.results.length;
  }

  /** Wait for every member; the first failure throws (propagate=false keeps the errors in place). */
  async get(opts: { timeout?: number; propagate?: boolean } = {}): Promise<R> {
    const values = await Promise.all(this.results.map((r) => r.get(opts)));
    return values as R;
  }

  async ready(): Promise<boolean> {
    const states = await Promise.all(this.results.map((r) => r.ready()));
    return states.every(Boolean);
  }

  async successful(): Promise<boolean> {
    const states = await Promise.all(this.results.map((r) => (r instanceof GroupResult ? r.successful() : r.state().then((s) => s === 'SUCCESS'))));
    return states.every(Boolean);
  }

  /** Count of members that finished (any ready state). */
  async completedCount(): Promise<number> {
    const states = await Promise.all(this.results.map((r) => r.ready()));
    return states.filter(Boolean).length;
  }
}

/** Celery's result_from_tuple: rebuild results (and groups of them) from their stored tuples. */
export function resultFromTuple(tuple: unknown, backend: ResultBackend | null): Member {
  if (!Array.isArray(tuple) || !Array.isArray(tuple[0])) throw new TypeError(`not a result tuple: ${JSON.stringify(tuple)}`);
  const [[id, parent], members] = tuple as ResultTuple;
  const result: Member = Array.isArray(members)
    ? new GroupResult(id, members.map((m) => resultFromTuple(m, backend)))
    : new AsyncResult(id, backend);
  if (parent) result.parent = resultFromTuple(parent, backend);
  return result;
}
