/**
 * Starting one pool child as a worker thread or a child process, behind one small handle. When
 * the worker runs from TypeScript sources (tsx, ts-jest), the child loads the .ts entry through
 * tsx's require hook; a compiled build runs child.js directly.
 */
import { fork } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Worker as Thread } from 'node:worker_threads';
import type { ChildInit, FromChild, ToChild } from './wire';

export interface ChildHandle {
  /** The process the child runs in (the worker's own pid for a thread). */
  readonly pid: number;
  send(msg: ToChild): void;
  onMessage(fn: (msg: FromChild) => void): void;
  /** Called once when the child is gone, whatever the reason. */
  onExit(fn: (why: string) => void): void;
  /** Stop it now, mid-task if need be. */
  kill(): void;
}

function entry(): { path: string; ts: boolean } {
  const js = join(__dirname, 'child.js');
  return existsSync(js) ? { path: js, ts: false } : { path: join(__dirname, 'child.ts'), ts: true };
}

export function startThread(init: ChildInit): ChildHandle {
  const { path, ts } = entry();
  // A thread cannot take a .ts file: a one-line CommonJS bootstrap registers tsx first.
  const thread = ts
    ? new Thread(`require('tsx/cjs/api').register(); require(${JSON.stringify(path)});`, { eval: true, workerData: init })
    : new Thread(path, { workerData: init });
  let exited = false;
  const exitHandlers: ((why: string) => void)[] = [];
  const done = (why: string): void => {
    if (exited) return;
    exited = true;
    for (const fn of exitHandlers) fn(why);
  };
  let lastError = '';
  thread.on('error', (err) => (lastError = `${err.name}: ${err.message}`));
  thread.on('exit', (code) => done(lastError || `exitcode ${code}`));
  return {
    pid: process.pid,
    send: (msg) => thread.postMessage(msg),
    onMessage: (fn) => thread.on('message', fn),
    onExit: (fn) => exitHandlers.push(fn),
    kill: () => void thread.terminate(),
  };
}

export function startProcess(init: ChildInit): ChildHandle {
  const { path, ts } = entry();
  const child = fork(path, [], {
    execArgv: ts ? ['-r', 'tsx/cjs'] : [],
    serialization: 'advanced',
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  child.send(init);
  let exited = false;
  const exitHandlers: ((why: string) => void)[] = [];
  child.on('exit', (code, signal) => {
    if (exited) return;
    exited = true;
    const why = signal ? `signal ${signal}` : `exitcode ${code}`;
    for (const fn of exitHandlers) fn(why);
  });
  child.on('error', () => undefined); // a send to a dead child: its exit event tells the pool
  return {
    pid: child.pid ?? -1,
    send: (msg) => {
      if (child.connected) child.send(msg);
    },
    onMessage: (fn) => child.on('message', (m) => fn(m as FromChild)),
    onExit: (fn) => exitHandlers.push(fn),
    kill: () => void child.kill('SIGKILL'),
  };
}
