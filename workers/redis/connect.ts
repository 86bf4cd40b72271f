/**
 * Redis clients from Celery-style URLs (redis://[:password@]host[:port][/db], rediss:// for TLS,
 * unix sockets as redis+socket:///path or unix:///path), with reconnect and one log line per
 * state change instead of one per retry.
 */
import Redis, { type RedisOptions } from 'ioredis';
import { maskUrl } from '../log/mask';

export interface RedisLogger {
  info(msg: string): void;
  warn(msg: string): void;
}

export interface RedisConnectOptions {
  /** Extra ioredis options (tls settings for rediss://, timeouts). */
  options?: RedisOptions;
  logger?: RedisLogger;
  name?: string;
}

export function redisOptionsFromUrl(url: string): RedisOptions {
  const u = new URL(url.replace(/^redis\+socket:/, 'unix:'));
  const opts: RedisOptions = {};
  if (u.protocol === 'unix:') {
    opts.path = decodeURIComponent(u.pathname);
    const db = u.searchParams.get('virtual_host') ?? u.searchParams.get('db');
    if (db) opts.db = Number(db);
  } else {
    opts.host = u.hostname || '127.0.0.1';
    opts.port = u.port ? Number(u.port) : 6379;
    const db = u.pathname.replace(/^\//, '');
    if (db) {
      if (!/^\d+$/.test(db)) throw new Error(`redis url ${maskUrl(url)}: database must be a number, got ${JSON.stringify(db)}`);
      opts.db = Number(db);
    }
  }
  if (u.username) opts.username = decodeURIComponent(u.username);
  if (u.password) opts.password = decodeURIComponent(u.password);
  if (u.protocol === 'rediss:') {
    const reqs = u.searchParams.get('ssl_cert_reqs');
    opts.tls = reqs && /none/i.test(reqs) ? { rejectUnauthorized: false } : {};
  }
  return opts;
}

/** A client that retries forever with capped backoff; commands queue while it is down. */
export function connectRedis(url: string, connect: RedisConnectOptions = {}): Redis {
  const client = new Redis({
    ...redisOptionsFromUrl(url),
    maxRetriesPerRequest: null,
    enableReadyCheck: true,
    lazyConnect: true,
    retryStrategy: (times) => Math.min(100 * 2 ** Math.min(times, 6), 5000) + Math.floor(Math.random() * 100),
    ...connect.options,
  });
  const log = connect.logger;
  const label = `${connect.name ?? 'redis'} ${maskUrl(url)}`;
  let down = false;
  client.on('error', (err: Error) => {
    if (!down) log?.warn(`${label}: connection lost (${err.message}); reconnecting`);
    down = true;
  });
  client.on('ready', () => {
    if (down) log?.info(`${label}: reconnected`);
    down = false;
  });
  return client;
}
