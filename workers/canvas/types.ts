/**
 * Shapes shared by the canvas: a signature as it travels in messages (Celery's Signature dict),
 * and the host a canvas is applied through (a producer app, or the worker running a task).
 */
import type { AsyncResult } from '../producer/asyncResult';
import type { GroupResult } from '../producer/groupResult';

/** Celery execution options (apply_async keywords) as carried in a signature's `options`. */
export type SigOptions = Record<string, unknown>;

/** A signature serialized the way Celery writes it into messages (a dict subclass in Python). */
export interface SignatureDict {
  task: string;
  args: unknown[];
  kwargs: Record<string, unknown>;
  options: SigOptions;
  subtask_type: string | null;
  immutable: boolean;
  [key: string]: unknown;
}

export type ResultNode = AsyncResult | GroupResult;

/** The task currently running on this worker, when a canvas is applied from inside one. */
export interface ParentTask {
  id: string;
  rootId: string | null;
  /** Results of tasks sent while it runs (Celery's request.children, stored as `children`). */
  children: ResultNode[];
  /** delivery_info.priority, for task_inherit_parent_priority. */
  priority?: number | null;
}

/** How a canvas reaches the broker and the result backend. */
export interface CanvasHost {
  /** Celery's app.thread_oid: the reply_to a frozen signature falls back on. */
  readonly oid: string;
  uuid(): string;
  /** Publish one task message from Celery apply_async options (task_id, link, chord, queue...). */
  send(name: string, args: readonly unknown[], kwargs: Record<string, unknown>, options: SigOptions): Promise<void>;
  result(id: string): AsyncResult;
  groupResult(id: string, results: ResultNode[]): GroupResult;
  readonly chords: ChordBackend;
  /** Set while a worker dispatches for a running task: root/parent ids and the children trail. */
  readonly parent: ParentTask | null;
}

/** What a result backend does for chords (RedisBackend, the chord_unlock fallback, or none). */
export interface ChordBackend {
  /** Throws when the backend cannot run chords (rpc://, no backend), as Celery does. */
  ensureAllowed(): void;
  /** Before the last header task is sent: how many header results the chord waits for. */
  setChordSize(groupId: string, size: number): Promise<void>;
  /** After the header is frozen, before it is sent (Redis: save nested groups; others: chord_unlock). */
  applyChord(groupId: string, results: ResultNode[], body: SignatureDict, opts: ApplyChordOptions): Promise<void>;
  /**
   * Task.add_to_chord: one more header result to wait for. Only Redis has it; without it the
   * caller raises NotImplementedError, as Celery's BaseBackend.add_to_chord does.
   */
  addToChord?(groupId: string): Promise<void>;
}

export interface ApplyChordOptions {
  interval: number | null;
  countdown: number;
  maxRetries: number | null;
}
