/**
 * progressSeen(res, timeoutMs?): the `info` of every PROGRESS state seen while polling a result
 * until SUCCESS (every 10 ms). State and info come from one meta read: reading them in two calls
 * can pair PROGRESS with the final result.
 */
import type { AsyncResult } from '../../workers/producer/asyncResult';

export async function progressSeen(res: AsyncResult<unknown>, timeoutMs = 15_000): Promise<unknown[]> {
  const seen: unknown[] = [];
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const meta = await res.meta();
    const state = meta?.status ?? 'PENDING';
    if (state === 'PROGRESS') seen.push(meta!.result);
    if (state === 'SUCCESS' || Date.now() > deadline) return seen;
    await new Promise((r) => setTimeout(r, 10));
  }
}
