/**
 * Celery's FilesystemBackend (celery/backends/filesystem.py): one file per task,
 * `<dir>/celery-task-meta-<task id>`, holding the JSON meta document Celery's json serializer
 * reads. Python and Celeriac can share the directory in both directions.
 *
 * Differences from Celery, on purpose: writes go to a hidden temp file that is renamed into place,
 * so a reader never sees half a document (Celery truncates and rewrites in place, so our reads
 * retry briefly on a torn document); missing directories are created instead of failing.
 *
 * Expiry: Celery's FilesystemBackend does nothing on write; only its cleanup() (run daily by
 * celery beat's `celery.backend_cleanup` task) deletes meta files whose mtime is older than
 * result_expires. cleanup() here does the same and is never called implicitly.
 */
import { randomUUID } from 'node:crypto';
import fsp from 'node:fs/promises';
import path from 'node:path';
import zlib from 'node:zlib';
import { READY_STATES, type ResultBackend, type ResultMeta } from './backend';
import { TimeoutError } from './errors';
import { parseJson, stringifyJson } from '../protocol/serializers';

export interface FileBackendOptions {
  /** Base for relative paths such as file://./data/results (default process.cwd()). */
  cwd?: string;
  /** waitFor poll period in ms (default 100; Celery's AsyncResult.get polls every 500). */
  pollIntervalMs?: number;
  /** result_expires in seconds, used by cleanup() only; 0/null = never (default 86400). */
  expires?: number | null;
  /** result_backend_transport_options.global_keyprefix, applied like Celery does. */
  globalKeyprefix?: string;
}

/** celery.backends.base.COMPRESSED_PAYLOAD_MAGIC: MAGIC + content-type + NUL + body. */
const COMPRESSED_MAGIC = Buffer.from('\x00celery-compressed\x00', 'latin1');
const TORN_READ_RETRIES = 5;
const TEMP_PREFIX = '.celeriac-tmp-';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function errCode(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | null)?.code;
}

/**
 * The directory a file:// URL names, by Celery's own rule (FilesystemBackend._find_path):
 * strip 'file://localhost/' keeping the leading '/', else strip 'file://'; no percent-decoding.
 * So file:///abs/path is absolute and file://./data/results (or file://data/results) is relative,
 * which Celery resolves against the process cwd; we resolve it against `cwd`.
 */
export function fileBackendPath(url: string, cwd: string = process.cwd()): string {
  let raw: string;
  if (url.startsWith('file://localhost/')) raw = url.slice('file://localhost'.length);
  else if (url.startsWith('file://')) raw = url.slice('file://'.length);
  else throw new Error('A path for the file-system backend should conform to the file URI scheme');
  if (!raw) throw new Error('You need to configure a path for the file-system backend');
  return path.resolve(cwd, raw);
}

/** Celery's _add_global_keyprefix: a separator '_' is added unless it already ends in one. */
function withGlobalPrefix(prefix: string, global: string | undefined): string {
  if (!global) return prefix;
  return /[:_\-.]$/.test(global) ? `${global}${prefix}` : `${global}_${prefix}`;
}

/** Undo kombu compression when a Python writer had result_compression enabled. */
function decompress(payload: Buffer): Buffer {
  if (!payload.subarray(0, COMPRESSED_MAGIC.length).equals(COMPRESSED_MAGIC)) return payload;
  const rest = payload.subarray(COMPRESSED_MAGIC.length);
  const nul = rest.indexOf(0);
  const contentType = rest.subarray(0, nul).toString('utf8');
  const body = rest.subarray(nul + 1);
  // kombu's 'gzip'/'zlib' method is zlib.compress, labelled application/x-gzip.
  if (contentType === 'application/x-gzip') return zlib.inflateSync(body);
  if (contentType === 'application/x-brotli') return zlib.brotliDecompressSync(body);
  throw new Error(`unsupported result compression ${contentType}`);
}

export class FileBackend implements ResultBackend {
  readonly kind = 'file';
  readonly directory: string;
  private readonly taskPrefix: string;
  private readonly cleanupPrefixes: string[];
  private readonly pollIntervalMs: number;
  private readonly expires: number | null;

  constructor(url: string, options: FileBackendOptions = {}) {
    this.directory = fileBackendPath(url, options.cwd);
    this.taskPrefix = withGlobalPrefix('celery-task-meta-', options.globalKeyprefix);
    this.cleanupPrefixes = [this.taskPrefix,
      withGlobalPrefix('celery-taskset-meta-', options.globalKeyprefix),
      withGlobalPrefix('chord-unlock-', options.globalKeyprefix)];
    this.pollIntervalMs = Math.max(1, options.pollIntervalMs ?? 100);
    this.expires = options.expires === undefined ? 86_400 : options.expires;
  }

  static fromUrl(url: string, options: FileBackendOptions = {}): FileBackend {
    return new FileBackend(url, options);
  }

  /** The file holding a task's meta: `<dir>/<global prefix>celery-task-meta-<id>`. */
  pathFor(taskId: string): string {
    // Celery does not check; we refuse ids that would leave the directory.
    if (!taskId || /[/\\\0]/.test(taskId) || taskId === '.' || taskId === '..') {
      throw new Error(`invalid task id for the file backend: ${JSON.stringify(taskId)}`);
    }
    return path.join(this.directory, `${this.taskPrefix}${taskId}`);
  }

  /** Like Celery's constructor-time directory test: write, read back and delete a probe file. */
  async connect(): Promise<void> {
    await fsp.mkdir(this.directory, { recursive: true });
    const probe = path.join(this.directory, `.fs-backend-${randomUUID()}`);
    try {
      await fsp.writeFile(probe, 'test value');
      if ((await fsp.readFile(probe, 'utf8')) !== 'test value') throw new Error('probe read back differently');
      await fsp.unlink(probe);
    } catch (err) {
      throw new Error(`The file-system backend directory ${this.directory} is not usable: ${(err as Error).message}`, { cause: err });
    }
  }

  /**
   * Write the meta atomically. Like Celery's KeyValueStoreBackend._store_result, a stored SUCCESS
   * is never overwritten (protects a result from a late duplicate run of the same task).
   */
  async store(meta: ResultMeta): Promise<void> {
    const target = this.pathFor(meta.task_id);
    const current = await this.read(meta.task_id).catch(() => null);
    if (current?.status === 'SUCCESS') return;
    const tmp = path.join(this.directory, `${TEMP_PREFIX}${randomUUID()}`);
    const handle = await fsp.open(tmp, 'w');
    try {
      await handle.writeFile(stringifyJson(meta), 'utf8');
      await handle.sync();
    } finally {
      await handle.close();
    }
    try {
      await fsp.rename(tmp, target);
    } catch (err) {
      await fsp.unlink(tmp).catch(() => undefined);
      throw err;
    }
  }

  async get(taskId: string): Promise<ResultMeta | null> {
    return this.read(taskId);
  }

  /** Poll until SUCCESS/FAILURE/REVOKED; timeoutMs 0 or undefined waits forever (get(timeout=None)). */
  async waitFor(taskId: string, timeoutMs = 0): Promise<ResultMeta> {
    const deadline = timeoutMs > 0 ? Date.now() + timeoutMs : Number.POSITIVE_INFINITY;
    let problem = '';
    for (;;) {
      // A torn or undecodable file is retried next round; it is named if we time out.
      const meta = await this.read(taskId).catch((err: Error) => {
        problem = ` (last read failed: ${err.message})`;
        return null;
      });
      if (meta && READY_STATES.has(meta.status)) return meta;
      const left = deadline - Date.now();
      if (left <= 0) throw new TimeoutError(`result of task ${taskId} not ready after ${timeoutMs} ms${problem}`);
      await sleep(Math.min(this.pollIntervalMs, left));
    }
  }

  /** Celery's _forget (unlink); a missing file is not an error here. */
  async forget(taskId: string): Promise<void> {
    await fsp.unlink(this.pathFor(taskId)).catch((err: unknown) => {
      if (errCode(err) !== 'ENOENT') throw err;
    });
  }

  /**
   * FilesystemBackend.cleanup: delete task/group/chord files older than `expires` seconds by mtime.
   * Also removes our own temp files left by a crash mid-write. Returns how many files went.
   */
  async cleanup(now: number = Date.now()): Promise<number> {
    if (!this.expires) return 0;
    const cutoff = now - this.expires * 1000;
    let removed = 0;
    for (const name of await fsp.readdir(this.directory)) {
      if (!name.startsWith(TEMP_PREFIX) && !this.cleanupPrefixes.some((p) => name.startsWith(p))) continue;
      const file = path.join(this.directory, name);
      const st = await fsp.stat(file).catch(() => null);
      if (st && st.mtimeMs < cutoff) {
        await fsp.unlink(file).catch(() => undefined);
        removed += 1;
      }
    }
    return removed;
  }

  async close(): Promise<void> {
    // Nothing is held open between calls.
  }

  /** Read and decode; retried a few times because a Python writer truncates then writes. */
  private async read(taskId: string): Promise<ResultMeta | null> {
    const file = this.pathFor(taskId);
    let lastError: unknown;
    for (let attempt = 0; attempt < TORN_READ_RETRIES; attempt += 1) {
      let payload: Buffer;
      try {
        payload = await fsp.readFile(file);
      } catch (err) {
        if (errCode(err) === 'ENOENT') return null;
        throw err;
      }
      try {
        const doc: unknown = parseJson(decompress(payload).toString('utf8'));
        if (typeof doc !== 'object' || doc === null || typeof (doc as ResultMeta).status !== 'string') {
          throw new Error('not a celery-task-meta document');
        }
        return doc as ResultMeta;
      } catch (err) {
        lastError = err;
        await sleep(10 * (attempt + 1));
      }
    }
    throw new Error(`cannot decode ${file}: ${(lastError as Error).message}`);
  }
}
