/**
 * One handle a test file leaks (a socket, a timer, a child's pipe) keeps jest's process alive once
 * the run is over: jest prints "did not exit one second after the test run has completed" and
 * waits for ever. CI once hit its 90-minute limit that way after a run in which all 642 tests had
 * passed, and the leak did not happen on any local run. globalTeardown arms this watchdog: if the
 * process is still alive `graceMs` later, it prints what keeps it alive (so the leak can be found
 * from the CI log) and exits with the run's own status (jest sets it in an 'exit' listener when
 * the run failed). The timer is unref'd: it never keeps the process alive itself.
 */
import fs from 'node:fs';
import { ChildProcess } from 'node:child_process';
import { Server, Socket } from 'node:net';

function describeHandle(h: unknown): string {
  if (h instanceof ChildProcess) return `child process ${h.pid}: ${h.spawnargs.join(' ').slice(0, 300)}`;
  if (h instanceof Socket) {
    if (h.remotePort) return `socket ${h.localAddress}:${h.localPort} -> ${h.remoteAddress}:${h.remotePort}`;
    const fd = (h as unknown as { _handle?: { fd?: number } })._handle?.fd;
    return `pipe or unconnected socket (fd ${fd ?? '?'})`;
  }
  if (h instanceof Server) return `server listening on ${JSON.stringify(h.address())}`;
  const timer = h as { _idleTimeout?: number; _onTimeout?: () => void; constructor?: { name?: string } };
  if (typeof timer._idleTimeout === 'number') {
    return `timer of ${timer._idleTimeout} ms: ${String(timer._onTimeout).replace(/\s+/g, ' ').slice(0, 200)}`;
  }
  return timer.constructor?.name ?? typeof h;
}

/** Live processes whose parent is this one, with their command lines (a child's pipe holds us). */
function childProcesses(): string[] {
  const out: string[] = [];
  for (const pid of fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
      if (Number(/^PPid:\s+(\d+)/m.exec(status)?.[1]) !== process.pid) continue;
      out.push(`${pid}: ${fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ').trim().slice(0, 300)}`);
    } catch {
      /* gone meanwhile */
    }
  }
  return out;
}

export function armExitWatchdog(graceMs = 30_000): void {
  const timer = setTimeout(() => {
    const internals = process as unknown as { _getActiveHandles(): unknown[] };
    const lines = [
      `[exit watchdog] jest is still running ${graceMs / 1000} s after the test run ended: a test left something open.`,
      `  resources: ${process.getActiveResourcesInfo().join(', ')}`,
      ...internals._getActiveHandles().map((h) => `  handle: ${describeHandle(h)}`),
      ...childProcesses().map((c) => `  child: ${c}`),
      '[exit watchdog] exiting with the run\'s own status',
    ];
    process.stderr.write(`${lines.join('\n')}\n`);
    process.exit();
  }, graceMs);
  timer.unref();
}
