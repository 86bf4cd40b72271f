/**
 * Signature: one task call (name, args, kwargs, execution options) that can be sent later,
 * linked, or composed into chains, groups and chords. It serializes to the dict Celery puts in
 * messages ({task, args, kwargs, options, subtask_type, immutable}), so a Python worker reads a
 * TypeScript canvas and the other way round. Follows celery/canvas.py's Signature semantics:
 * partial args are prepended, immutable signatures ignore them, freezing fixes the task id.
 */
import { isDeepStrictEqual } from 'node:util';
import { PyTuple } from '../protocol/repr';
import type { CanvasHost, ResultNode, SigOptions, SignatureDict } from './types';
import type { AsyncResult } from '../producer/asyncResult';
import type { GroupResult } from '../producer/groupResult';

/** The result type a signature stands for (unknown when it was built untyped). */
export type ResultType<S> = S extends { readonly __result?: infer R } ? R : unknown;

/**
 * What applyAsync gives for a signature: a group's (and chunks') GroupResult; for anything else a
 * result whose get() resolves to its R: an AsyncResult, or a GroupResult when what it stands for
 * ends in a group (a chain, a chord's body, a signature rebuilt from a message).
 */
export type ResultFor<S> = S extends { readonly __group: true } ? GroupResult<ResultType<S> & unknown[]> : AsyncResult<ResultType<S>> | GroupResult<ResultType<S> & unknown[]>;

/** Options a merge must never change once set: changing them would stall a parent canvas. */
const MERGE_PROTECTED = ['group_id', 'stamped_headers'];

/** Where an unbound signature finds its broker: a Celeriac app (see app.canvasHost()). */
export interface HostProvider {
  canvasHost(): Promise<CanvasHost>;
}

export interface FreezeArgs {
  id?: string | null;
  groupId?: string | null;
  chord?: Signature | null;
  rootId?: string | null;
  parentId?: string | null;
  groupIndex?: number | null;
}

type Factory = (d: SignatureDict) => Signature;

/** subtask_type -> how to rebuild that kind of signature from its dict (filled by each module). */
const TYPES = new Map<string, Factory>();

export function registerSignatureType(name: string, factory: Factory): void {
  TYPES.set(name, factory);
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !Buffer.isBuffer(v);
}

export function isSignatureDict(v: unknown): v is SignatureDict {
  return isRecord(v) && typeof v.task === 'string' && 'options' in v;
}

/** Python's maybe_signature: dicts become signatures, signatures stay (cloned when asked). */
export function maybeSignature(d: unknown, clone = false): Signature {
  if (d instanceof Signature) return clone ? d.clone() : d;
  if (isSignatureDict(d)) return Signature.fromDict(d);
  throw new TypeError(`not a signature: ${JSON.stringify(d)}`);
}

/** A value as it goes into a message: signatures become their dicts, at any depth. */
export function serialize(value: unknown): unknown {
  if (value instanceof Signature) return value.toDict();
  if (Array.isArray(value)) return value.map(serialize);
  if (isRecord(value) && !(value instanceof Date)) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = serialize(v);
    return out;
  }
  return value;
}

/** Python's deepcopy of an options dict: nested signatures are copied too, never shared. */
export function copyOptions(value: unknown): unknown {
  if (value instanceof Signature) return value.clone();
  if (Array.isArray(value)) return value.map(copyOptions);
  if (isRecord(value) && !(value instanceof Date)) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = copyOptions(v);
    return out;
  }
  return value;
}

/** Options given to apply_async as None are dismissed, as Celery does. */
export function dropUnset(options: SigOptions): SigOptions {
  const out: SigOptions = {};
  for (const [k, v] of Object.entries(options)) if (v !== undefined && v !== null) out[k] = v;
  return out;
}

export function listOption(v: unknown): unknown[] {
  if (v === undefined || v === null) return [];
  return Array.isArray(v) ? v : [v];
}

export class Signature<out R = unknown> {
  task: string;
  args: unknown[];
  kwargs: Record<string, unknown>;
  options: SigOptions;
  subtaskType: string | null;
  immutable: boolean;
  /** Keys of a received dict that are not part of a signature (e.g. chord_size): written back. */
  extra: Record<string, unknown> = {};
  /** Not serialized: the app this signature is sent through when no host is given. */
  provider: HostProvider | null = null;
  /** Type-only marker so Signature<number> and Signature<string> differ. */
  declare readonly __result?: R;

  constructor(
    task: string,
    args: readonly unknown[] = [],
    kwargs: Record<string, unknown> = {},
    options: SigOptions = {},
    subtaskType: string | null = null,
    immutable = false,
  ) {
    this.task = task;
    this.args = [...args];
    this.kwargs = kwargs;
    this.options = options;
    this.subtaskType = subtaskType;
    this.immutable = immutable;
  }

  /** Rebuild a signature (or chain/group/chord/...) from its message dict. */
  static fromDict(d: SignatureDict): Signature {
    const factory = d.subtask_type ? TYPES.get(d.subtask_type) : undefined;
    if (factory) return factory(d);
    const sig = new Signature(d.task, Array.isArray(d.args) ? d.args : [], isRecord(d.kwargs) ? d.kwargs : {}, isRecord(d.options) ? { ...d.options } : {}, d.subtask_type ?? null, d.immutable === true);
    for (const [k, v] of Object.entries(d)) {
      if (!['task', 'args', 'kwargs', 'options', 'subtask_type', 'immutable'].includes(k)) sig.extra[k] = v;
    }
    return sig;
  }

  get name(): string {
    return this.task;
  }

  get id(): string | undefined {
    return this.options.task_id as string | undefined;
  }

  set id(value: string | undefined) {
    this.options.task_id = value;
  }

  toDict(): SignatureDict {
    return {
      task: this.task,
      args: serialize(this.args) as unknown[],
      kwargs: serialize(this.kwargs) as Record<string, unknown>,
      options: serialize(this.options) as SigOptions,
      subtask_type: this.subtaskType,
      immutable: this.immutable,
      ...this.extra,
    };
  }

  toJSON(): SignatureDict {
    return this.toDict();
  }

  /** How Python prints it in argsrepr/kwargsrepr: a dict whose args are a tuple. */
  pyReprValue(): unknown {
    return { task: this.task, args: new PyTuple(this.args), kwargs: this.kwargs, options: this.options, subtask_type: this.subtaskType, immutable: this.immutable, ...this.extra };
  }

  /** Bind to an app, so applyAsync() needs no host. Returns this. */
  bind(provider: HostProvider | null): this {
    this.provider = provider;
    return this;
  }

  /** Celery's _merge: partial args prepended (unless immutable), options merged over ours. */
  merge(args: readonly unknown[] = [], kwargs: Record<string, unknown> = {}, options: SigOptions | null = null, force = false): [unknown[], Record<string, unknown>, SigOptions] {
    let newOptions = this.options;
    if (options !== null) {
      const protectedKeys = new Set([...MERGE_PROTECTED, ...(listOption(this.options.stamped_headers) as string[])]);
      newOptions = { ...this.options };
      for (const [k, v] of Object.entries(options)) {
        if (!protectedKeys.has(k) || !(k in this.options)) newOptions[k] = v;
      }
    }
    if (this.immutable && !force) return [this.args, this.kwargs, newOptions];
    return [
      args.length ? [...args, ...this.args] : this.args,
      Object.keys(kwargs).length ? { ...this.kwargs, ...kwargs } : this.kwargs,
      newOptions,
    ];
  }

  /** A copy (with partial args/kwargs/options applied); options are deep-copied. */
  clone(args: readonly unknown[] = [], kwargs: Record<string, unknown> = {}, opts: SigOptions = {}): this {
    let [a, k, o] = [this.args, this.kwargs, this.options];
    if (args.length || Object.keys(kwargs).length || Object.keys(opts).length) [a, k, o] = this.merge(args, kwargs, opts);
    const copy = this.rebuild(a, { ...k }, copyOptions(o) as SigOptions);
    copy.immutable = this.immutable;
    copy.extra = { ...this.extra };
    copy.provider = this.provider;
    return copy as this;
  }

  /** A new signature of this same kind from parts (subclasses rebuild their members). */
  protected rebuild(args: unknown[], kwargs: Record<string, unknown>, options: SigOptions): Signature {
    return Signature.fromDict({ task: this.task, args, kwargs, options, subtask_type: this.subtaskType, immutable: this.immutable });
  }

  /** Fix the task id (and group/chord/root/parent) so results can be known before sending. */
  freeze(ctx: CanvasHost, f: FreezeArgs = {}): ResultNode {
    const opts = this.options;
    let tid = opts.task_id as string | undefined;
    if (tid === undefined || tid === null) tid = opts.task_id = f.id || ctx.uuid();
    if (f.rootId) opts.root_id = f.rootId;
    if (f.parentId) opts.parent_id = f.parentId;
    if (!('reply_to' in opts)) opts.reply_to = ctx.oid;
    if (f.groupId && !('group_id' in opts)) opts.group_id = f.groupId;
    if (f.chord) opts.chord = f.chord;
    if (f.groupIndex !== undefined && f.groupIndex !== null) opts.group_index = f.groupIndex;
    return ctx.result(tid);
  }

  /** Set execution options (queue, countdown, priority, ...); returns this for chaining. */
  set(options: SigOptions, immutable?: boolean): this {
    if (immutable !== undefined) this.setImmutable(immutable);
    Object.assign(this.options, options);
    return this;
  }

  setImmutable(immutable: boolean): void {
    this.immutable = immutable;
  }

  protected listOption(key: string): unknown[] {
    let items = this.options[key];
    if (items === undefined || items === null) items = this.options[key] = [];
    else if (!Array.isArray(items)) items = this.options[key] = [items];
    return items as unknown[];
  }

  appendToListOption<T>(key: string, value: T): T {
    const items = this.listOption(key);
    const ser = serialize(value);
    if (!items.some((i) => isDeepStrictEqual(serialize(i), ser))) items.push(value);
    return value;
  }

  extendListOption(key: string, value: unknown): void {
    this.listOption(key).push(...listOption(value));
  }

  /** Run `callback` with this task's result when it succeeds. Returns the callback. */
  link<S extends Signature>(callback: S): S {
    return this.appendToListOption('link', callback);
  }

  /** Run `errback` when this task fails. Returns the errback (Celery's link_error). */
  linkError<S extends Signature>(errback: S): S {
    return this.appendToListOption('link_error', errback);
  }

  /** link_error that returns this signature, for chaining calls. */
  onError(errback: Signature): this {
    this.linkError(errback);
    return this;
  }

  /** Send it; partial args are prepended, options override (Celery's apply_async). */
  async applyAsync(args: readonly unknown[] = [], kwargs: Record<string, unknown> = {}, options: SigOptions = {}, host?: CanvasHost): Promise<ResultFor<this>> {
    // Each kind's applyVia returns the node its kind stands for; ResultFor<this> names it.
    return (await this.applyVia(host ?? (await this.hostOf()), args, kwargs, options)) as ResultFor<this>;
  }

  /** Shortcut for applyAsync(args). */
  delay(...args: unknown[]): Promise<ResultFor<this>> {
    return this.applyAsync(args);
  }

  async hostOf(): Promise<CanvasHost> {
    if (!this.provider) throw new Error(`signature ${this.task} is not bound to an app: use app.signature(...) or pass a host`);
    return this.provider.canvasHost();
  }

  applyVia(host: CanvasHost, args: readonly unknown[] = [], kwargs: Record<string, unknown> = {}, options: SigOptions = {}): Promise<ResultNode> {
    const given = dropUnset(options);
    const [a, k, o] = args.length || Object.keys(kwargs).length || Object.keys(given).length ? this.merge(args, kwargs, given) : [this.args, this.kwargs, this.options];
    return sendSignature(host, this.task, a, k, o);
  }
}

/** Task.apply_async for a single task: publish, then record it in the running task's trail. */
export async function sendSignature(host: CanvasHost, task: string, args: readonly unknown[], kwargs: Record<string, unknown>, options: SigOptions): Promise<ResultNode> {
  const { add_to_parent: addToParent, ...rest } = options;
  const id = (rest.task_id as string | undefined) || host.uuid();
  await host.send(task, args, kwargs, { ...rest, task_id: id });
  const result = host.result(id);
  if (addToParent !== false && host.parent) host.parent.children.push(result);
  return result;
}

/** Build a signature: `signature('tasks.add', [2, 2])`. */
export function signature<R = unknown>(task: string, args: readonly unknown[] = [], kwargs: Record<string, unknown> = {}, options: SigOptions = {}): Signature<R> {
  return new Signature<R>(task, args, kwargs, { ...options });
}
