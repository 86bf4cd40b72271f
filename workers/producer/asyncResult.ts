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

export class AsyncResult<R = unknown> {
  constructor(
    readonly id: string,
    private readonly backend: ResultBackend | null,
  ) {}

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

  /** Wait for the result; a FAILURE throws RemoteTaskError (propagate=false returns the exception). */
  async get(opts: { timeout?: number; propagate?: boolean } = {}): Promise<R> {
    const meta = await this.requireBackend().waitFor(this.id, opts.timeout ? opts.timeout * 1000 : 0);
    if (meta.status === 'SUCCESS') return meta.result as R;
    const exc = meta.result;
    const error = isSerializedException(exc)
      ? new RemoteTaskError(exc, this.id, meta.traceback)
      : new RemoteTaskError({ exc_type: meta.status, exc_message: [String(exc)], exc_module: null }, this.id, meta.traceback);
    if (opts.propagate === false) return error as unknown as R;
    throw error;
  }

  async forget(): Promise<void> {
    await this.requireBackend().forget(this.id);
  }
}
