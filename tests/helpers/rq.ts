/**
 * The rq interop tests' two sides: `celeriac worker --rq` as a real process (scripts/celeriac.ts,
 * the full command) and Python rq through tests/interop/rq_client.py.
 *
 *   startRqWorker({ url, queues, name, concurrency?, extraArgs? }): Promise<ProcessHandle>
 *   rqOps<T>(url, ops): Promise<T>   runs rq_client.py with the ops, returns its list of answers
 */
import path from 'node:path';
import { PROJECT_ROOT, INTEROP_DIR } from './env';
import { type ProcessHandle, startProcess } from './processes';
import { runPyJson } from './python';

export interface RqWorkerSpec {
  url: string;
  queues: string[];
  name: string;
  concurrency?: number;
  extraArgs?: string[];
}

export async function startRqWorker(spec: RqWorkerSpec): Promise<ProcessHandle> {
  const args = ['-r', 'tsx/cjs', path.join(PROJECT_ROOT, 'scripts', 'celeriac.ts'), 'worker', '--rq', '-b', spec.url, '-Q', spec.queues.join(','), '-n', spec.name];
  args.push('-A', 'tests/fixtures/rqTasks.ts', '-c', String(spec.concurrency ?? 1), ...(spec.extraArgs ?? []));
  const handle = startProcess(process.execPath, args, {
    cwd: PROJECT_ROOT,
    env: { APP_ENV: 'development', CELERIAC_LOG_LEVEL: 'info' },
    readyPattern: /ready\./,
    timeoutMs: 60_000,
  });
  await handle.waitReady();
  return handle;
}

export type RqOp = { op: string } & Record<string, unknown>;

export function rqOps<T extends unknown[]>(url: string, ops: RqOp[]): Promise<T> {
  const script = `import runpy, sys; sys.argv = ['rq_client']; runpy.run_path(${JSON.stringify(path.join(INTEROP_DIR, 'rq_client.py'))}, run_name='__main__')`;
  return runPyJson<T>(script, { input: JSON.stringify({ url, ops }), timeoutMs: 120_000 });
}
