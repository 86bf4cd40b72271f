/**
 * The broker suite's idle memory reading, the same for every contender and both brokers: a fresh
 * worker is started on an EMPTY queue (its own Redis db, or its own vhost), and once it consumes
 * and its process group has all its processes (prefork forks its children before it consumes),
 * it is left alone for `settleMs` and the group's RSS is summed. The drains themselves start
 * their workers on full queues, so this needs a worker of its own; it is stopped right after.
 */
import { performance } from 'node:perf_hooks';
import { log, logWorkerOutput, sleep, stop, workerMemory, type Proc } from './common';

export interface IdleProbe {
  label: string;
  /** Starts the worker, pointed at an empty queue. */
  spawn(): Proc;
  /** Resolves once the worker consumes: Redis, blocked in BRPOP; AMQP, a consumer on `celery`. */
  consuming(deadlineMs: number): Promise<void>;
  /** Processes in the group once it consumes. */
  processes: number;
}

/** Idle RSS in KiB, summed over the worker's process group. */
export async function idleRss(p: IdleProbe, settleMs: number, timeoutMs = 60_000): Promise<number> {
  const deadline = performance.now() + timeoutMs;
  const worker = p.spawn();
  try {
    // A worker that dies at start-up must not leave us waiting for the deadline.
    const died = worker.exit.then(() => 'exited' as const);
    const consuming = p.consuming(deadline).then(() => 'consuming' as const);
    consuming.catch(() => undefined); // if the worker died first, its later timeout is not an error
    if ((await Promise.race([consuming, died])) === 'exited') {
      throw new Error(`${p.label} exited before it consumed:\n${worker.output()}`);
    }
    while (workerMemory(worker.pid).length < p.processes) {
      if (performance.now() > deadline) throw new Error(`${p.label}: fewer than ${p.processes} processes after ${timeoutMs / 1000} s`);
      await sleep(50);
    }
    await sleep(settleMs);
    const procs = workerMemory(worker.pid);
    const kib = procs.reduce((sum, x) => sum + x.rssKiB, 0);
    log(`${p.label}: idle RSS ${(kib / 1024).toFixed(1)} MiB (${procs.map((x) => `${x.comm} ${(x.rssKiB / 1024).toFixed(1)}`).join(' + ')})`);
    return kib;
  } finally {
    await stop(worker);
    logWorkerOutput(worker);
  }
}

/** Redis: a client blocked in BRPOP on db `db` (every contender's transport blocks there when idle). */
export function blockedInBrpop(clientList: string, db: number): boolean {
  return clientList.split('\n').some((l) => /\bcmd=brpop\b/.test(l) && /\bflags=\S*b/.test(l) && new RegExp(`\\bdb=${db}\\b`).test(l));
}
