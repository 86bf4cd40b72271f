/**
 * Running the interop venv's Python (with tests/interop on PYTHONPATH, so `import pyapp` works).
 *
 *   runPython(script: string, opts?: PyOptions): Promise<PyResult>
 *     script is Python source (run with -c). Resolves with { stdout, stderr, code } whatever the
 *     exit code; rejects only when the process cannot start or outlives timeoutMs (default 30 s).
 *   runPyJson<T>(script: string, opts?: PyOptions): Promise<T>
 *     as runPython, but requires exit code 0 and parses the LAST non-empty stdout line as JSON;
 *     throws with stdout and stderr in the message otherwise.
 *   pyClient<T>(command: object, opts?: PyOptions): Promise<T>
 *     runs tests/interop/client.py with `command` as JSON on stdin and returns its JSON answer
 *     (see client.py for the ops). Set BROKER_URL / RESULT_BACKEND in opts.env.
 *
 *   PyOptions: { env?: Record<string, string>, timeoutMs?: number, cwd?: string, input?: string }
 *     env is merged over process.env; cwd defaults to tests/interop; input is written to stdin.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { INTEROP_DIR, pythonBin } from './env';

export interface PyOptions {
  env?: Record<string, string>;
  timeoutMs?: number;
  cwd?: string;
  input?: string;
}

export interface PyResult {
  stdout: string;
  stderr: string;
  code: number | null;
}

function pyEnv(extra: Record<string, string> | undefined): NodeJS.ProcessEnv {
  const inherited = process.env.PYTHONPATH;
  return {
    ...process.env,
    PYTHONPATH: inherited ? `${INTEROP_DIR}${path.delimiter}${inherited}` : INTEROP_DIR,
    PYTHONUNBUFFERED: '1',
    // No __pycache__ dirs in the source tree.
    PYTHONDONTWRITEBYTECODE: '1',
    ...extra,
  };
}

function runArgs(args: string[], opts: PyOptions): Promise<PyResult> {
  const timeoutMs = opts.timeoutMs ?? 30_000;
  return new Promise((resolve, reject) => {
    const child = spawn(pythonBin(), args, {
      cwd: opts.cwd ?? INTEROP_DIR,
      env: pyEnv(opts.env),
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString('utf8')));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`python timed out after ${timeoutMs} ms\nstdout:\n${stdout}\nstderr:\n${stderr}`));
    }, timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ stdout, stderr, code });
    });
    // A script that never reads stdin may exit before we finish writing: ignore EPIPE.
    child.stdin.on('error', () => undefined);
    child.stdin.end(opts.input ?? '');
  });
}

export function runPython(script: string, opts: PyOptions = {}): Promise<PyResult> {
  return runArgs(['-c', script], opts);
}

function parseLastJson<T>(res: PyResult, what: string): T {
  const describe = (why: string): Error =>
    new Error(`${what}: ${why} (exit code ${res.code})\nstdout:\n${res.stdout}\nstderr:\n${res.stderr}`);
  if (res.code !== 0) throw describe('failed');
  const lines = res.stdout.split('\n').filter((l) => l.trim() !== '');
  const last = lines[lines.length - 1];
  if (last === undefined) throw describe('printed nothing');
  try {
    return JSON.parse(last) as T;
  } catch {
    throw describe('last stdout line is not JSON');
  }
}

export async function runPyJson<T = unknown>(script: string, opts: PyOptions = {}): Promise<T> {
  return parseLastJson<T>(await runPython(script, opts), 'python script');
}

export async function pyClient<T = unknown>(command: object, opts: PyOptions = {}): Promise<T> {
  const res = await runArgs([path.join(INTEROP_DIR, 'client.py')], { ...opts, input: JSON.stringify(command) });
  return parseLastJson<T>(res, `client.py ${JSON.stringify(command)}`);
}
