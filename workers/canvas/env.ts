/**
 * What the worker-side canvas code needs from the worker: the app (task registry, broker), the
 * result backend, a canvas host sending on behalf of a task, and a way to store a failure.
 */
import { randomUUID } from 'node:crypto';
import type { AppLogger, Celeriac } from '../app/app';
import type { ResultBackend } from '../backends/backend';
import { buildMeta, formatTraceback, serializeException } from '../backends/meta';
import { AppCanvasHost } from './host';
import type { ParentTask } from './types';

/** The bits of a request a stored failure can carry (Celery builds a Context from the signature). */
export interface FailureContext {
  group?: string | null;
  parentId?: string | null;
  children?: unknown[];
  /** rpc://: where the caller waits for this task's states. */
  replyTo?: string | null;
}

export class CanvasEnv {
  private readonly base: AppCanvasHost;

  constructor(
    readonly app: Celeriac,
    readonly backend: ResultBackend | null,
    readonly hostname: string,
  ) {
    // A worker sends on behalf of its tasks; its own reply_to is only a fallback nobody reads.
    this.base = new AppCanvasHost(app, backend, randomUUID());
  }

  get log(): AppLogger {
    return this.app.log;
  }

  host(parent: ParentTask | null = null): AppCanvasHost {
    return parent ? this.base.forParent(parent) : this.base;
  }

  /** Store FAILURE for a task this worker did not run (a chain step, a chord body). */
  async storeFailure(taskId: string, exc: unknown, traceback: string | null, ctx: FailureContext = {}): Promise<void> {
    if (!this.backend) return;
    const meta = buildMeta(taskId, 'FAILURE', serializeException(exc), {
      traceback: traceback ?? formatTraceback(exc),
      request: { group: ctx.group ?? null, parentId: ctx.parentId ?? null, children: ctx.children ?? [] },
    });
    await this.backend.store(meta, { replyTo: ctx.replyTo ?? undefined, correlationId: taskId });
  }
}
