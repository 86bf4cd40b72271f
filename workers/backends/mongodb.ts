/**
 * Celery's MongoBackend (celery/backends/mongodb.py, Celery 5.7): one document per task in
 * `celery_taskmeta` {_id: task id, status, result, traceback, children, date_done, group_id?,
 * parent_id?, + name/args/kwargs/worker/retries/queue with result_extended}, groups in
 * `celery_groupmeta` {_id, result, date_done}. `result` holds the serializer's encoding of the
 * value (a JSON string for json), `date_done` a BSON date (null until a ready state).
 *
 * The first SUCCESS is never overwritten. A task's first write is an insert (see writeDocs); a
 * task with a document already gets a replace-upsert filtered on `status != SUCCESS`, which on a
 * stored SUCCESS tries to insert a second `_id` and fails with a duplicate key error that is
 * ignored (Celery's own trick). FerretDB does not make conditional
 * writes atomic under concurrency, so two runs finishing in the same millisecond may race there;
 * on MongoDB this is atomic.
 *
 * Mongo down: at start connect() returns at once and openMongo keeps trying in the background;
 * results of tasks that ran meanwhile (or while a running server is unreachable) wait in
 * PendingWrites and are written in order once it answers, as the Redis backend's are.
 *
 * There are no change streams on FerretDB (and none without a replica set on MongoDB), so
 * waitFor() polls, as Celery's AsyncResult.get() does on this backend.
 */
import type { Collection, Db, MongoClientOptions } from 'mongodb';
import { lazyModule } from '../lazy';
import type { ResultBackend, ResultMeta } from './backend';
import { READY_STATES } from './backend';
import { TimeoutError } from './errors';
import { PendingWrites, withTimeout } from './pendingWrites';
import { isTransient, mongoDbNameFromUrl, openMongo, type MongoConnection, type MongoLogger } from '../mongodb/connect';
import { parseJson, stringifyJson } from '../protocol/serializers';
import { maskUrl } from '../log/mask';

const mongodb = lazyModule<typeof import('mongodb')>('mongodb');

/** A celery_taskmeta document as Celery writes it. */
export interface TaskMetaDocument extends Pick<ResultMeta, 'name' | 'args' | 'kwargs' | 'worker' | 'retries' | 'queue'> {
  _id: string;
  status: string;
  result: unknown;
  traceback: string | null;
  children: unknown[] | null;
  date_done: Date | string | null;
  group_id?: string;
  parent_id?: string;
}

/** A celery_groupmeta document: the member task ids, encoded as the serializer's string. */
export interface GroupMetaDocument {
  _id: string;
  result: unknown;
  date_done: Date;
}

/** Celery's mongodb_backend_settings (the keys it knows; any other key is a driver option, as in Celery). */
export interface MongoBackendSettings {
  database?: string;
  taskmeta_collection?: string;
  groupmeta_collection?: string;
  options?: Record<string, unknown>;
  [option: string]: unknown;
}

export interface MongoBackendOptions {
  url: string;
  settings?: MongoBackendSettings | null;
  /** result_expires in seconds, used by cleanup() (celery.backend_cleanup); 0/null = never. */
  expires?: number | null;
  logger?: MongoLogger;
  /** waitFor poll period, ms (default 100, growing to 500 as Celery's get() interval). */
  pollIntervalMs?: number;
}

const EXTENDED_KEYS = ['name', 'args', 'kwargs', 'worker', 'retries', 'queue'] as const;
const DUPLICATE_KEY = 11000;
const BAD_VALUE = 2;
const WRITE_TIMEOUT_MS = 5_000;
const CLOSE_DRAIN_MS = 3_000;
const BATCH = 200;
/** Task ids with a state written but not yet a ready one, remembered at most (see writeDocs). */
const MAX_STATES_REMEMBERED = 10_000;

interface PendingStore {
  doc: TaskMetaDocument;
  resolve(): void;
  reject(err: Error): void;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms).unref());

/** Python's datetime.isoformat() for a UTC instant (what Celery's JSON backends hold in date_done). */
function isoDate(value: Date | string | null | undefined): string | null {
  if (value instanceof Date) return `${value.toISOString().slice(0, 23)}000+00:00`;
  return value ?? null;
}

export class MongoBackend implements ResultBackend {
  readonly kind = 'mongodb';
  readonly databaseName: string;
  readonly taskmetaCollection: string;
  readonly groupmetaCollection: string;
  private readonly clientOptions: MongoClientOptions;
  private connection: MongoConnection | null = null;
  private connecting: Promise<MongoConnection> | null = null;
  private readonly queue: PendingStore[] = [];
  private readonly parked: PendingWrites<TaskMetaDocument>;
  private closed = false;
  /** Tasks this backend wrote a non-ready state for (STARTED, PROGRESS, RETRY…): their next write is a replace. */
  private readonly statesWritten = new Set<string>();

  constructor(private readonly opts: MongoBackendOptions) {
    const { database, taskmeta_collection, groupmeta_collection, options, ...rest } = opts.settings ?? {};
    this.databaseName = database ?? mongoDbNameFromUrl(opts.url) ?? 'celery';
    this.taskmetaCollection = taskmeta_collection ?? 'celery_taskmeta';
    this.groupmetaCollection = groupmeta_collection ?? 'celery_groupmeta';
    // Celery: maxPoolSize 10 by default, then `options`, then every unknown key.
    this.clientOptions = { maxPoolSize: 10, ...options, ...rest } as MongoClientOptions;
    this.parked = new PendingWrites<TaskMetaDocument>({
      write: async (batch) => {
        const refused = (await this.writeDocs(batch)).filter((e) => e !== null);
        for (const err of refused) opts.logger?.warn(`a waiting result was not written: ${err.message}`);
      },
      isUp: () => this.connection !== null,
      warn: (m) => opts.logger?.warn(m),
      info: (m) => opts.logger?.info(m),
    });
  }

  /**
   * Starts connecting and returns: a worker comes up (and parks results) while Mongo is down.
   * A bad URL or failed authentication still rejects here, at once.
   */
  async connect(): Promise<void> {
    const attempt = this.open();
    const firstTry = await Promise.race([attempt.then(() => 'up' as const), sleep(2_000).then(() => 'waiting' as const)]);
    if (firstTry === 'waiting') attempt.catch((err: Error) => this.opts.logger?.warn(err.message));
  }

  private open(): Promise<MongoConnection> {
    this.connecting ??= openMongo(this.opts.url, {
      dbName: this.databaseName,
      clientOptions: this.clientOptions,
      logger: this.opts.logger,
      name: 'mongodb result backend',
    }).then(async (conn) => {
      if (this.closed) {
        await conn.close();
        throw new Error('mongodb result backend closed');
      }
      this.connection = conn;
      // Celery ensures these on first use: cleanup deletes by date_done.
      await Promise.all([this.tasks(conn.db), this.groups(conn.db)].map((c) => c.createIndex({ date_done: 1 }, { background: true }).catch(() => undefined)));
      this.parked.kick();
      return conn;
    }, (err: unknown) => {
      this.connecting = null;
      throw err;
    });
    return this.connecting;
  }

  /** The backend's database (sca-rhythm keeps workflow_meta there); waits for the connection. */
  async database(): Promise<Db> {
    return (this.connection ?? (await this.open())).db;
  }

  private tasks(db: Db): Collection<TaskMetaDocument> {
    return db.collection<TaskMetaDocument>(this.taskmetaCollection);
  }

  private groups(db: Db): Collection<GroupMetaDocument> {
    return db.collection<GroupMetaDocument>(this.groupmetaCollection);
  }

  /** celery_taskmeta, for readers that need the raw documents (e.g. a workflow's task runs). */
  async taskCollection(): Promise<Collection<TaskMetaDocument>> {
    return this.tasks(await this.database());
  }

  /** The document Celery's _store_result writes for this meta. */
  toDocument(meta: ResultMeta): TaskMetaDocument {
    const doc: TaskMetaDocument = {
      _id: meta.task_id,
      status: meta.status,
      result: this.encode(meta.result),
      traceback: meta.traceback ?? null,
      children: meta.children ?? null,
      date_done: READY_STATES.has(meta.status) ? (meta.date_done ? new Date(meta.date_done) : new Date()) : null,
    };
    if (meta.group_id) doc.group_id = String(meta.group_id);
    if (meta.parent_id) doc.parent_id = String(meta.parent_id);
    for (const key of EXTENDED_KEYS) if (key in meta) (doc as unknown as Record<string, unknown>)[key] = meta[key];
    return doc;
  }

  /** kombu's json dumps: Python's separators (', ' and ': ') and ensure_ascii escapes. */
  encode(value: unknown): string {
    return pythonJsonStyle(stringifyJson(value));
  }

  decode(value: unknown): unknown {
    // Strings are the json serializer's; anything else was written with serializer 'bson'.
    return typeof value === 'string' ? parseJson(value) : value ?? null;
  }

  fromDocument(doc: TaskMetaDocument): ResultMeta {
    const meta: ResultMeta = {
      status: doc.status,
      result: this.decode(doc.result),
      traceback: doc.traceback ?? null,
      children: doc.children ?? [],
      date_done: isoDate(doc.date_done),
      task_id: doc._id,
    };
    for (const key of EXTENDED_KEYS) if (key in doc) (meta as Record<string, unknown>)[key] = doc[key];
    if (doc.group_id) meta.group_id = doc.group_id;
    if (doc.parent_id) meta.parent_id = doc.parent_id;
    return meta;
  }

  /** Writes made in the same tick go out as one ordered bulk write. */
  store(meta: ResultMeta): Promise<void> {
    const doc = this.toDocument(meta);
    if (!this.connection || this.parked.size > 0) return this.parked.park(doc);
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ doc, resolve, reject });
      if (this.queue.length === 1) setImmediate(() => void this.flush());
    });
  }

  private async flush(): Promise<void> {
    while (this.queue.length) {
      const batch = this.queue.splice(0, BATCH);
      try {
        const refused = await withTimeout(this.writeDocs(batch.map((p) => p.doc)), WRITE_TIMEOUT_MS);
        batch.forEach((p, i) => (refused[i] ? p.reject(refused[i]) : p.resolve()));
      } catch (err) {
        if (isTransient(err) || (err as Error).message.startsWith('no answer')) for (const p of batch) this.parked.park(p.doc).then(p.resolve, p.reject);
        else for (const p of batch) p.reject(err as Error);
      }
    }
  }

  /**
   * Writes the documents, in order per task; returns a refusal (or null) per document. A task's
   * first write is an insert; a task that has a document already (a state stored before, by this
   * worker or another) gets the replace-upsert filtered on `status != SUCCESS` (see the header).
   * Both end in the same document. The insert is the common case (no track_started, no progress)
   * and the cheap one: FerretDB 1.24 runs every update and replace as a scan of the collection
   * (milliseconds per thousand documents, hundreds of ms for the filtered replace), an insert by
   * `_id` in about a millisecond; on MongoDB both are index lookups.
   */
  private async writeDocs(docs: readonly TaskMetaDocument[]): Promise<(TypeError | null)[]> {
    const db = (this.connection ?? (await this.open())).db;
    const col = this.tasks(db);
    const refused: (TypeError | null)[] = docs.map(() => null);
    const perTask = new Map<string, number>();
    for (const doc of docs) perTask.set(doc._id, (perTask.get(doc._id) ?? 0) + 1);
    // Inserted: a task with one document in this batch and no state written earlier by this backend.
    const inserts = docs.flatMap((doc, i) => (perTask.get(doc._id) === 1 && !this.statesWritten.has(doc._id) ? [i] : []));
    const replaces = new Set(docs.keys());
    for (const i of inserts) replaces.delete(i);
    if (inserts.length) {
      try {
        await col.insertMany(inserts.map((i) => docs[i]!), { ordered: false });
      } catch (err) {
        const failed = writeErrors(err);
        if (!failed) throw err;
        for (const { index, code } of failed) {
          const i = inserts[index]!;
          if (code === DUPLICATE_KEY) replaces.add(i); // a state is there already: replace it
          else if (code === BAD_VALUE) refused[i] = refusal(err);
          else throw err;
        }
      }
    }
    const rest = [...replaces].sort((a, b) => a - b);
    const replaceRefused = await this.replaceDocs(col, rest.map((i) => docs[i]!));
    rest.forEach((i, k) => (refused[i] = replaceRefused[k]!));
    for (const doc of docs) {
      if (READY_STATES.has(doc.status)) this.statesWritten.delete(doc._id);
      else this.statesWritten.add(doc._id);
    }
    // Tasks that never finish here (a lost worker's) would pile up: forgetting only costs one failed insert.
    if (this.statesWritten.size > MAX_STATES_REMEMBERED) this.statesWritten.clear();
    return refused;
  }

  /**
   * Replace-upsert each document unless a SUCCESS is stored (see the header), in order. A
   * duplicate key error means "SUCCESS already there" or "inserted concurrently": the op is tried
   * once more (as Celery does), then skipped. A document the server refuses is reported in its
   * slot of the returned list (the others are written); connection errors reject.
   */
  private async replaceDocs(col: Collection<TaskMetaDocument>, docs: readonly TaskMetaDocument[]): Promise<(TypeError | null)[]> {
    const refused: (TypeError | null)[] = docs.map(() => null);
    const ops = (from: number) => docs.slice(from).map((doc) => ({ replaceOne: { filter: { _id: doc._id, status: { $ne: 'SUCCESS' } }, replacement: doc, upsert: true } }));
    let from = 0;
    const retried = new Set<number>();
    while (from < docs.length) {
      try {
        await col.bulkWrite(ops(from), { ordered: true });
        break;
      } catch (err) {
        const failed = writeErrors(err)?.[0];
        if (!failed) throw err;
        const index = from + failed.index;
        if (failed.code === DUPLICATE_KEY && !retried.has(index)) {
          // Retry the same op once; after that it is a stored SUCCESS: skip it.
          retried.add(index);
          from = index;
        } else if (failed.code === DUPLICATE_KEY) {
          from = index + 1;
        } else if (failed.code === BAD_VALUE) {
          refused[index] = refusal(err);
          from = index + 1;
        } else {
          throw err;
        }
      }
    }
    return refused;
  }

  async get(taskId: string): Promise<ResultMeta | null> {
    const doc = await this.tasks(await this.database()).findOne({ _id: taskId });
    return doc ? this.fromDocument(doc) : null;
  }

  async waitFor(taskId: string, timeoutMs = 0): Promise<ResultMeta> {
    const deadline = timeoutMs > 0 ? Date.now() + timeoutMs : Number.POSITIVE_INFINITY;
    let interval = this.opts.pollIntervalMs ?? 100;
    for (;;) {
      // Mongo unreachable: a read waits for it, but never past the caller's timeout.
      const read = Number.isFinite(deadline) ? withTimeout(this.get(taskId), Math.max(1, deadline - Date.now())) : this.get(taskId);
      const meta = await read.catch((err: unknown) => {
        if (isTransient(err) || (err as Error).message.startsWith('no answer')) return null;
        throw err;
      });
      if (meta && READY_STATES.has(meta.status)) return meta;
      const left = deadline - Date.now();
      if (left <= 0) throw new TimeoutError(`result of task ${taskId} not ready after ${timeoutMs} ms`);
      await sleep(Math.min(interval, left));
      interval = Math.min(interval * 1.5, 500);
    }
  }

  async forget(taskId: string): Promise<void> {
    await this.tasks(await this.database()).deleteOne({ _id: taskId });
  }

  /** Celery's _save_group: the member ids, encoded, with a BSON date_done. */
  async saveGroup(groupId: string, taskIds: readonly string[]): Promise<void> {
    const doc: GroupMetaDocument = { _id: groupId, result: this.encode([...taskIds]), date_done: new Date() };
    await this.groups(await this.database()).replaceOne({ _id: groupId }, doc, { upsert: true });
  }

  /** Celery's _restore_group: the member ids of a saved group, or null. */
  async restoreGroup(groupId: string): Promise<{ id: string; taskIds: string[]; dateDone: Date } | null> {
    const doc = await this.groups(await this.database()).findOne({ _id: groupId });
    if (!doc) return null;
    const ids = this.decode(doc.result);
    if (!Array.isArray(ids)) throw new Error(`group ${groupId}: stored result is not a list of task ids`);
    return { id: doc._id, taskIds: ids.map(String), dateDone: doc.date_done };
  }

  async deleteGroup(groupId: string): Promise<void> {
    await this.groups(await this.database()).deleteOne({ _id: groupId });
  }

  /** Celery's cleanup (run by celery.backend_cleanup): delete task and group metas done before now - expires. */
  async cleanup(now: Date = new Date()): Promise<number> {
    if (!this.opts.expires) return 0;
    const cutoff = new Date(now.getTime() - this.opts.expires * 1000);
    const db = await this.database();
    const [tasks, groups] = await Promise.all([
      this.tasks(db).deleteMany({ date_done: { $lt: cutoff } }),
      this.groups(db).deleteMany({ date_done: { $lt: cutoff } }),
    ]);
    return tasks.deletedCount + groups.deletedCount;
  }

  async close(): Promise<void> {
    const lost = await this.parked.drain(CLOSE_DRAIN_MS);
    if (lost) this.opts.logger?.warn(`mongodb result backend ${maskUrl(this.opts.url)} still unreachable at close: ${lost} result(s) could not be written and are lost`);
    this.closed = true;
    const conn = this.connection;
    this.connection = null;
    await conn?.close();
  }
}

/**
 * The write error that stopped an ordered bulk write: its index in the submitted ops and code
 * (11000 duplicate key; 2 BadValue, e.g. FerretDB refusing nested arrays such as a chord body's
 * args with result_extended: Celery's EncodeError, which the worker stores as a FAILURE instead).
 */
/** The per-document errors of a failed bulk write or insertMany (index in the batch, code); null for any other error. */
function writeErrors(err: unknown): { index: number; code: number }[] | null {
  // The class is read at the first failed write, so a worker without Mongo never loads the driver.
  if (!(err instanceof mongodb().MongoBulkWriteError)) return null;
  const errors = [err.writeErrors].flat().map((e) => ({ index: e.index, code: Number(e.code) }));
  return errors.length ? errors : null;
}

function refusal(err: unknown): TypeError {
  return new TypeError(`MongoDB refused the result document: ${(err as Error).message}`, { cause: err });
}

/**
 * Compact JSON (JSON.stringify) rewritten as Python's json.dumps writes it by default: a space
 * after each ',' and ':' between tokens, and every non-ASCII UTF-16 unit as \uXXXX.
 */
export function pythonJsonStyle(compact: string): string {
  let out = '';
  let inString = false;
  for (let i = 0; i < compact.length; i++) {
    const ch = compact[i]!;
    const code = ch.charCodeAt(0);
    if (inString) {
      if (ch === '\\') {
        out += ch + compact[++i]!;
        continue;
      }
      if (ch === '"') inString = false;
      out += code > 0x7e ? `\\u${code.toString(16).padStart(4, '0')}` : ch;
      continue;
    }
    if (ch === '"') inString = true;
    out += ch === ',' ? ', ' : ch === ':' ? ': ' : ch;
  }
  return out;
}
