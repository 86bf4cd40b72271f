/**
 * group(a, b, c): tasks run in parallel, one message each, sharing a group id (the `group`
 * header) and numbered by `group_index`; the result is a GroupResult in the given order.
 * Nested groups are flattened. A group followed by a task is a chord (celery/canvas.py group).
 */
import { Signature, dropUnset, maybeSignature, registerSignatureType, type FreezeArgs } from './signature';
import { isChain, isGroup } from './kinds';
import { Chord, descend } from './chord';
import type { GroupResult } from '../producer/groupResult';
import type { CanvasHost, ResultNode, SigOptions } from './types';

type Prepared = [Signature, ResultNode, string];

export class Group<R extends unknown[] = unknown[]> extends Signature<R> {
  /** Type-only marker: applyAsync gives a GroupResult (see ResultFor). */
  declare readonly __group: true;
  constructor(tasks: readonly unknown[] | Signature, options: SigOptions = {}) {
    let list: unknown[];
    if (tasks instanceof Signature) list = isGroup(tasks) ? tasks.tasks : [tasks.clone()];
    else list = [...tasks];
    super('celery.group', [], { tasks: list.map((t) => maybeSignature(t)) }, options, 'group');
  }

  get tasks(): Signature[] {
    return this.kwargs.tasks as Signature[];
  }

  set tasks(tasks: Signature[]) {
    this.kwargs.tasks = tasks;
  }

  protected override rebuild(_args: unknown[], kwargs: Record<string, unknown>, options: SigOptions): Signature {
    // As Celery: a cloned group shares its member signatures with the original.
    return new Group(kwargs.tasks as unknown[], options);
  }

  /** group | task is a chord; group | empty group is the group. */
  pipe(other: Signature): Signature {
    if (isGroup(other) && other.tasks.length === 0) return this;
    return new Chord(this, other);
  }

  /** Link to the first task only, made immutable: it cannot see its siblings' results. */
  override link<S extends Signature>(callback: S): S {
    const sig = callback.clone().set({}, true);
    this.tasks[0]!.link(sig);
    return sig as S;
  }

  /** Every member gets its own copy of the errback. */
  override linkError<S extends Signature>(errback: S): S {
    for (const t of this.tasks) t.linkError(errback.clone());
    return errback;
  }

  override setImmutable(immutable: boolean): void {
    for (const t of this.tasks) t.setImmutable(immutable);
  }

  override async applyVia(host: CanvasHost, args: readonly unknown[] = [], kwargs: Record<string, unknown> = {}, options: SigOptions = {}): Promise<GroupResult> {
    const { add_to_parent: addToParent, producer: _producer, link, link_error: linkError, ...given } = dropUnset(options);
    if (link !== undefined) throw new TypeError('Cannot add link to group: use a chord');
    if (linkError !== undefined) throw new TypeError('Cannot add link to group: do that on individual tasks');
    if (!this.tasks.length) return this.freeze(host);
    const [opts, groupId, rootId] = this.freezeGid(host, given);
    const prepared = [...this.prepared(host, this.tasks, [], groupId, rootId)];
    const results = await applyTasks(host, prepared, args, kwargs, opts);
    let result = host.groupResult(groupId, results);
    // group(chain(a, group(b, c))): the inner group's result is the group's result.
    if (results.length === 1 && 'results' in results[0]!) result = results[0] as GroupResult;
    if (addToParent !== false && host.parent) host.parent.children.push(result);
    return result;
  }

  /** The group id is the group's task_id (or a new one); members get it as group_id. */
  freezeGid(host: CanvasHost, options: SigOptions): [SigOptions, string, string | undefined] {
    const opts: SigOptions = { ...this.options };
    for (const [k, v] of Object.entries(options)) if (!['group_id', 'stamped_headers'].includes(k) || !(k in this.options)) opts[k] = v;
    const groupId = (opts.task_id as string | undefined) ?? host.uuid();
    delete opts.task_id;
    opts.group_id = groupId;
    return [opts, groupId, (opts.root_id as string | undefined) ?? undefined];
  }

  /** Clone and freeze each member (nested groups unrolled), numbering them by position. */
  *prepared(host: CanvasHost, tasks: readonly unknown[], partialArgs: readonly unknown[], groupId: string, rootId: string | undefined): Generator<Prepared> {
    for (let index = 0; index < tasks.length; index++) {
      const task = maybeSignature(tasks[index], true);
      if (isGroup(task)) {
        yield* task.prepared(host, task.tasks, partialArgs, groupId, rootId);
      } else if (isChain(task) && !task.tasks.length) {
        continue;
      } else {
        if (partialArgs.length && !task.immutable) task.args = [...partialArgs, ...task.args];
        yield [task, task.freeze(host, { groupId, rootId, groupIndex: index }), groupId];
      }
    }
  }

  override freeze(host: CanvasHost, f: FreezeArgs = {}): GroupResult {
    const [gid, results] = this.freezeGroupTasks(host, f);
    return host.groupResult(gid, results);
  }

  /** Fix the group's id and its members' ids (flattening nested groups); returns both. */
  freezeGroupTasks(host: CanvasHost, f: FreezeArgs = {}): [string, ResultNode[]] {
    const opts = this.options;
    let gid = opts.task_id as string | undefined;
    if (!gid) gid = opts.task_id = host.uuid();
    if (f.groupId) opts.group_id = f.groupId;
    if (f.chord) opts.chord = f.chord;
    if (f.groupIndex !== undefined && f.groupIndex !== null) opts.group_index = f.groupIndex;
    // Python's setdefault: the keys appear (possibly None) even when nothing was given.
    if (!('root_id' in opts)) opts.root_id = f.rootId ?? null;
    if (!('parent_id' in opts)) opts.parent_id = f.parentId ?? null;
    const rootId = opts.root_id as string | null;
    const parentId = opts.parent_id as string | null;
    const stack: unknown[] = [...this.tasks];
    const members: Signature[] = [];
    const results: ResultNode[] = [];
    let groupIndex = 0;
    while (stack.length) {
      const task = maybeSignature(stack.shift(), true);
      if (isGroup(task)) {
        // deque.extendleft: the nested members come first, in reverse order (as Celery does).
        stack.unshift(...[...task.tasks].reverse());
      } else if (isChain(task) && !task.tasks.length) {
        continue;
      } else {
        members.push(task);
        results.push(task.freeze(host, { groupId: f.groupId, chord: f.chord, rootId, parentId, groupIndex }));
        groupIndex++;
      }
    }
    this.tasks = members;
    return [gid, results];
  }
}

/**
 * Send prepared members; the chord size goes to the backend just before the last one, so a
 * chord cannot complete before it knows how many results to wait for.
 */
export async function applyTasks(host: CanvasHost, tasks: Prepared[], args: readonly unknown[], kwargs: Record<string, unknown>, options: SigOptions): Promise<ResultNode[]> {
  const { chord, ...rest } = options;
  let chordSize = 0;
  const results: ResultNode[] = [];
  for (let i = 0; i < tasks.length; i++) {
    const [sig, res, groupId] = tasks[i]!;
    const chordObj = chord ?? sig.options.chord;
    chordSize += descend(sig);
    if (chordObj !== undefined && chordObj !== null && i === tasks.length - 1) await host.chords.setChordSize(groupId, chordSize);
    await sig.applyVia(host, args, kwargs, { ...rest, add_to_parent: false, chord: chordObj });
    results.push(res);
  }
  return results;
}

registerSignatureType('group', (d) => new Group(Array.isArray(d.kwargs.tasks) ? d.kwargs.tasks : [], { ...d.options }));
