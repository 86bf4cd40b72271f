/** The one interface every result backend implements (Celery's KeyValueStoreBackend, reduced). */

export type TaskState =
  | 'PENDING'
  | 'RECEIVED'
  | 'STARTED'
  | 'SUCCESS'
  | 'FAILURE'
  | 'RETRY'
  | 'REVOKED'
  | (string & {});

export const READY_STATES: ReadonlySet<string> = new Set(['SUCCESS', 'FAILURE', 'REVOKED']);
export const EXCEPTION_STATES: ReadonlySet<string> = new Set(['FAILURE', 'RETRY', 'REVOKED']);

/** Celery's serialized exception ({"exc_type", "exc_message", "exc_module"}). */
export interface SerializedException {
  exc_type: string;
  exc_message: unknown[];
  exc_module: string | null;
}

/** The document Celery stores under celery-task-meta-<id>. Extended fields when result_extended. */
export interface ResultMeta {
  status: TaskState;
  result: unknown;
  traceback: string | null;
  children: unknown[];
  date_done: string | null;
  task_id: string;
  name?: string | null;
  args?: unknown;
  kwargs?: unknown;
  worker?: string | null;
  retries?: number | null;
  queue?: string | null;
  [key: string]: unknown;
}

/** What the worker knows about the request when it stores a state (for reply_to, extended). */
export interface StoreContext {
  taskName?: string;
  args?: unknown[];
  kwargs?: Record<string, unknown>;
  hostname?: string;
  retries?: number;
  queue?: string;
  replyTo?: string;
  correlationId?: string;
  /**
   * The task's message is already acknowledged (early ack): nothing waits on this store, so rpc://
   * may publish it without a publisher confirm, as Celery does. Unset means the caller may ack
   * only after the store resolves.
   */
  messageAcked?: boolean;
}

export interface ResultBackend {
  readonly kind: string;
  connect(): Promise<void>;
  /** Store (overwrite) the task's meta document; resolves when written (rpc://: see StoreContext.messageAcked). */
  store(meta: ResultMeta, context?: StoreContext): Promise<void>;
  get(taskId: string): Promise<ResultMeta | null>;
  /** Resolve with the meta once the task reaches a ready state; reject on timeout (ms). */
  waitFor(taskId: string, timeoutMs?: number): Promise<ResultMeta>;
  forget(taskId: string): Promise<void>;
  close(): Promise<void>;
  /** rpc:// only: the reply_to queue a producer must put on the tasks it sends. */
  replyQueue?(): Promise<string>;
  /** Backends that keep saved groups (Celery's save_group, mongodb://): the member task ids. */
  saveGroup?(groupId: string, taskIds: readonly string[]): Promise<void>;
  /** Celery's restore_group: the ids saved for `groupId`, or null when nothing was saved. */
  restoreGroup?(groupId: string): Promise<{ id: string; taskIds: string[] } | null>;
}
