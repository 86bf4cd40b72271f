/**
 * Building celery-task-meta documents exactly as Celery's BaseBackend._get_result_meta does, and
 * turning a thrown JS value into Celery's serialized exception.
 */
import { PythonError } from '../app/errors';
import { READY_STATES, type ResultMeta, type SerializedException, type TaskState } from './backend';

/** Python builtin exception classes a JS error name maps onto (constructible from one message). */
const PY_BUILTINS = new Set([
  'Exception', 'ValueError', 'KeyError', 'TypeError', 'RuntimeError', 'IndexError', 'AttributeError',
  'NotImplementedError', 'ZeroDivisionError', 'AssertionError', 'LookupError', 'ArithmeticError',
  'OverflowError', 'OSError', 'IOError', 'FileNotFoundError', 'FileExistsError', 'PermissionError',
  'TimeoutError', 'ConnectionError', 'ConnectionRefusedError', 'MemoryError', 'RecursionError',
  'SyntaxError', 'NameError', 'EOFError', 'BufferError', 'StopIteration', 'IsADirectoryError',
  'NotADirectoryError', 'InterruptedError', 'ChildProcessError', 'BrokenPipeError', 'SystemError',
]);

export function serializeException(err: unknown): SerializedException {
  if (err instanceof PythonError) {
    return { exc_type: err.pyType, exc_message: err.pyArgs, exc_module: err.pyModule };
  }
  if (err instanceof Error) {
    const type = err.name || 'Exception';
    return { exc_type: type, exc_message: [err.message], exc_module: PY_BUILTINS.has(type) ? 'builtins' : null };
  }
  return { exc_type: 'Exception', exc_message: [String(err)], exc_module: 'builtins' };
}

/** A traceback string Python tools can show: the JS stack under Python's header line. */
export function formatTraceback(err: unknown): string {
  if (err instanceof Error) {
    const stack = err.stack ?? `${err.name}: ${err.message}`;
    return `Traceback (most recent call last):\n${stack}\n`;
  }
  return `Traceback (most recent call last):\nException: ${String(err)}\n`;
}

/** datetime.now(timezone.utc).isoformat(): microseconds and an explicit +00:00. */
export function pyIsoNow(date?: Date): string {
  if (date) return pyIso(date.getTime());
  // Every result stores date_done, and a busy worker finishes many tasks per millisecond:
  // formatting once per millisecond took 2-5% of its main thread (#16, docs/benchmarks.md).
  const ms = Date.now();
  if (ms !== lastIsoMs) {
    lastIsoMs = ms;
    lastIso = pyIso(ms);
  }
  return lastIso;
}

let lastIsoMs = Number.NaN;
let lastIso = '';
let prefixSecond = Number.NaN;
let secondPrefix = '';

function pyIso(ms: number): string {
  // 'YYYY-MM-DDTHH:MM:SS.' is made with a Date once per second; only the milliseconds change
  // within it. A task that arrives alone formats date_done with cold code: the Date and
  // toISOString() path took 10-13 µs per call then, the cached prefix 3-4.5 (#16).
  const second = Math.floor(ms / 1000);
  if (second !== prefixSecond) {
    prefixSecond = second;
    // toISOString() is always 'YYYY-MM-DDTHH:MM:SS.mmmZ' for years 0-9999.
    secondPrefix = new Date(second * 1000).toISOString().slice(0, 20);
  }
  const milli = ms - second * 1000;
  return `${secondPrefix}${milli < 10 ? '00' : milli < 100 ? '0' : ''}${milli}000+00:00`;
}

export interface MetaRequest {
  task?: string;
  args?: unknown[];
  kwargs?: Record<string, unknown>;
  hostname?: string;
  retries?: number;
  queue?: string;
  group?: string | null;
  parentId?: string | null;
  children?: unknown[];
}

export function buildMeta(
  taskId: string,
  state: TaskState,
  result: unknown,
  opts: { traceback?: string | null; request?: MetaRequest; extended?: boolean } = {},
): ResultMeta {
  const req = opts.request;
  const meta: ResultMeta = {
    status: state,
    result,
    traceback: opts.traceback ?? null,
    children: req?.children ?? [],
    date_done: READY_STATES.has(state) ? pyIsoNow() : null,
  } as ResultMeta;
  if (req?.group) meta.group_id = req.group;
  if (req?.parentId) meta.parent_id = req.parentId;
  if (opts.extended && req) {
    meta.name = req.task ?? null;
    meta.args = req.args ?? null;
    meta.kwargs = req.kwargs ?? null;
    meta.worker = req.hostname ?? null;
    meta.retries = req.retries ?? null;
    meta.queue = req.queue ?? null;
  }
  meta.task_id = taskId;
  return meta;
}
