/**
 * CPU-bound tasks for `npm run bench -- --suite pools` (loaded into the worker with
 * `-A scripts/bench/cpuTasks.ts`, and by every pool thread/process). pybench.py has the same two
 * tasks under the same names, written as the same loops, so both languages do the same work:
 *
 *   bench.primes(bound)  count primes below `bound` by trial division. A plain loop in the
 *                        language itself: it measures the language (V8's JIT against CPython's
 *                        interpreter) as much as the pool.
 *   bench.sha256(k)      sha256 of a fixed 64 KiB buffer, k times; returns the last hex digest.
 *                        The hashing is OpenSSL on both sides, so what differs is mostly the
 *                        pool's own cost per task.
 *
 * The pure functions are exported so the bench can compute the expected results and check every
 * stored result, Python's included.
 */
import { createHash } from 'node:crypto';
import type { Celeriac } from '../../workers/app/app';

/** The same bytes as pybench.py's buffer: i % 251 for i in 0..65535. */
export const SHA_BUFFER_BYTES = 65536;
const SHA_BUFFER = Buffer.from(Array.from({ length: SHA_BUFFER_BYTES }, (_, i) => i % 251));

/** Primes below `bound`, by trial division (the loop pybench.py's count_primes runs too). */
export function countPrimes(bound: number): number {
  let count = 0;
  for (let n = 2; n < bound; n++) {
    let d = 2;
    while (d * d <= n && n % d !== 0) d++;
    if (d * d > n) count++;
  }
  return count;
}

/** sha256 of the fixed buffer, k times over; the last digest, in hex. */
export function sha256Repeat(k: number): string {
  let digest = '';
  for (let i = 0; i < k; i++) digest = createHash('sha256').update(SHA_BUFFER).digest('hex');
  return digest;
}

export function register(app: Celeriac) {
  return {
    primes: app.task('bench.primes', (bound: number) => countPrimes(bound), { params: ['bound'] }),
    sha256: app.task('bench.sha256', (k: number) => sha256Repeat(k), { params: ['k'] }),
  };
}
