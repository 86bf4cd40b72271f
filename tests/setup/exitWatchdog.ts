/**
 * One handle a test file leaks (a socket, a timer, a child's pipe) keeps jest's process alive once
 * the run is over: jest prints "did not exit one second after the test run has completed" and
 * waits for ever. CI once hit its 90-minute limit that way after a run in which all 642 tests had
 * passed; locally it showed once in many full runs (held by one timer). globalTeardown arms this
 * watchdog: if the
 * process is still alive `graceMs` later, it prints what keeps it alive (so the leak can be found
 * from the CI log) and exits with the run's own status (jest sets it in an 'exit' listener when
 * the run failed). The timer is unref'd: it never keeps the process alive itself.
 */
import { createHook } from 'node:async_hooks';
import fs from 'node:fs';
import timers from 'node:timers';
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
  return (h as { constructor?: { name?: string } }).constructor?.name ?? typeof h;
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

/**
 * Timers never show as handles (process._getActiveHandles), and jest runs every test file in this
 * process (maxWorkers 1): a test's forgotten timer keeps it alive. So globalSetup wraps the global
 * setTimeout and setInterval, which each test file's globals read lazily from here, and the same
 * functions of the `timers` module, which libraries import instead (the MongoDB driver's monitors
 * do), and remembers where every interval and every timeout of 1 s or more was made, until it fires
 * or is cleared. A shorter timeout that keeps re-arming itself (a reconnect loop) is caught after
 * the run instead: see recordNewTimers.
 */
const longTimers = new Map<unknown, string>();
const LONG_TIMEOUT_MS = 1_000;

export function recordLongTimers(): void {
  const g = globalThis as unknown as Record<string, (...args: unknown[]) => unknown>;
  const timersModule = timers as unknown as Record<string, (...args: unknown[]) => unknown>;
  const wrap = (name: 'setTimeout' | 'setInterval'): void => {
    const original = g[name]!;
    const wrapped = function (this: unknown, callback: unknown, delay?: unknown, ...rest: unknown[]): unknown {
      const long = name === 'setInterval' || Number(delay) >= LONG_TIMEOUT_MS;
      if (!long || typeof callback !== 'function') return original.call(this, callback, delay, ...rest);
      const where = (new Error().stack ?? '').split('\n').slice(2, 8).join('\n');
      const fn = callback as (...a: unknown[]) => unknown;
      const timer = original.call(
        this,
        function (this: unknown, ...a: unknown[]) {
          if (name === 'setTimeout') longTimers.delete(timer);
          return fn.apply(this, a);
        },
        delay,
        ...rest,
      );
      longTimers.set(timer, `${name}(${String(delay)} ms) made${where ? `\n${where}` : ' (no stack)'}`);
      return timer;
    };
    // util.promisify(setTimeout) and friends read symbol-keyed properties of the original.
    for (const key of Reflect.ownKeys(original)) {
      if (key !== 'length' && key !== 'name' && key !== 'prototype') Reflect.defineProperty(wrapped, key, Reflect.getOwnPropertyDescriptor(original, key)!);
    }
    g[name] = wrapped;
    if (timersModule[name] === original) timersModule[name] = wrapped;
  };
  wrap('setTimeout');
  wrap('setInterval');
  for (const name of ['clearTimeout', 'clearInterval'] as const) {
    const original = g[name]!;
    const wrapped = function (this: unknown, timer: unknown): unknown {
      longTimers.delete(timer);
      return original.call(this, timer);
    };
    g[name] = wrapped;
    if (timersModule[name] === original) timersModule[name] = wrapped;
  }
}

/**
 * Where each timer made after the run ended was made, while it is pending. A leak that re-arms
 * itself (a client retrying a server globalTeardown has stopped, every few hundred ms) makes new
 * ones during the watchdog's grace time, however it makes them: global, `timers` module, or
 * node's own (socket timeouts). Enabled only from globalTeardown on: it costs nothing in tests.
 */
const newTimers = new Map<number, { resource: unknown; where: string }>();

/** The stack's frames outside node's internals and this file: where the timer was asked for. */
function callerFrames(stack: string | undefined): string {
  const frames = (stack ?? '').split('\n').slice(1);
  return frames.filter((f) => !/\(node:|at node:|exitWatchdog/.test(f)).slice(0, 6).join('\n');
}

function recordNewTimers(): void {
  createHook({
    init(asyncId, type, _trigger, resource) {
      if (type !== 'Timeout') return;
      newTimers.set(asyncId, { resource, where: callerFrames(new Error().stack) });
    },
    destroy(asyncId) {
      newTimers.delete(asyncId);
    },
  }).enable();
}

/** The remembered timers still pending and still holding the process (not unref'd). */
function holds(timer: unknown): boolean {
  const t = timer as { hasRef?: () => boolean; _destroyed?: boolean };
  return !t._destroyed && t.hasRef?.() !== false;
}

function heldTimers(): string[] {
  return [...longTimers].filter(([timer]) => holds(timer)).map(([, where]) => where);
}

/** The pending timers made after the run ended, one line per distinct place (with a count). */
function heldNewTimers(): string[] {
  const counts = new Map<string, number>();
  for (const { resource, where } of newTimers.values()) {
    if (holds(resource)) counts.set(where, (counts.get(where) ?? 0) + 1);
  }
  return [...counts].map(([where, n]) => `${n} made after the run${where ? `\n${where}` : ' (no stack)'}`);
}

export function armExitWatchdog(graceMs = 30_000): void {
  recordNewTimers();
  const timer = setTimeout(() => {
    const internals = process as unknown as { _getActiveHandles(): unknown[] };
    const lines = [
      `[exit watchdog] jest is still running ${graceMs / 1000} s after the test run ended: a test left something open.`,
      `  resources: ${process.getActiveResourcesInfo().join(', ')}`,
      ...internals._getActiveHandles().map((h) => `  handle: ${describeHandle(h)}`),
      ...childProcesses().map((c) => `  child: ${c}`),
      ...heldTimers().map((t) => `  timer: ${t.replace(/\n/g, '\n    ')}`),
      ...heldNewTimers().map((t) => `  new timer: ${t.replace(/\n/g, '\n    ')}`),
      '[exit watchdog] exiting with the run\'s own status',
    ];
    process.stderr.write(`${lines.join('\n')}\n`);
    process.exit();
  }, graceMs);
  timer.unref();
}
