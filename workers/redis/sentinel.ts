/**
 * Redis Sentinel URLs as kombu (broker) and Celery's SentinelBackend (results) read them:
 *
 *   sentinel://[user:password@]host[:port][/db];sentinel://host2[:port];...
 *
 * Every `;`-separated part names one Sentinel (port 26379 by default). The first part's
 * user, password and db are the *master's* (kombu passes them to master_for); the Sentinels'
 * own credentials come from the transport options' `sentinel_kwargs` ({password, username}),
 * and `master_name` names the monitored group. Broker: broker_transport_options; results:
 * result_backend_transport_options.
 */
import type { RedisOptions } from 'ioredis';
import { maskUrl } from '../log/mask';

const DEFAULT_SENTINEL_PORT = 26379;
/** sentinel_kwargs keys with an ioredis equivalent; redis-py's other keys are ignored (logged). */
const SENTINEL_KWARGS: Record<string, 'sentinelPassword' | 'sentinelUsername'> = {
  password: 'sentinelPassword',
  username: 'sentinelUsername',
};

export function isSentinelUrl(url: string): boolean {
  return /^\s*sentinel:\/\//i.test(url);
}

export interface SentinelOptions {
  options: RedisOptions;
  /** sentinel_kwargs keys Celeriac does not use (the caller logs them once). */
  ignored: string[];
}

/**
 * ioredis options for a sentinel:// list. Throws a clear error without master_name (as kombu
 * does) or on a part that is not a sentinel:// URL.
 */
export function sentinelOptionsFromUrl(url: string, transportOptions: Record<string, unknown> = {}, where = 'broker_transport_options'): SentinelOptions {
  const parts = url
    .split(';')
    .map((p) => p.trim())
    .filter((p) => p !== '');
  const parsed = parts.map((p) => {
    if (!isSentinelUrl(p)) throw new Error(`sentinel url ${maskUrl(url)}: every ';'-separated part must be sentinel://host:port, got ${maskUrl(p)}`);
    return new URL(p);
  });
  const masterName = transportOptions.master_name;
  if (typeof masterName !== 'string' || masterName === '') {
    throw new Error(`sentinel url ${maskUrl(url)}: set ${where}.master_name to the name Sentinel monitors the master under`);
  }
  const first = parsed[0]!;
  const options: RedisOptions = {
    sentinels: parsed.map((u) => ({ host: u.hostname || '127.0.0.1', port: u.port ? Number(u.port) : DEFAULT_SENTINEL_PORT })),
    name: masterName,
  };
  const db = first.pathname.replace(/^\//, '');
  if (db) {
    if (!/^\d+$/.test(db)) throw new Error(`sentinel url ${maskUrl(url)}: database must be a number, got ${JSON.stringify(db)}`);
    options.db = Number(db);
  }
  if (first.username) options.username = decodeURIComponent(first.username);
  if (first.password) options.password = decodeURIComponent(first.password);
  const ignored: string[] = [];
  const kwargs = transportOptions.sentinel_kwargs;
  if (kwargs !== undefined && kwargs !== null) {
    if (typeof kwargs !== 'object' || Array.isArray(kwargs)) throw new Error(`${where}.sentinel_kwargs must be an object such as {"password": "..."}`);
    for (const [key, value] of Object.entries(kwargs)) {
      const option = SENTINEL_KWARGS[key];
      if (option && value !== null && value !== undefined) options[option] = String(value);
      else if (!option) ignored.push(key);
    }
  }
  return { options, ignored };
}
