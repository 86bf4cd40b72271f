/**
 * CanvasHost for a Celeriac app: how signatures are published, what results they give, and what
 * the result backend does for chords. A producer gets one per app; the worker makes one per
 * finished task (its id is the parent of what it sends, its results become `children`).
 */
import './maps'; // registers every signature kind for fromDict
import { randomUUID } from 'node:crypto';
import type { Celeriac } from '../app/app';
import type { TaskRequest } from '../protocol/message';
import type { ResultBackend } from '../backends/backend';
import { AsyncResult } from '../producer/asyncResult';
import { GroupResult } from '../producer/groupResult';
import { chordBackendFor } from './chordBackends';
import { messageArgs, sendOptionsFor } from './send';
import type { CanvasHost, ChordBackend, ParentTask, ResultNode, SigOptions } from './types';

export class AppCanvasHost implements CanvasHost {
  readonly chords: ChordBackend;

  constructor(
    private readonly app: Celeriac,
    private readonly backend: ResultBackend | null,
    readonly oid: string,
    readonly parent: ParentTask | null = null,
  ) {
    this.chords = chordBackendFor(backend, this);
  }

  uuid(): string {
    return randomUUID();
  }

  async send(name: string, args: readonly unknown[], kwargs: Record<string, unknown>, options: SigOptions): Promise<void> {
    const opts = sendOptionsFor(this.app, name, options, this.oid, this.parent);
    const body = messageArgs(args, kwargs);
    await this.app.sendTask(name, body.args, body.kwargs, { ...opts, headers: { ...opts.headers, ...body.headers } });
  }

  result(id: string): AsyncResult {
    return new AsyncResult(id, this.backend);
  }

  groupResult(id: string, results: ResultNode[]): GroupResult {
    return new GroupResult(id, results);
  }

  /** The same broker and backend, sending on behalf of a running task. */
  forParent(parent: ParentTask): AppCanvasHost {
    return new AppCanvasHost(this.app, this.backend, this.oid, parent);
  }
}

/**
 * The host a running task sends through (Task.add_to_chord): the task is the parent of what it
 * sends and gives its root id. Its reply_to fallback is a fresh id nobody reads, as the worker's.
 */
export async function taskHost(app: Celeriac, request: TaskRequest): Promise<AppCanvasHost> {
  return new AppCanvasHost(app, await app.backend(), randomUUID(), { id: request.id, rootId: request.rootId ?? request.id, children: [] });
}

/** A producer's host: rpc:// replies come to its reply queue, other backends need only an id. */
export async function producerHost(app: Celeriac): Promise<AppCanvasHost> {
  const backend = await app.backend();
  const oid = backend?.replyQueue ? await backend.replyQueue() : randomUUID();
  return new AppCanvasHost(app, backend, oid);
}
