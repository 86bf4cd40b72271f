/**
 * A real Celeriac worker process (the CLI, run from source through tsx's require hook), for
 * interop tests against Python producers and for crash tests (kill -9 a real process).
 *
 *   startCeleriacWorker(opts): Promise<ProcessHandle>   resolves once it logs `ready.`
 *   celeriacCli(args, env?, { input?, entry?, cwd? }): Promise<{stdout, stderr, code}>   one-shot CLI run
 *     (e.g. `call`; the full `celeriac` command unless entry is 'runtime', the runtime's program alone)
 */
import path from 'node:path';
import { spawn } from 'node:child_process';
import { PROJECT_ROOT } from './env';
import { type ProcessHandle, startProcess } from './processes';

export interface CeleriacWorkerOptions {
  brokerUrl: string;
  backendUrl?: string;
  queues?: string[];
  concurrency?: number;
  hostname?: string;
  /** Task module (-A), relative to the project root. */
  app?: string;
  extraArgs?: string[];
  /** Extra environment: e.g. CELERIAC_TEST_ACKS_LATE used by tests/interop/tasks.ts. */
  env?: Record<string, string>;
  timeoutMs?: number;
}

// The full `celeriac` command (runtime + domain commands), as the bin runs it.
const CLI = path.join(PROJECT_ROOT, 'scripts', 'celeriac.ts');
let counter = 0;

function cliEnv(extra: Record<string, string> = {}): Record<string, string> {
  // An isolated env: no .env file, no APP_ENV from the developer's shell, pretty log lines.
  return { APP_ENV: 'development', CELERIAC_LOG_LEVEL: 'info', ...extra };
}

export async function startCeleriacWorker(opts: CeleriacWorkerOptions): Promise<ProcessHandle> {
  counter += 1;
  const args = ['-r', 'tsx/cjs', CLI, 'worker', '-b', opts.brokerUrl, '--result-backend', opts.backendUrl ?? ''];
  args.push('-n', opts.hostname ?? `celeriac${process.pid}-${counter}@%h`);
  if (opts.queues) args.push('-Q', opts.queues.join(','));
  if (opts.concurrency) args.push('-c', String(opts.concurrency));
  if (opts.app) args.push('-A', opts.app);
  args.push(...(opts.extraArgs ?? []));
  const handle = startProcess(process.execPath, args, {
    cwd: PROJECT_ROOT,
    env: cliEnv(opts.env),
    readyPattern: /ready\./,
    timeoutMs: opts.timeoutMs ?? 30_000,
  });
  await handle.waitReady();
  return handle;
}

export interface CliRunOptions {
  /** Standard input for the command (closed right away when absent). */
  input?: string;
  /** 'runtime': workers/cli/main.ts (the runtime's program alone) instead of the full command. */
  entry?: 'runtime' | 'composed';
  /** Where it runs (default: the project root). */
  cwd?: string;
}

export function celeriacCli(args: string[], env: Record<string, string> = {}, opts: CliRunOptions = {}): Promise<{ stdout: string; stderr: string; code: number | null }> {
  const entry = opts.entry === 'runtime' ? path.join(PROJECT_ROOT, 'workers', 'cli', 'main.ts') : CLI;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-r', require.resolve('tsx/cjs'), entry, ...args], { cwd: opts.cwd ?? PROJECT_ROOT, env: { ...process.env, ...cliEnv(env) } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ stdout, stderr, code }));
    child.stdin.end(opts.input ?? '');
  });
}

/** The full `celeriac` program (scripts/celeriac.ts): the runtime's commands plus the domain's (`jobs`, `climate-api`). */
export const CELERIAC_PROGRAM = CLI;
