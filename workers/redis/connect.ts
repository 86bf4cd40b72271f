/**
 * Redis clients from Celery-style URLs (redis://[:password@]host[:port][/db], rediss:// for TLS,
 * unix sockets as redis+socket:///path or unix:///path), with reconnect and one log line per
 * state change instead of one per retry.
 *
 * rediss:// takes Celery's query parameters: ssl_cert_reqs (none | optional | required, or
 * CERT_NONE | CERT_OPTIONAL | CERT_REQUIRED; default required), ssl_ca_certs, ssl_certfile and
 * ssl_keyfile (PEM file paths, read when the options are built). Only `none` turns certificate
 * verification off; `optional` verifies like `required` (a server always presents a certificate).
 *
 * sentinel://…;sentinel://… lists find the master through Redis Sentinel (see sentinel.ts) and
 * follow a failover: when the master's connection drops (or a Sentinel announces +switch-master)
 * the client asks the Sentinels again and reconnects to whichever node is master now.
 */
import type Redis from 'ioredis';
import type { RedisOptions } from 'ioredis';
import { lazyModule } from '../lazy';

// Loaded by the first connection: a pool child whose tasks never send a message never pays for it (#16).
const ioredis = lazyModule<typeof import('ioredis')>('ioredis');
import { maskUrl } from '../log/mask';
import { tlsOptions } from '../tls';
import { isSentinelUrl, sentinelOptionsFromUrl } from './sentinel';

export interface RedisLogger {
  info(msg: string): void;
  warn(msg: string): void;
}

export interface RedisConnectOptions {
  /** Extra ioredis options (tls settings for rediss://, timeouts). */
  options?: RedisOptions;
  /** Celery's broker_use_ssl / redis_backend_use_ssl for rediss://. */
  ssl?: Record<string, unknown> | null;
  logger?: RedisLogger;
  name?: string;
  /** Celery's transport options: master_name and sentinel_kwargs for sentinel:// URLs. */
  transportOptions?: Record<string, unknown>;
  /** The setting those come from, for error messages (broker_transport_options by default). */
  transportOptionsKey?: string;
}

/** Attempts at the Sentinels before the first connection fails (afterwards: forever). */
const SENTINEL_START_ATTEMPTS = 5;

/** The db a URL selects (0 when it names none), for sentinel:// lists too. */
export function redisDbFromUrl(url: string): number {
  if (isSentinelUrl(url)) return Number(/^\s*sentinel:\/\/[^/;]*\/(\d+)/i.exec(url)?.[1] ?? 0);
  return redisOptionsFromUrl(url).db ?? 0;
}

/** `ssl`: Celery's broker_use_ssl / redis_backend_use_ssl, over the URL's query parameters. */
export function redisOptionsFromUrl(url: string, ssl: Record<string, unknown> = {}): RedisOptions {
  // WHATWG URL wants a host after credentials: unix://:pw@/path parses as unix://:pw@localhost/path.
  const u = new URL(url.replace(/^(?:redis\+socket|unix):\/\/([^/]*@)?\//, 'unix://$1localhost/'));
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
  const password = u.password ? decodeURIComponent(u.password) : u.searchParams.get('password'); // redis-py's ?password=
  if (password) opts.password = password;
  if (u.protocol === 'rediss:') opts.tls = tlsOptions({ ...Object.fromEntries(u.searchParams), ...ssl }, `redis url ${maskUrl(url)}`);
  return opts;
}

/** Clients being closed on purpose: their 'close' event is not a lost connection. */
const closing = new WeakSet<Redis>();

/** A client that retries forever with capped backoff; commands queue while it is down. */
export function connectRedis(url: string, connect: RedisConnectOptions = {}): Redis {
  const log = connect.logger;
  const label = `${connect.name ?? 'redis'} ${maskUrl(url)}`;
  let everReady = false;
  const client = new (ioredis().default)({
    ...(isSentinelUrl(url) ? sentinelClientOptions(url, connect, label, () => everReady) : redisOptionsFromUrl(url, connect.ssl ?? {})),
    maxRetriesPerRequest: null,
    enableReadyCheck: true,
    lazyConnect: true,
    retryStrategy: (times) => Math.min(100 * 2 ** Math.min(times, 6), 5000) + Math.floor(Math.random() * 100),
    ...connect.options,
  });
  // Until the first 'ready' the caller of connect() reports failures; after it, we log each
  // loss once and each recovery once.
  let down = true;
  let lastError: Error | null = null;
  client.on('error', (err: Error) => {
    lastError = err;
  });
  client.on('close', () => {
    if (closing.has(client)) return; // our own quit/disconnect, not an outage
    if (!down && everReady) log?.warn(`${label}: connection lost${lastError ? ` (${lastError.message})` : ''}; reconnecting`);
    down = true;
  });
  client.on('ready', () => {
    // After a Sentinel failover, say which node is master now.
    const at = client.options.sentinels ? ` to master ${client.stream.remoteAddress ?? '?'}:${client.stream.remotePort ?? '?'}` : '';
    if (down && everReady) log?.info(`${label}: reconnected${at}`);
    everReady = true;
    down = false;
    lastError = null;
  });
  // ioredis rejects connect() with a bare "Connection is closed." when the first attempt fails:
  // name the cause instead (WRONGPASS, ECONNREFUSED, a certificate error).
  const connectOnce = client.connect.bind(client);
  client.connect = (): Promise<void> =>
    connectOnce().catch((err: Error) => {
      throw lastError && err.message === 'Connection is closed.' ? new Error(`${label}: ${lastError.message}`, { cause: lastError }) : err;
    });
  return client;
}

/**
 * ioredis Sentinel mode. Before the first connection a few rounds over the Sentinels, so a wrong
 * address fails the start with a clear error; after it, retries forever (a failover takes
 * Sentinel's down-after-milliseconds plus an election). failoverDetector: a +switch-master on
 * any Sentinel moves the client at once, even when the old master is alive and demoted.
 */
function sentinelClientOptions(url: string, connect: RedisConnectOptions, label: string, everReady: () => boolean): RedisOptions {
  const { options, ignored } = sentinelOptionsFromUrl(url, connect.transportOptions, connect.transportOptionsKey);
  if (ignored.length) connect.logger?.warn(`${label}: sentinel_kwargs ${ignored.join(', ')} not used (only password and username are)`);
  // broker_use_ssl: TLS to the master and replicas (kombu's SentinelManagedSSLConnection); the
  // Sentinels themselves stay plain (ioredis takes TLS for them from sentinelTLS only).
  if (connect.ssl) Object.assign(options, { tls: tlsOptions(connect.ssl, `${label} ssl`), enableTLSForSentinelMode: true });
  return {
    ...options,
    failoverDetector: true,
    sentinelRetryStrategy: (times) => (everReady() || times < SENTINEL_START_ATTEMPTS ? Math.min(100 * times, 1000) : null),
  };
}

/** QUIT when connected (replies flushed first); otherwise drop it, which also stops reconnecting. */
export async function closeRedis(client: Redis): Promise<void> {
  closing.add(client);
  if (client.status === 'ready') await client.quit().catch(() => client.disconnect());
  else client.disconnect();
}
