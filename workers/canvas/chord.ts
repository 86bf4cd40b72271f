/**
 * chord(header, body): the header group runs, then the body runs once with the header's results
 * in order. Every header task carries the body in its message (`chord` field); the result backend
 * counts finished header tasks (Redis: atomic counter keys) or celery.chord_unlock polls them
 * (other backends), as in celery/canvas.py _chord and the backends.
 */
import { Signature, dropUnset, listOption, maybeSignature, registerSignatureType, type FreezeArgs } from './signature';
import { isChain, isChord, isGroup } from './kinds';
import { Group } from './group';
import { Chain, firstTaskOptions } from './chain';
import type { CanvasHost, ResultNode, SigOptions, SignatureDict } from './types';

/** Header as Celery's _maybe_group leaves it: a list of signatures (a group's or chain's tasks). */
function maybeGroup(tasks: unknown): Signature[] | Group {
  if (tasks instanceof Signature) {
    if (isGroup(tasks) || isChain(tasks)) return tasks.tasks;
    return [tasks];
  }
  if (Array.isArray(tasks)) return tasks.map((t) => maybeSignature(t, true));
  const sig = maybeSignature(tasks);
  if (isGroup(sig) || isChain(sig)) return sig.tasks;
  return [sig];
}

/** How many header results a signature contributes to a chord (Celery's _chord._descend). */
export function descend(sig: unknown): number {
  const s = maybeSignature(sig);
  if (isGroup(s)) return s.tasks.reduce((n, t) => n + descend(t), 0);
  if (isChain(s)) {
    for (let i = s.tasks.length - 1; i >= 0; i--) {
      const size = descend(s.tasks[i]);
      if (size > 0) return size;
    }
    return 0;
  }
  if (isChord(s)) return s.body ? descend(s.body) : 0;
  return 1;
}

/** Remove the chord callback from the tasks that end a signature (header copies being sent). */
function clearChordOption(sig: Signature): void {
  delete sig.options.chord;
  if (isGroup(sig)) for (const t of sig.tasks) clearChordOption(t);
  else if (isChain(sig) && sig.tasks.length) clearChordOption(sig.tasks[sig.tasks.length - 1]!);
  else if (isChord(sig) && sig.body) clearChordOption(sig.body);
}

/**
 * A pending chord already carries its body; freezing also put it on every header task. Strip
 * those copies from what is dispatched (run() puts them back when the header is sent).
 */
export function stripChordHeaderLinks(sig: Signature): void {
  if (isChord(sig)) {
    const header = sig.header;
    if (header instanceof Signature) {
      clearChordOption(header);
      stripChordHeaderLinks(header);
    } else {
      for (const t of header) {
        clearChordOption(t);
        stripChordHeaderLinks(t);
      }
    }
    if (sig.body) stripChordHeaderLinks(sig.body);
  } else if (isGroup(sig) || isChain(sig)) {
    for (const t of sig.tasks) stripChordHeaderLinks(t);
  }
}

export class Chord<R = unknown> extends Signature<R> {
  constructor(header: unknown, body: Signature | SignatureDict | null = null, options: SigOptions = {}, extraKwargs: Record<string, unknown> = { kwargs: {} }, args: readonly unknown[] = [], task = 'celery.chord') {
    super(task, args, { ...extraKwargs, header: maybeGroup(header), body: body === null ? null : maybeSignature(body) }, options, 'chord');
  }

  /** The header: a list of signatures, or a Group once frozen. */
  get header(): Signature[] | Group {
    return this.kwargs.header as Signature[] | Group;
  }

  set header(h: Signature[] | Group) {
    this.kwargs.header = h;
  }

  get tasks(): Signature[] {
    const h = this.header;
    return h instanceof Signature ? h.tasks : h;
  }

  get body(): Signature | null {
    return (this.kwargs.body as Signature | null) ?? null;
  }

  set body(b: Signature | null) {
    this.kwargs.body = b;
  }

  protected override rebuild(args: unknown[], kwargs: Record<string, unknown>, options: SigOptions): Signature {
    const { header, body, ...rest } = kwargs;
    const c = new Chord(header, null, options, rest, args, this.task);
    c.body = body ? maybeSignature(body, true) : null;
    return c;
  }

  /** chord | task: the task joins the body. */
  pipe(other: Signature): Signature {
    if (!isGroup(other) && !isChain(other)) {
      const sig = this.clone();
      sig.body = pipeAny(sig.body!, other);
      return sig;
    }
    if (isGroup(other) && other.tasks.length === 1) {
      const sig = this.clone();
      sig.body = pipeAny(sig.body!, other.tasks[0]!);
      return sig;
    }
    if (isChain(other)) return new Chain([this, ...other.unchainTasks()]);
    return new Chain([this, other]);
  }

  /** Callbacks go to the body only. */
  override link<S extends Signature>(callback: S): S {
    this.body!.link(callback);
    return callback;
  }

  /**
   * Errbacks go to the body (task_allow_error_cb_on_chord_header is False by default) and to
   * chords nested in the header.
   */
  override linkError<S extends Signature>(errback: S): S {
    for (const t of this.tasks) if (isChord(t)) t.linkError(errback);
    this.body!.linkError(errback);
    return errback;
  }

  override setImmutable(immutable: boolean): void {
    for (const t of this.tasks) t.setImmutable(immutable);
  }

  override freeze(host: CanvasHost, f: FreezeArgs = {}): ResultNode {
    if (!(this.header instanceof Signature)) this.header = new Group(this.header);
    const group = this.header as Group;
    const headerResult = group.freeze(host, { parentId: f.parentId, rootId: f.rootId, chord: this.body });
    this.id = group.id;
    if (!this.body) return headerResult;
    const bodyResult = this.body.freeze(host, { id: f.id, rootId: f.rootId, chord: f.chord, groupId: f.groupId, groupIndex: f.groupIndex });
    // The body may be a chain: its first result (the one without a parent) follows the header.
    let node: ResultNode | null = bodyResult;
    const seen = new Set<string>();
    while (node) {
      if (seen.has(node.id)) throw new Error('Recursive result parents');
      seen.add(node.id);
      if (!node.parent) {
        node.parent = headerResult;
        break;
      }
      node = node.parent as ResultNode;
    }
    return bodyResult;
  }

  override applyVia(host: CanvasHost, partialArgs: readonly unknown[] = [], kwargsIn: Record<string, unknown> = {}, optionsIn: SigOptions = {}): Promise<ResultNode> {
    const options = dropUnset(optionsIn);
    const explicitTaskId = options.task_id as string | undefined;
    delete options.task_id;
    const args = partialArgs.length && !this.immutable ? [...partialArgs, ...this.args] : this.args;
    const { body: givenBody, ...restKwargs } = kwargsIn;
    const kwargs = { ...(this.kwargs.kwargs as Record<string, unknown>), ...restKwargs };
    // countdown/eta delay the header, not the unlock polling nor only the body.
    const headerDelay: SigOptions = {};
    for (const key of ['countdown', 'eta']) {
      if (options[key] !== undefined) {
        headerDelay[key] = options[key];
        delete options[key];
      }
    }
    const callbacks: SigOptions = {};
    for (const key of ['link', 'link_error']) {
      if (key in options) {
        callbacks[key] = options[key];
        delete options[key];
      }
    }
    const body = maybeSignature(givenBody ?? this.body).clone([], {}, bodyOptions(options));
    const header = this.header instanceof Signature ? (this.header as Group).clone() : new Group([...this.header], { task_id: (this.options.task_id as string | undefined) || host.uuid() });
    const merged: SigOptions = { ...this.options, ...options, ...callbacks };
    delete merged.countdown;
    delete merged.eta;
    const optionTaskId = merged.task_id as string | undefined;
    delete merged.task_id;
    return this.run(host, header, body, args, {
      ...merged,
      task_id: explicitTaskId ?? optionTaskId,
      kwargs,
      header_delay: Object.keys(headerDelay).length ? headerDelay : undefined,
    });
  }

  /** Freeze the body, then the header with the body as its chord callback, then send the header. */
  async run(host: CanvasHost, header: Group, bodyIn: Signature, partialArgs: readonly unknown[], o: SigOptions): Promise<ResultNode> {
    const { interval = null, countdown = 1, max_retries: maxRetries = null, eager: _eager, task_id: taskId, kwargs = {}, header_delay: hd, ...rest } = o;
    let body = bodyIn;
    const groupId = (header.options.task_id as string | undefined) || host.uuid();
    const rootId = body.options.root_id as string | undefined;
    const options: SigOptions = { ...this.options, ...rest };
    const headerDelay: SigOptions = { ...((hd as SigOptions | undefined) ?? {}) };
    for (const key of ['countdown', 'eta']) {
      if (!(key in headerDelay) && options[key] !== undefined && options[key] !== null) headerDelay[key] = options[key];
      delete options[key];
    }
    if (Object.keys(options).length) {
      delete options.task_id;
      body = addBodyCallbacks(body, options);
      Object.assign(body.options, bodyOptions(options));
    }
    if (isChain(body)) body.unrollChords();
    const bodyTaskId = (taskId as string | undefined) || host.uuid();
    const bodyResult = body.freeze(host, { id: bodyTaskId, groupId, rootId });
    stripChordHeaderLinks(body);
    // The header must not carry the chain or the outer chord: those belong to the body.
    delete options.chain;
    delete options.chord;
    delete options.task_id;
    header.options.task_id = groupId;
    const [gid, results] = header.freezeGroupTasks(host, { groupId, chord: body, rootId });
    let headerResult: ResultNode;
    if (header.tasks.length) {
      await host.chords.applyChord(groupId, results, body.toDict(), { interval: interval as number | null, countdown: countdown as number, maxRetries: maxRetries as number | null });
      headerResult = await header.applyVia(host, partialArgs, kwargs as Record<string, unknown>, { ...options, ...headerDelay, task_id: groupId });
    } else {
      // An empty header never completes: the body runs at once with no results.
      await body.applyVia(host, [[]]);
      headerResult = host.groupResult(gid, results);
    }
    bodyResult.parent = headerResult;
    return bodyResult;
  }

  /** chord(header, chain(a, b, c)) -> chord(header, a), b, c: the tail is not copied per header task. */
  unrollBody(): Signature[] {
    const task = this.clone();
    const bodyChain = task.body as Chain;
    const bodyTasks = bodyChain.unchainTasks();
    task.body = bodyTasks[0]!.clone([], {}, firstTaskOptions(bodyChain));
    return [task, ...bodyTasks.slice(1)];
  }
}

/** The header task that fires the body is its parent: parent_id is not passed on to the body. */
function bodyOptions(options: SigOptions): SigOptions {
  return Object.fromEntries(Object.entries(options).filter(([k]) => k !== 'parent_id'));
}

/** Clone a signature and the members link() would change (group tasks, chord bodies). */
function cloneWithMembers(sig: Signature): Signature {
  const copy = sig.clone();
  if (isGroup(copy)) copy.tasks = copy.tasks.map(cloneWithMembers);
  else if (isChord(copy) && copy.body) copy.body = cloneWithMembers(copy.body);
  return copy;
}

function linkErrorToBodyTasks(sig: Signature, errback: Signature, runsAsGroup = true): void {
  if (isGroup(sig)) {
    if (runsAsGroup && sig.options.link_error !== undefined && sig.options.link_error !== null) sig.appendToListOption('link_error', errback.clone());
    else for (const t of sig.tasks) linkErrorToBodyTasks(t, errback, false);
  } else if (isChord(sig)) {
    if (sig.body) linkErrorToBodyTasks(sig.body, errback);
  } else {
    sig.linkError(errback.clone());
  }
}

/** Move link/link_error from the chord's options onto its body (Celery's _add_body_callbacks). */
function addBodyCallbacks(bodyIn: Signature, options: SigOptions): Signature {
  const callbacks = listOption(options.link);
  const errbacks = listOption(options.link_error);
  delete options.link;
  delete options.link_error;
  let body = bodyIn;
  if (callbacks.length || errbacks.length) body = cloneWithMembers(body);
  for (const cb of callbacks) {
    const callback = cloneWithMembers(maybeSignature(cb));
    if (isGroup(body) && !body.tasks.length) body.appendToListOption('link', callback);
    else body.link(callback);
  }
  for (const eb of errbacks) {
    if (isGroup(body)) linkErrorToBodyTasks(body, maybeSignature(eb));
    else body.appendToListOption('link_error', eb);
  }
  return body;
}

/** `|` for any signature kind (chain.ts's pipe, without importing it at load time). */
function pipeAny(a: Signature, b: Signature): Signature {
  const withPipe = a as Signature & { pipe?: (o: Signature) => Signature };
  if (typeof withPipe.pipe === 'function') return withPipe.pipe(b);
  if (isChain(b)) return new Chain([a, ...b.unchainTasks()]);
  if (isGroup(b)) return new Chain([a, b.tasks.length === 1 ? b.tasks[0]! : b]);
  return new Chain([a, b]);
}

registerSignatureType('chord', (d) => {
  const { header, body, ...rest } = d.kwargs;
  return new Chord(header ?? [], (body as SignatureDict | null) ?? null, { ...d.options }, rest, Array.isArray(d.args) ? d.args : [], d.task);
});
