/** A handle on a sent task's result, as Celery's AsyncResult (get, state, info, ready). */
import type { ResultBackend, ResultMeta, SerializedException } from '../backends/backend';
import { READY_STATES } from '../backends/backend';
import { PythonError } from '../app/errors';

/** The error AsyncResult.get() throws for a FAILURE: same class name and message as stored. */
export class RemoteTaskError extends PythonError {
  constructor(
    exc: SerializedException,
    readonly taskId: string,
    readonly remoteTraceback: string | null,
  ) {
    const args = Array.isArray(exc.exc_message) ? exc.exc_message : [exc.exc_message];
    const message = args.length === 1 ? String(args[0]) : args.map(String).join(', ');
    super(exc.exc_type, message, exc.exc_module, args);
  }
}

function isSerializedException(v: unknown): v is SerializedException {
  return typeof v === 'object' && v !== null && typeof (v as SerializedException).exc_type === 'string';
}

/** Celery's result tuple, as stored in `children` and chord_unlock's `result`: ((id, parent), members). */
export type ResultTuple = [[string, ResultTuple | null], ResultTuple[] | null];

/** What a result's parent can be (a canvas step before it): another result or a group of them. */
export interface ResultLike {
  readonly id: string;
  parent: ResultLike | null;
  asTuple(): ResultTuple;
}

/** The error of the first failed result up the parent chain (members of a group included). */
async function failedParent(node: ResultLike | null): Promise<RemoteTaskError | null> {
  const chain: ResultLike[] = [];
  for (let n = node; n; n = n.parent) chain.unshift(n);
  for (const n of chain) {
    const members = 'results' in n ? (n as { results: ResultLike[] }).results : [n];
    for (const m of members) {
      const backend = m instanceof AsyncResult ? m.resultBackend : null;
      if (!backend) continue;
      const meta = await backend.get(m.id);
      if (meta && (meta.status === 'FAILURE' || meta.status === 'REVOKED')) {
        const exc = meta.result;
        return isSerializedException(exc) ? new RemoteTaskError(exc, m.id, meta.traceback) : new RemoteTaskError({ exc_type: meta.status, exc_message: [String(exc)], exc_module: null }, m.id, meta.traceback);
      }
    }
  }
  return null;
}

export class AsyncResult<R = unknown> implements ResultLike {
  /** The result of the step before this one in a chain (Celery's AsyncResult.parent). */
  parent: ResultLike | null = null;

  constructor(
    readonly id: string,
    private readonly backend: ResultBackend | null,
  ) {}

  asTuple(): ResultTuple {
    return [[this.id, this.parent ? this.parent.asTuple() : null], null];
  }

  /** The backend this result reads from (a GroupResult waits on its members through it). */
  get resultBackend(): ResultBackend | null {
    return this.backend;
  }

  private requireBackend(): ResultBackend {
    if (!this.backend) throw new Error('no result backend configured: results are disabled (set result_backend)');
    return this.backend;
  }

  async meta(): Promise<ResultMeta | null> {
    return this.requireBackend().get(this.id);
  }

  /** PENDING until the worker stores anything (Celery cannot tell unknown from waiting). */
  async state(): Promise<string> {
    return (await this.meta())?.status ?? 'PENDING';
  }

  /** The result, or the meta of a custom state (PROGRESS {current,total}), or the exception. */
  async info(): Promise<unknown> {
    return (await this.meta())?.result ?? null;
  }

  async ready(): Promise<boolean> {
    return READY_STATES.has(await this.state());
  }

  /**
   * Wait for the result; a FAILURE throws RemoteTaskError (propagate=false returns the exception).
   * As Celery's follow_parents: while waiting, a failed earlier step of the canvas (a chain's
   * previous task, a chord's header) throws its own error at once.
   */
  async get(opts: { timeout?: number; propagate?: boolean } = {}): Promise<R> {
    const wait = this.requireBackend().waitFor(this.id, opts.timeout ? opts.timeout * 1000 : 0);
    const meta = opts.propagate === false || !this.parent ? await wait : await this.raceParents(wait);
    if (meta.status === 'SUCCESS') return meta.result as R;
    const exc = meta.result;
    const error = isSerializedException(exc)
      ? new RemoteTaskError(exc, this.id, meta.traceback)
      : new RemoteTaskError({ exc_type: meta.status, exc_message: [String(exc)], exc_module: null }, this.id, meta.traceback);
    if (opts.propagate === false) return error as unknown as R;
    throw error;
  }

  /** Resolve with `wait`, unless a parent is seen failed first (checked now, then every 500 ms). */
  private async raceParents(wait: Promise<ResultMeta>): Promise<ResultMeta> {
    let timer: NodeJS.Timeout | undefined;
    const watch = new Promise<never>((_, reject) => {
      const check = async (): Promise<void> => {
        const failed = await failedParent(this.parent);
        if (failed) reject(failed);
        else timer = setTimeout(() => void check().catch(() => undefined), 500);
      };
      void check().catch(() => undefined);
    });
    try {
      const meta = await Promise.race([wait, watch]);
      // A step before this one failed first (a chord's header before its body): its error wins.
      if (meta.status !== 'SUCCESS') {
        const failed = await failedParent(this.parent);
        if (failed) throw failed;
      }
      return meta;
    } finally {
      if (timer) clearTimeout(timer);
      wait.catch(() => undefined);
    }
  }

  async forget(): Promise<void> {
    await this.requireBackend().forget(this.id);
  }
}
