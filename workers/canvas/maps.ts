/**
 * xmap / xstarmap / chunks: one message runs a task over many argument sets inside one worker
 * (celery.map, celery.starmap), or a group of such messages of n sets each (celery.chunks).
 * Messages are routed by the inner task's name, as Celery routes them.
 */
import { Signature, dropUnset, maybeSignature, registerSignatureType } from './signature';
import { Group } from './group';
import type { CanvasHost, ResultNode, SigOptions, SignatureDict } from './types';

function innerName(task: unknown): string | undefined {
  if (task instanceof Signature) return task.task;
  if (typeof task === 'object' && task !== null && typeof (task as SignatureDict).task === 'string') return (task as SignatureDict).task;
  return undefined;
}

abstract class BaseMap<R> extends Signature<R[]> {
  constructor(name: string, subtaskType: string, task: Signature | SignatureDict, it: readonly unknown[], options: SigOptions = {}) {
    super(name, [], { task: maybeSignature(task), it: [...it] }, options, subtaskType, true);
  }

  override applyVia(host: CanvasHost, _args: readonly unknown[] = [], _kwargs: Record<string, unknown> = {}, options: SigOptions = {}): Promise<ResultNode> {
    const [, , merged] = this.merge([], {}, dropUnset(options));
    const { route_name: routeName, ...rest } = merged;
    const task = this.kwargs.task;
    return new Signature(this.task, [], { task, it: this.kwargs.it }, { ...rest, route_name: routeName ?? innerName(task) }).applyVia(host);
  }
}

/** [task(x) for x in it], in one worker. */
export class XMap<R = unknown> extends BaseMap<R> {
  constructor(task: Signature | SignatureDict, it: readonly unknown[], options: SigOptions = {}) {
    super('celery.map', 'xmap', task, it, options);
  }

  protected override rebuild(_a: unknown[], kwargs: Record<string, unknown>, options: SigOptions): Signature {
    return new XMap(kwargs.task as Signature, kwargs.it as unknown[], options);
  }
}

/** [task(*args) for args in it], in one worker. */
export class XStarmap<R = unknown> extends BaseMap<R> {
  constructor(task: Signature | SignatureDict, it: readonly unknown[], options: SigOptions = {}) {
    super('celery.starmap', 'xstarmap', task, it, options);
  }

  protected override rebuild(_a: unknown[], kwargs: Record<string, unknown>, options: SigOptions): Signature {
    return new XStarmap(kwargs.task as Signature, kwargs.it as unknown[], options);
  }
}

/** it split into parts of n argument sets, one celery.starmap message per part, as a group. */
export class Chunks<R = unknown> extends Signature<R[][]> {
  /** Type-only marker: applyAsync gives a GroupResult (see ResultFor). */
  declare readonly __group: true;

  constructor(task: Signature | SignatureDict, it: readonly unknown[], n: number, options: SigOptions = {}) {
    super('celery.chunks', [], { task: maybeSignature(task), it: [...it], n }, options, 'chunks', true);
  }

  protected override rebuild(_a: unknown[], kwargs: Record<string, unknown>, options: SigOptions): Signature {
    return new Chunks(kwargs.task as Signature, kwargs.it as unknown[], kwargs.n as number, options);
  }

  group(): Group {
    const it = this.kwargs.it as unknown[];
    const n = Number(this.kwargs.n);
    const parts: Signature[] = [];
    for (let i = 0; i < it.length; i += n) parts.push(new XStarmap(this.kwargs.task as Signature, it.slice(i, i + n)));
    return new Group(parts).bind(this.provider);
  }

  override applyVia(host: CanvasHost, args: readonly unknown[] = [], kwargs: Record<string, unknown> = {}, options: SigOptions = {}): Promise<ResultNode> {
    return this.group().applyVia(host, args, kwargs, { route_name: innerName(this.kwargs.task), ...options });
  }
}

registerSignatureType('xmap', (d) => new XMap(d.kwargs.task as SignatureDict, (d.kwargs.it as unknown[]) ?? [], { ...d.options }));
registerSignatureType('xstarmap', (d) => new XStarmap(d.kwargs.task as SignatureDict, (d.kwargs.it as unknown[]) ?? [], { ...d.options }));
registerSignatureType('chunks', (d) => new Chunks(d.kwargs.task as SignatureDict, (d.kwargs.it as unknown[]) ?? [], Number(d.kwargs.n), { ...d.options }));
