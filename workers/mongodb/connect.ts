/**
 * MongoDB connections from Celery-style URLs (mongodb://[user:pw@]host[:port][,host2...]/db?opts,
 * mongodb+srv://...), shared by the mongodb result backend and by anything else that keeps state
 * in MongoDB.
 *
 * The official driver reconnects by itself once connected; what it does not do is wait for a
 * server that is not up yet: MongoClient.connect() fails after serverSelectionTimeoutMS. A worker
 * that starts before its database must not crash-loop under pm2, so openMongo() keeps trying with
 * capped backoff, logging the outage once (host named, password masked) and the recovery once.
 */
import type { MongoClient, Db, MongoClientOptions } from 'mongodb';
import { lazyModule } from '../lazy';
import { maskUrl } from '../log/mask';

// The driver is ~20 MiB of a process's memory: loaded by the first openMongo, not by every worker.
const mongodb = lazyModule<typeof import('mongodb')>('mongodb');

export interface MongoLogger {
  info(msg: string): void;
  warn(msg: string): void;
}

export interface MongoConnectOptions {
  /** Database name; default: the URL's path, else `celeriac`. */
  dbName?: string | null;
  /** Extra driver options (Celery's mongodb_backend_settings.options go here). */
  clientOptions?: MongoClientOptions;
  logger?: MongoLogger;
  /** Label for log lines, e.g. 'mongodb result backend'. */
  name?: string;
  /** Give up after this many failed attempts (default: never; the caller may close() to stop). */
  maxAttempts?: number;
  /** Backoff cap between attempts, ms (default 30 s). */
  maxDelayMs?: number;
}

/** The database named in a mongodb:// URL's path, if any (`mongodb://h/bioloop?x=1` -> `bioloop`). */
export function mongoDbNameFromUrl(url: string): string | undefined {
  const afterScheme = url.replace(/^mongodb(\+srv)?:\/\//i, '');
  const slash = afterScheme.indexOf('/');
  if (slash < 0) return undefined;
  const name = decodeURIComponent(afterScheme.slice(slash + 1).split('?', 1)[0] ?? '');
  return name || undefined;
}

/** `host:port[,host:port]` of a mongodb URL, for messages (never the credentials). */
export function mongoHosts(url: string): string {
  const afterScheme = url.replace(/^mongodb(\+srv)?:\/\//i, '');
  const hosts = afterScheme.split('/', 1)[0] ?? '';
  return hosts.slice(hosts.lastIndexOf('@') + 1) || '(no host)';
}

export function isMongoUrl(url: string): boolean {
  return /^mongodb(\+srv)?:\/\//i.test(url);
}

/** An error that says which server could not be reached, password masked, cause kept. */
export class MongoUnavailableError extends Error {
  constructor(readonly url: string, cause: unknown) {
    const why = cause instanceof Error ? cause.message : String(cause);
    super(`MongoDB at ${mongoHosts(url)} is unreachable (${maskUrl(url)}): ${why}`, { cause });
    this.name = 'MongoUnavailableError';
  }
}

export interface MongoConnection {
  readonly client: MongoClient;
  readonly db: Db;
  readonly url: string;
  close(): Promise<void>;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Connects, waiting out a server that is down at start (see the header). Resolves once the server
 * answered a ping; rejects with MongoUnavailableError after maxAttempts, or at once for errors
 * that waiting cannot fix (a malformed URL, failed authentication).
 */
export async function openMongo(url: string, opts: MongoConnectOptions = {}): Promise<MongoConnection> {
  if (!isMongoUrl(url)) throw new Error(`not a MongoDB URL: ${maskUrl(url)} (expected mongodb://host:port/db)`);
  const label = `${opts.name ?? 'mongodb'} ${maskUrl(url)}`;
  const client = new (mongodb().MongoClient)(url, {
    // A short selection timeout makes each attempt fail fast; openMongo does the waiting.
    serverSelectionTimeoutMS: 5_000,
    ...opts.clientOptions,
  });
  const dbName = opts.dbName ?? mongoDbNameFromUrl(url) ?? 'celeriac';
  const maxDelay = opts.maxDelayMs ?? 30_000;
  let warned = false;
  for (let attempt = 1; ; attempt++) {
    try {
      await client.connect();
      await client.db(dbName).command({ ping: 1 });
      if (warned) opts.logger?.info(`${label}: connected after ${attempt} attempts`);
      break;
    } catch (err) {
      if (!isTransient(err) || (opts.maxAttempts !== undefined && attempt >= opts.maxAttempts)) {
        await client.close().catch(() => undefined);
        throw new MongoUnavailableError(url, err);
      }
      if (!warned) {
        opts.logger?.warn(`${new MongoUnavailableError(url, err).message}; retrying with backoff (up to ${maxDelay / 1000} s apart)`);
        warned = true;
      }
      await sleep(Math.min(500 * 2 ** Math.min(attempt - 1, 8), maxDelay));
    }
  }
  return { client, db: client.db(dbName), url, close: () => client.close() };
}

/** MongoDB's error code for rejected credentials (or an auth mechanism the server lacks). */
const AUTHENTICATION_FAILED = 18;

/** Errors that a later attempt may not see: the server is down, starting, or unreachable. */
export function isTransient(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  // The driver labels a failed handshake ResetPool, bad credentials included: those never heal.
  if ((err as { code?: unknown }).code === AUTHENTICATION_FAILED) return false;
  const labels = (err as { errorLabels?: unknown }).errorLabels;
  if (Array.isArray(labels) && (labels.includes('RetryableWriteError') || labels.includes('ResetPool'))) return true;
  return /ServerSelection|NetworkError|NetworkTimeout|PoolClearedError|Topology/i.test(err.name) ||
    /ECONNREFUSED|ECONNRESET|ETIMEDOUT|EHOSTUNREACH|ENOTFOUND|EAI_AGAIN|connection .* closed|not primary|node is recovering/i.test(err.message);
}
