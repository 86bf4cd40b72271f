/**
 * chain(a, b, c): each task's result is the first argument of the next. Sent as ONE message: the
 * first task, with the rest (reversed, frozen with their ids) in the message's `chain` field;
 * the worker pops the next step from it (celery/canvas.py _chain, protocol 2).
 * A group followed by a task becomes a chord, as in Celery.
 */
import { Signature, type ResultType, dropUnset, listOption, maybeSignature, registerSignatureType, type FreezeArgs } from './signature';
import { isChain, isChainLedByTask, isChord, isEmptyGroup, isGroup, maybeUnrollGroup } from './kinds';
import { Chord, stripChordHeaderLinks } from './chord';
import type { CanvasHost, ResultNode, SigOptions } from './types';

/** Options a chain consumes itself when it runs instead of handing them to its first task. */
const CHAIN_RUN_OPTIONS = new Set(['chord', 'group_id', 'group_index', 'link', 'link_error', 'parent_id', 'root_id', 'task_id']);

export function firstTaskOptions(c: Chain): SigOptions {
  return Object.fromEntries(Object.entries(c.options).filter(([k]) => !CHAIN_RUN_OPTIONS.has(k)));
}

export class Chain<R = unknown> extends Signature<R> {
  constructor(tasks: readonly unknown[], options: SigOptions = {}) {
    super('celery.chain', [], { tasks: tasks.map((t) => maybeSignature(t)) }, options, 'chain');
  }

  get tasks(): Signature[] {
    return this.kwargs.tasks as Signature[];
  }

  set tasks(tasks: Signature[]) {
    this.kwargs.tasks = tasks;
  }

  protected override rebuild(_args: unknown[], kwargs: Record<string, unknown>, options: SigOptions): Signature {
    // Celery rebuilds a chain from its tasks and options only; each task is cloned.
    return new Chain((kwargs.tasks as unknown[]).map((t) => maybeSignature(t, true)), options);
  }

  /** Copies of the tasks, the chain's callbacks moved to the last and its errbacks to every one. */
  unchainTasks(): Signature[] {
    const tasks = this.tasks.map((t) => t.clone());
    for (const cb of listOption(this.options.link)) tasks[tasks.length - 1]?.link(maybeSignature(cb));
    for (const eb of listOption(this.options.link_error)) for (const t of tasks) t.linkError(maybeSignature(eb));
    return tasks;
  }

  /** The `|` operator on a chain. */
  pipe(other: Signature): Signature {
    if (isEmptyGroup(other)) return this;
    if (isGroup(other)) {
      const unrolled = maybeUnrollGroup(other);
      if (!isGroup(unrolled)) return this.pipe(unrolled);
      const tasks = this.unchainTasks();
      if (!tasks.length) return unrolled;
      const last = tasks[tasks.length - 1]!;
      if (isChord(last)) {
        last.body = pipe(last.body!, unrolled);
        return new Chain(tasks);
      }
      return new Chain([...tasks, unrolled]);
    }
    if (isChain(other)) return other.unchainTasks().reduce<Signature>((acc, t) => pipe(acc, t), this);
    const last = this.tasks[this.tasks.length - 1];
    if (last && isGroup(last)) {
      const sig = this.clone();
      const n = sig.tasks.length;
      sig.tasks[n - 1] = new Chord(sig.tasks[n - 1]!, other);
      const before = sig.tasks[n - 2];
      if (n > 1 && isChord(before)) {
        before.body = pipe(before.body!, sig.tasks[n - 1]!);
        sig.tasks = sig.tasks.slice(0, -1);
      }
      return sig;
    }
    if (last && isChord(last) && !isChord(other)) {
      const sig = this.clone();
      const chordStep = sig.tasks[sig.tasks.length - 1] as Chord;
      chordStep.body = pipe(chordStep.body!, other);
      return sig;
    }
    return new Chain([...this.unchainTasks(), other]);
  }

  override applyVia(host: CanvasHost, args: readonly unknown[] = [], kwargs: Record<string, unknown> = {}, options: SigOptions = {}): Promise<ResultNode> {
    const given = dropUnset(options);
    return this.run(host, args, kwargs, Object.keys(given).length ? { ...this.options, ...given } : this.options);
  }

  /** Send the first task with the rest of the chain in its message. */
  async run(host: CanvasHost, partialArgs: readonly unknown[], kwargs: Record<string, unknown>, options: SigOptions): Promise<ResultNode> {
    const { group_id: groupId, chord, task_id: taskId, link, link_error: linkError, root_id: rootId, parent_id: parentId, group_index: groupIndex, ...rest } = options;
    const args = partialArgs.length && !this.immutable ? [...partialArgs, ...this.args] : this.args;
    const [tasks, results] = this.prepareSteps(host, args, kwargs, this.tasks, {
      rootId: rootId as string | undefined,
      parentId: parentId as string | undefined,
      linkError,
      lastTaskId: taskId as string | undefined,
      groupId: groupId as string | undefined,
      chordBody: (chord as Signature | undefined) ?? null,
      groupIndex: groupIndex as number | undefined,
    });
    if (!results.length) throw new Error('cannot apply an empty chain');
    if (link) tasks[0]!.extendListOption('link', link);
    const first = tasks.pop()!;
    // Never mutate a `chain` option we were given: a group reuses one options object for all.
    const chainOpt = 'chain' in rest && rest.chain ? [...(rest.chain as unknown[]), ...tasks] : tasks;
    const applied = await first.applyVia(host, [], {}, { ...rest, chain: chainOpt });
    return tasks.length ? results[0]! : applied;
  }

  override freeze(host: CanvasHost, f: FreezeArgs = {}): ResultNode {
    const [, results] = this.prepareSteps(host, this.args, this.kwargs, this.tasks, {
      rootId: f.rootId,
      parentId: f.parentId,
      linkError: null,
      lastTaskId: f.id,
      groupId: f.groupId,
      chordBody: f.chord ?? null,
      groupIndex: f.groupIndex,
      clone: false,
    });
    return results[0]!;
  }

  /** Split chords whose body is a task-led chain, so their tail is not copied into every header task. */
  unrollChords(): void {
    const pending = [...this.tasks];
    const out: Signature[] = [];
    while (pending.length) {
      let task = pending.shift()!;
      if (isChain(task)) {
        task = task.clone();
        (task as Chain).unrollChords();
      }
      if (isChord(task) && isChainLedByTask(task.body)) pending.unshift(...task.unrollBody());
      else out.push(task);
    }
    this.tasks = out;
  }

  /**
   * Freeze every step (last first) so each knows its id; returns the steps reversed (as the
   * message's `chain` field wants them) and their results, the chain's own result first.
   */
  prepareSteps(
    host: CanvasHost,
    args: readonly unknown[],
    kwargs: Record<string, unknown>,
    input: readonly Signature[],
    o: { rootId?: string | null; parentId?: string | null; linkError: unknown; lastTaskId?: string | null; groupId?: string | null; chordBody: Signature | null; groupIndex?: number | null; clone?: boolean },
  ): [Signature[], ResultNode[]] {
    const clone = o.clone ?? true;
    const steps: Signature[] = [...input];
    // The first real task must be popped last: splice nested chains, drop leading empty groups.
    let stripped: Signature | null = null;
    while (steps.length) {
      let head = (steps[0] = maybeSignature(steps[0]));
      if (isChain(head)) {
        steps.shift();
        if (clone) head = head.clone();
        steps.unshift(...(head as Chain).tasks);
        continue;
      }
      if (isGroup(head)) {
        head = steps[0] = maybeUnrollGroup(head);
        if (steps.length > 1 && isEmptyGroup(head)) {
          stripped = steps.shift()!;
          continue;
        }
      }
      break;
    }
    if (stripped && !steps.length) steps.push(stripped);

    let prevTask: Signature | null = null;
    let prevRes: ResultNode | null = null;
    const tasks: Signature[] = [];
    const results: ResultNode[] = [];
    let i = 0;
    while (steps.length) {
      let task = maybeSignature(steps.pop());
      const isFirst = steps.length === 0;
      const isLast = i === 0;
      if (isGroup(task)) {
        task = maybeUnrollGroup(task);
        if (isEmptyGroup(task) && (steps.length || prevTask)) continue;
      }
      if (clone && isChord(task) && isChainLedByTask(task.body)) {
        steps.push(...task.unrollBody());
        continue;
      }
      if (clone) task = isFirst ? task.clone(args, kwargs) : task.clone();
      else if (isFirst) task.args = [...args, ...task.args];
      if (isChain(task)) {
        steps.push(...task.tasks);
        continue;
      }
      if (isGroup(task) && prevTask) {
        // group | task inside a chain: the group becomes the header of a chord with that task.
        tasks.pop();
        const bodyRes = results.pop();
        // Celery gives the new chord the body's id and root_id (None included) as its options.
        const chordOpts: SigOptions = bodyRes && !('results' in bodyRes) ? { task_id: bodyRes.id, root_id: o.rootId ?? null } : { root_id: o.rootId ?? null };
        task = new Chord(task, prevTask, chordOpts);
        prevTask = tasks[tasks.length - 1] ?? null;
        let node: ResultNode | null = results[results.length - 1] ?? null;
        while (node && node.parent !== bodyRes) node = node.parent as ResultNode | null;
        if (node) {
          node.parent = null;
          prevRes = node;
        }
      }
      const res = isLast
        ? task.freeze(host, { id: o.lastTaskId, rootId: o.rootId, groupId: o.groupId, chord: o.chordBody, groupIndex: o.groupIndex })
        : task.freeze(host, { rootId: o.rootId });
      i++;
      if (prevTask && prevRes && !prevRes.parent) prevRes.parent = res;
      for (const eb of listOption(o.linkError)) {
        task.linkError(maybeSignature(eb));
        if (isChord(task) && task.body) task.body.linkError(maybeSignature(eb));
      }
      tasks.push(task);
      results.push(res);
      prevTask = task;
      prevRes = res;
      if (isChord(task)) {
        host.chords.ensureAllowed();
        let node: ResultNode = res;
        while (node.parent) node = node.parent as ResultNode;
        prevRes = node;
      }
    }
    this.id = results[0]?.id ?? o.lastTaskId ?? undefined;
    if (clone) for (const t of tasks) stripChordHeaderLinks(t);
    return [tasks, results];
  }
}

/** The `|` operator: Signature | x, Chain | x, Group | x, Chord | x as Celery defines them. */
export function pipe(a: Signature, b: Signature): Signature {
  const withPipe = a as Signature & { pipe?: (o: Signature) => Signature };
  if (typeof withPipe.pipe === 'function') return withPipe.pipe(b);
  if (isChain(b)) return new Chain([a, ...b.unchainTasks()]);
  if (isGroup(b)) return new Chain([a, maybeUnrollGroup(b)]);
  return new Chain([a, b]);
}

/** A chain's result: its last step's. */
export type LastResult<S extends readonly Signature[]> = S extends readonly [...Signature[], infer L] ? ResultType<L> : ResultType<S[number]>;

/**
 * chain(a, b, c) as Celery folds it: a group followed by a task becomes a chord, a task after a
 * chord joins the chord's body, nested chains are spliced.
 */
export function chain<S extends Signature[]>(...tasks: S): Chain<LastResult<S>> | Signature<LastResult<S>>;
export function chain<const S extends readonly Signature[]>(tasks: S): Chain<LastResult<S>> | Signature<LastResult<S>>;
export function chain<R = unknown>(...input: (Signature | readonly Signature[])[]): Chain<R> | Signature<R>;
export function chain<R = unknown>(...input: (Signature | readonly Signature[])[]): Chain<R> | Signature<R> {
  const tasks = input.length === 1 && Array.isArray(input[0]) ? [...(input[0] as Signature[])] : (input as Signature[]);
  const provider = tasks.find((t) => t.provider)?.provider ?? null;
  const steps: Signature[] = [];
  for (let pos = 0; pos < tasks.length; pos++) {
    const result = mergeChainStep(steps, tasks[pos]!, pos !== tasks.length - 1);
    if (result !== steps) return tasks.slice(pos + 1).reduce<Signature>((acc, t) => pipe(acc, t), result as Signature).bind(provider) as Signature<R>;
  }
  return new Chain<R>([...steps.slice(0, -1).map((s) => s.clone()), ...steps.slice(-1)]).bind(provider);
}

function mergeChainStep(steps: Signature[], other: Signature, cloneOther: boolean): Signature[] | Signature {
  if (isEmptyGroup(other)) return steps;
  const last = steps[steps.length - 1];
  if (isGroup(other)) {
    const unrolled = maybeUnrollGroup(other);
    if (!isGroup(unrolled)) return mergeChainStep(steps, unrolled, cloneOther);
    if (!steps.length) return unrolled;
    if (isChord(last)) {
      last.body = pipe(last.body!, unrolled);
      return steps;
    }
    steps.push(cloneOther ? unrolled.clone() : unrolled);
    return steps;
  }
  if (isChain(other)) {
    const inner = other.unchainTasks();
    for (let pos = 0; pos < inner.length; pos++) {
      const result = mergeChainStep(steps, inner[pos]!, cloneOther || pos !== inner.length - 1);
      if (result !== steps) return inner.slice(pos + 1).reduce<Signature>((acc, t) => pipe(acc, t), result as Signature);
    }
    return steps;
  }
  if (last && isGroup(last)) {
    steps[steps.length - 1] = new Chord(last, cloneOther ? other.clone() : other);
    return steps;
  }
  if (last && isChord(last) && !isChord(other)) {
    last.body = pipe(last.body!, other);
    return steps;
  }
  steps.push(cloneOther ? other.clone() : other);
  return steps;
}

registerSignatureType('chain', (d) => new Chain(Array.isArray(d.kwargs.tasks) ? d.kwargs.tasks : [], { ...d.options }));
