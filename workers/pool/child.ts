/**
 * A pool thread or process: loads the worker's task modules into its own app, then runs one task
 * at a time as the worker asks. The worker times it, kills it when it must (hard time limit,
 * revoke --terminate) and replaces it; this side only runs, reports and honours soft aborts.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { getHeapStatistics } from 'node:v8';
import { Celeriac, type AppLogger } from '../app/app';
import { loadTaskModule } from '../app/loadTasks';
import { bindArguments } from '../app/task';
import { NotRegistered } from '../app/errors';
import { createContext } from '../worker/context';
import { taskHost } from '../canvas/host';
import { autoRetry } from '../worker/outcome';
import { unwrapAbort } from '../worker/execute';
import { decodeError, encodeError, type ChildInit, type FromChild, type ToChild } from './wire';

interface Channel {
  send(msg: FromChild): void;
  onMessage(fn: (msg: ToChild) => void): void;
  /** Memory (KiB) this child answers for: its process's RSS, or its thread's V8 heap. */
  memory(): number;
  exit(): void;
}

function threadChannel(): Channel {
  const port = parentPort!;
  return {
    send: (msg) => port.postMessage(msg),
    onMessage: (fn) => port.on('message', fn),
    memory: () => Math.round(getHeapStatistics().used_heap_size / 1024),
    exit: () => port.close(),
  };
}

function processChannel(): Channel {
  return {
    send: (msg) => process.send!(msg),
    onMessage: (fn) => process.on('message', (m) => fn(m as ToChild)),
    memory: () => Math.round(process.memoryUsage.rss() / 1024),
    exit: () => process.exit(0),
  };
}

/** Log lines go to stderr, which the worker's own process (or pm2) collects. */
function stderrLogger(tag: string): AppLogger {
  const line = (level: string) => (msg: string) => process.stderr.write(`[${new Date().toISOString()}: ${level}/${tag}] ${msg}\n`);
  return { info() {}, debug() {}, warn: line('WARNING'), error: line('ERROR') };
}

export function runChild(channel: Channel, init: ChildInit): void {
  const app = new Celeriac({ ...init.appOptions, logger: stderrLogger(`PoolWorker-${process.pid}`) });
  try {
    for (const path of init.modules) loadTaskModule(app, path);
  } catch (err) {
    channel.send({ type: 'failedToStart', error: encodeError(err) });
    return;
  }
  let controller: AbortController | null = null;
  let seq = 0;
  const stored = new Map<number, () => void>();

  channel.onMessage((msg) => {
    switch (msg.type) {
      case 'run':
        controller = new AbortController();
        void run(msg.request, msg.deliveryInfo, controller);
        break;
      case 'abort':
        controller?.abort(decodeError(msg.error));
        break;
      case 'stateStored':
        stored.get(msg.seq)?.();
        stored.delete(msg.seq);
        break;
      case 'exit':
        channel.exit();
        break;
    }
  });

  async function run(request: Extract<ToChild, { type: 'run' }>['request'], deliveryInfo: Extract<ToChild, { type: 'run' }>['deliveryInfo'], ctl: AbortController): Promise<void> {
    const def = app.tasks.get(request.task);
    try {
      if (!def) throw new NotRegistered(request.task);
      const options = app.taskOptions(def);
      const ctx = createContext({
        request,
        options,
        canvasHost: () => taskHost(app, request),
        hostname: init.hostname,
        deliveryInfo,
        signal: () => ctl.signal,
        updateState: (state, meta) =>
          new Promise<void>((resolve) => {
            const n = ++seq;
            stored.set(n, resolve);
            channel.send({ type: 'updateState', seq: n, state, meta });
          }),
      });
      const value: unknown = await def.fn.apply(ctx, bindArguments(def, request.args, request.kwargs));
      channel.send({ type: 'done', ok: true, value, memory: channel.memory() });
    } catch (err) {
      // autoretry_for holds classes, which live here: decide the retry on this side.
      const failure = unwrapAbort(err, () => ctl.signal);
      const error = def ? autoRetry(app.taskOptions(def), request, failure) : failure;
      channel.send({ type: 'done', ok: false, error: encodeError(error), memory: channel.memory() });
    }
  }

  channel.send({ type: 'ready' });
}

// Entry: a worker thread gets its ChildInit as workerData; a forked process as its first message.
if (parentPort && workerData) {
  runChild(threadChannel(), workerData as ChildInit);
} else if (process.send) {
  const channel = processChannel();
  process.once('message', (init) => runChild(channel, init as ChildInit));
  // The worker decides when this process ends: a SIGINT/SIGTERM sent to the whole group (Ctrl-C,
  // pm2's tree kill) must not kill a running task before the worker's warm shutdown finishes it.
  process.on('SIGINT', () => undefined);
  process.on('SIGTERM', () => undefined);
  process.on('disconnect', () => process.exit(0));
}
