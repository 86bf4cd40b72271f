/**
 * The TypeScript twin of tests/interop/canvas_spec.py: one JSON spec builds the same canvas in
 * both languages, so their messages and results can be compared.
 *
 *   buildCanvas(spec, app?): Signature    (bound to `app` when given)
 *   RecordingHost: a CanvasHost that builds each message as Celeriac would publish it and records
 *     it decoded ({headers, body, properties, routing_key}) instead of sending it.
 *   normalizeIds(value): replaces every UUID by "<id N>", numbered by first appearance in a
 *     key-sorted walk, so messages built with random ids by two languages can be compared.
 */
import { randomUUID } from 'node:crypto';
import type { Celeriac } from '../../workers/app/app';
import { buildTaskMessage } from '../../workers/protocol/message';
import { Chunks, Group, Chord, XMap, XStarmap, chain, signature, type CanvasHost, type Signature, type SigOptions } from '../../workers/canvas';
import { messageArgs, sendOptionsFor } from '../../workers/canvas/send';
import { AsyncResult } from '../../workers/producer/asyncResult';
import { GroupResult } from '../../workers/producer/groupResult';
import type { ChordBackend, ResultNode } from '../../workers/canvas/types';

export type CanvasSpec =
  | { sig: string; args?: unknown[]; kwargs?: Record<string, unknown>; options?: SigOptions; immutable?: boolean; link?: CanvasSpec[]; link_error?: CanvasSpec[] }
  | { chain: CanvasSpec[]; link?: CanvasSpec[]; link_error?: CanvasSpec[] }
  | { group: CanvasSpec[]; options?: SigOptions; link?: CanvasSpec[]; link_error?: CanvasSpec[] }
  | { chord: CanvasSpec[]; body: CanvasSpec; options?: SigOptions; link?: CanvasSpec[]; link_error?: CanvasSpec[] }
  | { starmap: string; it: unknown[][] }
  | { map: string; it: unknown[] }
  | { chunks: string; it: unknown[][]; n: number };

export function buildCanvas(spec: CanvasSpec, app?: Celeriac): Signature {
  let sig: Signature;
  if ('sig' in spec) sig = signature(spec.sig, spec.args ?? [], spec.kwargs ?? {}, spec.options ?? {}).set({}, spec.immutable ?? false);
  else if ('chain' in spec) sig = chain(spec.chain.map((s) => buildCanvas(s)));
  else if ('group' in spec) sig = new Group(spec.group.map((s) => buildCanvas(s)), { ...(spec.options ?? {}) });
  else if ('chord' in spec) sig = new Chord(spec.chord.map((s) => buildCanvas(s)), buildCanvas(spec.body), { ...(spec.options ?? {}) });
  else if ('starmap' in spec) sig = new XStarmap(signature(spec.starmap), spec.it);
  else if ('map' in spec) sig = new XMap(signature(spec.map), spec.it);
  else sig = new Chunks(signature(spec.chunks), spec.it, spec.n);
  const links = 'link' in spec ? (spec.link ?? []) : [];
  const errbacks = 'link_error' in spec ? (spec.link_error ?? []) : [];
  for (const cb of links) sig.link(buildCanvas(cb));
  for (const eb of errbacks) sig.linkError(buildCanvas(eb));
  if (app) sig.bind(app);
  return sig;
}

export interface RecordedMessage {
  headers: Record<string, unknown>;
  body: unknown;
  properties: Record<string, unknown>;
  routing_key: string;
}

export class RecordingHost implements CanvasHost {
  readonly messages: RecordedMessage[] = [];
  readonly chordCalls: unknown[][] = [];
  readonly oid = randomUUID();
  readonly parent = null;
  chords: ChordBackend;

  constructor(private readonly app: Celeriac, chords?: (host: CanvasHost) => ChordBackend) {
    const calls = this.chordCalls;
    this.chords = chords
      ? chords(this)
      : {
          ensureAllowed: () => undefined,
          setChordSize: async (gid, size) => void calls.push(['setChordSize', gid, size]),
          applyChord: async (gid, results) => void calls.push(['applyChord', gid, results.map((r) => r.asTuple())]),
        };
  }

  uuid(): string {
    return randomUUID();
  }

  async send(name: string, args: readonly unknown[], kwargs: Record<string, unknown>, options: SigOptions): Promise<void> {
    const opts = sendOptionsFor(this.app, name, options, this.oid, null);
    const body = messageArgs(args, kwargs);
    const { message } = buildTaskMessage(name, body.args, body.kwargs, { ...opts, headers: { ...opts.headers, ...body.headers }, serializer: 'json' });
    this.messages.push({ headers: message.headers, body: JSON.parse(message.body.toString('utf8')), properties: message.properties, routing_key: opts.queue ?? '' });
  }

  result(id: string): AsyncResult {
    return new AsyncResult(id, null);
  }

  groupResult(id: string, results: ResultNode[]): GroupResult {
    return new GroupResult(id, results);
  }
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function normalizeIds<T>(value: T): T {
  const ids = new Map<string, string>();
  const number = (v: unknown): void => {
    if (typeof v === 'string' && UUID.test(v) && !ids.has(v)) ids.set(v, `<id ${ids.size}>`);
    else if (Array.isArray(v)) v.forEach(number);
    else if (v && typeof v === 'object') for (const k of Object.keys(v).sort()) number((v as Record<string, unknown>)[k]);
  };
  number(value);
  const replace = (v: unknown): unknown => {
    if (typeof v === 'string') return ids.get(v) ?? v;
    if (Array.isArray(v)) return v.map(replace);
    if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, replace(x)]));
    return v;
  };
  return replace(value) as T;
}
