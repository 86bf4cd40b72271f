/**
 * Callers waiting for task results, keyed by task id: each resolves on the first ready meta
 * delivered for its id, or rejects after its timeout. Shared by the push-based backends (Redis
 * pub/sub, rpc reply queues).
 */
import { READY_STATES, type ResultMeta } from './backend';
import { TimeoutError } from './errors';

export class ResultWaiters {
  private readonly byId = new Map<string, Set<(meta: ResultMeta) => void>>();

  /** @param onIdle called when the last waiter for an id is gone (e.g. to unsubscribe). */
  constructor(private readonly onIdle: (taskId: string) => void = () => undefined) {}

  /** Wait for `taskId`; `start` runs once the waiter is registered (subscribe, then read). */
  wait(taskId: string, timeoutMs: number, start?: (deliver: (meta: ResultMeta) => void) => Promise<void>): Promise<ResultMeta> {
    return new Promise<ResultMeta>((resolve, reject) => {
      const set = this.byId.get(taskId) ?? new Set();
      let timer: NodeJS.Timeout | undefined;
      const done = (meta: ResultMeta): void => {
        if (!READY_STATES.has(meta.status)) return;
        cleanup();
        resolve(meta);
      };
      const cleanup = (): void => {
        if (timer) clearTimeout(timer);
        set.delete(done);
        if (set.size === 0) {
          this.byId.delete(taskId);
          this.onIdle(taskId);
        }
      };
      set.add(done);
      this.byId.set(taskId, set);
      if (timeoutMs > 0) {
        timer = setTimeout(() => {
          cleanup();
          reject(new TimeoutError(`result of task ${taskId} not ready after ${timeoutMs} ms`));
        }, timeoutMs);
      }
      start?.(done).catch((err: Error) => {
        cleanup();
        reject(err);
      });
    });
  }

  /** A meta arrived for `taskId`: wake its waiters (non-ready states are ignored by them). */
  deliver(taskId: string, meta: ResultMeta): void {
    for (const w of [...(this.byId.get(taskId) ?? [])]) w(meta);
  }
}
