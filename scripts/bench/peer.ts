/**
 * celery-node as a contender of the broker suite, on the bench's side: its label, its command
 * line (the runner celerynode.ts, started as its own process like every worker), its own-client
 * round trips, and what it cannot do (reported as gaps in the table, never as a faked row).
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BENCH_DIR, ROOT, cleanEnv, latencyOf, type ContenderSpec, type Gap, type LatencyResult } from './common';

const VERSION = ((): string => {
  try {
    return (JSON.parse(readFileSync(join(ROOT, 'node_modules/celery-node/package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return '?';
  }
})();

export const CELERYNODE: ContenderSpec = {
  id: 'celerynode',
  // Neither broker of celery-node has a concurrency limit or a prefetch bound (see the doc).
  label: `celery-node ${VERSION} (no concurrency limit)`,
  kind: 'peer',
  processes: 1,
};

export const CELERYNODE_CLIENT = 'celery-node client sendTask().get(), 1 ms polls';

/** Why celery-node has no row in a setting. */
export const CELERYNODE_CANNOT = {
  ignored: 'cannot ignore results: createWorker(broker, backend) always stores every result, and a task has no ignore_result',
};

export function celerynodeGap(broker: 'redis' | 'amqp', results: string, why: string): Gap {
  const { processes: _, ...contender } = CELERYNODE;
  return { broker, results, contender, why };
}

export function celerynodeArgv(brokerUrl: string, backendUrl: string, noDelay: boolean): { cmd: string; args: string[]; cwd: string; env: NodeJS.ProcessEnv } {
  return {
    cmd: process.execPath,
    // Under tsx, like Celeriac: both Node workers then carry the same loader in their RSS.
    args: ['-r', 'tsx/cjs', join(BENCH_DIR, 'celerynode.ts'), 'worker', brokerUrl, backendUrl, ...(noDelay ? ['--nodelay'] : [])],
    cwd: ROOT,
    env: cleanEnv(),
  };
}

/** Sequential round trips through celery-node's own client (a process of its own, like pybench's). */
export function celerynodeLatency(brokerUrl: string, backendUrl: string, n: number, warmup: number, noDelay: boolean): Promise<LatencyResult> {
  return new Promise((res, rej) => {
    execFile(
      process.execPath,
      ['-r', 'tsx/cjs', join(BENCH_DIR, 'celerynode.ts'), 'latency', brokerUrl, backendUrl, String(n), String(warmup), ...(noDelay ? ['--nodelay'] : [])],
      { cwd: ROOT, env: cleanEnv(), encoding: 'utf8', timeout: 300_000 },
      (err, stdout, stderr) => {
        if (err) rej(new Error(`celerynode latency: ${err.message}\n${stderr}`));
        else res(latencyOf((JSON.parse(stdout.trim().split('\n').pop()!) as { ms: number[] }).ms));
      },
    );
  });
}
