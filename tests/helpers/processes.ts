/**
 * Real subprocesses for integration tests (Python Celery workers, Celeriac workers, ...).
 *
 *   startProcess(cmd: string, args: string[], opts?: StartOptions): ProcessHandle
 *     opts: { env?, cwd?, readyPattern?: RegExp, timeoutMs? (for waitReady, default 30 s) }
 *     env is merged over process.env.
 *   handle.waitReady(): Promise<void>   resolves when readyPattern matches stdout+stderr (at once
 *                                       without a pattern); rejects, with the output, when the
 *                                       process exits first or timeoutMs passes
 *   handle.output(): string             all stdout+stderr so far (interleaved as received)
 *   handle.waitForOutput(pattern, ms?)  resolves once the output matches, else throws with it
 *   handle.kill(signal = 'SIGTERM')     signals the whole process group
 *   handle.stop(timeoutMs = 15000): Promise<ExitInfo>   SIGTERM, then SIGKILL if still running
 *   handle.exited: Promise<ExitInfo>    { code, signal } once the process has exited
 *   killAll(): Promise<void>            stops every live handle; registered as afterAll
 *                                       automatically when imported in a jest test file
 *
 * Each process gets its own process group (detached) so that a signal also reaches what it
 * spawns itself (celery's prefork children, tsx's node child). Its pid is recorded for
 * globalTeardown, which SIGKILLs whatever a test file left running.
 */
import { ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface StartOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  readyPattern?: RegExp;
  timeoutMs?: number;
}

export interface ProcessHandle {
  readonly pid: number;
  readonly exited: Promise<ExitInfo>;
  waitReady(): Promise<void>;
  output(): string;
  /** Resolves once the output matches (log lines come after the work they report); throws with the output after timeoutMs. */
  waitForOutput(pattern: RegExp | string, timeoutMs?: number): Promise<void>;
  kill(signal?: NodeJS.Signals): void;
  stop(timeoutMs?: number): Promise<ExitInfo>;
}

const live = new Set<ProcessHandle>();

function recordPid(pid: number): void {
  const file = process.env.CELERIAC_TEST_PIDS_FILE;
  if (file) fs.appendFileSync(file, `${pid}\n`);
}

function signalGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    try {
      child.kill(signal);
    } catch {
      /* already gone */
    }
  }
}

export function startProcess(cmd: string, args: string[], opts: StartOptions = {}): ProcessHandle {
  const child = spawn(cmd, args, {
    cwd: opts.cwd,
    env: { ...process.env, ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let out = '';
  let exitInfo: ExitInfo | undefined;
  const listeners = new Set<() => void>();
  const notify = (): void => listeners.forEach((l) => l());
  child.stdout?.on('data', (d: Buffer) => ((out += d.toString('utf8')), notify()));
  child.stderr?.on('data', (d: Buffer) => ((out += d.toString('utf8')), notify()));

  const exited = new Promise<ExitInfo>((resolve) => {
    child.on('error', (err) => {
      out += `\n[startProcess] ${cmd}: ${err.message}\n`;
      exitInfo = { code: null, signal: null };
      resolve(exitInfo);
      notify();
    });
    // 'close' rather than 'exit': all output has been read by then.
    child.on('close', (code, signal) => {
      exitInfo = exitInfo ?? { code, signal };
      resolve(exitInfo);
      notify();
    });
  });
  if (child.pid !== undefined) recordPid(child.pid);

  const describe = `${cmd} ${args.join(' ')}`;
  const handle: ProcessHandle = {
    pid: child.pid ?? -1,
    exited,
    output: () => out,
    waitForOutput: async (pattern, timeoutMs = 10_000) => {
      const matches = (): boolean => (typeof pattern === 'string' ? out.includes(pattern) : pattern.test(out));
      const deadline = Date.now() + timeoutMs;
      while (!matches()) {
        if (Date.now() > deadline) throw new Error(`${describe} never logged ${String(pattern)}; output:\n${out}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    kill: (signal = 'SIGTERM') => {
      if (!exitInfo) signalGroup(child, signal);
    },
    waitReady: () =>
      new Promise<void>((resolve, reject) => {
        const timeoutMs = opts.timeoutMs ?? 30_000;
        const finish = (err?: Error): void => {
          clearTimeout(timer);
          listeners.delete(check);
          if (err) reject(err);
          else resolve();
        };
        const check = (): void => {
          if (!opts.readyPattern || opts.readyPattern.test(out)) finish();
          else if (exitInfo) {
            finish(new Error(`${describe} exited (${JSON.stringify(exitInfo)}) before ready:\n${out}`));
          }
        };
        const timer = setTimeout(
          () => finish(new Error(`${describe} not ready after ${timeoutMs} ms; output:\n${out}`)),
          timeoutMs,
        );
        listeners.add(check);
        check();
      }),
    stop: async (timeoutMs = 15_000) => {
      handle.kill('SIGTERM');
      let timer: NodeJS.Timeout | undefined;
      const forced = new Promise<void>((resolve) => {
        timer = setTimeout(() => {
          handle.kill('SIGKILL');
          resolve();
        }, timeoutMs);
      });
      await Promise.race([exited, forced]);
      clearTimeout(timer);
      return exited;
    },
  };
  live.add(handle);
  void exited.then(() => {
    live.delete(handle);
    // The leader is gone; anything it left behind in its group goes too.
    signalGroup(child, 'SIGKILL');
  });
  return handle;
}

export async function killAll(): Promise<void> {
  await Promise.all([...live].map((h) => h.stop(5_000)));
}

// Every test file that imports this module gets the cleanup without having to remember it.
if (typeof afterAll === 'function') afterAll(killAll);
