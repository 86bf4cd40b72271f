/**
 * The canvas: signature, chain, group, chord, xmap/xstarmap/chunks, building the same messages
 * Celery builds, so Python and Celeriac workers can run each other's canvases.
 *
 *   const add = app.task('tasks.add', (x: number, y: number) => x + y);
 *   const res = await chain(add.s(2, 2), add.s(4), add.s(8)).applyAsync();     // 16
 *   const g = await group([1, 2, 3].map((i) => add.s(i, i))).applyAsync();      // [2, 4, 6]
 *   const c = await chord([add.s(1, 1), add.s(2, 2)], app.signature('tasks.tsum')).applyAsync();
 */
import './chain';
import './group';
import './chord';
import './maps';

export { Signature, signature, maybeSignature, type HostProvider, type ResultType, type ResultFor } from './signature';
export { Chain, chain, pipe, type LastResult } from './chain';
export { Group } from './group';
export { Chord } from './chord';
export { XMap, XStarmap, Chunks } from './maps';
export { AppCanvasHost, producerHost } from './host';
export type { CanvasHost, SignatureDict, SigOptions, ParentTask } from './types';

import { Signature, type ResultType } from './signature';
import { Group } from './group';
import { Chord } from './chord';
import type { SigOptions } from './types';

/** The results of a list of signatures, in order: [Signature<number>, Signature<string>] -> [number, string]. */
export type ResultsOf<S extends readonly Signature[]> = { -readonly [K in keyof S]: ResultType<S[K]> };

/** group(a, b, c) or group([a, b, c]); bound to the first member's app. */
export function group<const S extends readonly Signature[]>(tasks: S): Group<ResultsOf<S>>;
export function group<S extends Signature[]>(...tasks: S): Group<ResultsOf<S>>;
export function group<R extends unknown[] = unknown[]>(...tasks: (Signature | readonly Signature[])[]): Group<R>;
export function group<R extends unknown[] = unknown[]>(...tasks: (Signature | readonly Signature[])[]): Group<R> {
  const list = tasks.length === 1 && Array.isArray(tasks[0]) ? [...(tasks[0] as Signature[])] : (tasks as Signature[]);
  return new Group<R>(list).bind(list[0]?.provider ?? null);
}

/** chord(header, body): body runs once with the header's results, in order. */
export function chord<B extends Signature>(header: readonly Signature[] | Group, body: B, options?: SigOptions): Chord<ResultType<B>>;
export function chord<R = unknown>(header: readonly Signature[] | Group, body: Signature, options?: SigOptions): Chord<R>;
export function chord<R = unknown>(header: readonly Signature[] | Group, body: Signature, options: SigOptions = {}): Chord<R> {
  const first = header instanceof Signature ? header.provider : header[0]?.provider;
  return new Chord<R>(header, body, options).bind(first ?? body.provider);
}
