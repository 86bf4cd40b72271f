/** Pick a result backend by URL scheme (redis, rediss, sentinel, file, rpc, mongodb). */
import type { ResultBackend } from './backend';
import { RedisBackend } from './redis/redisBackend';
import { FileBackend } from './file';
import { RpcBackend } from './rpc';
import { MongoBackend, type MongoBackendSettings } from './mongodb';
import { maskUrl } from '../log/mask';

export interface BackendFactoryOptions {
  /** Needed by rpc://, whose results travel over the broker. */
  brokerUrl?: string;
  /** broker_failover_strategy, for rpc:// over a failover list. */
  brokerFailoverStrategy?: 'round-robin' | 'shuffle';
  /** broker_use_ssl, for rpc:// (over the broker). */
  brokerSsl?: Record<string, unknown> | null;
  /** kombu's confirm_publish (broker_transport_options): rpc:// confirms every result. */
  confirmPublish?: boolean;
  /** redis_backend_use_ssl, for rediss:// results. */
  ssl?: Record<string, unknown> | null;
  expires?: number | null;
  transportOptions?: Record<string, unknown>;
  logger?: { info(msg: string): void; warn(msg: string): void };
  /** Celery's mongodb_backend_settings, for mongodb:// results. */
  mongodbSettings?: MongoBackendSettings | null;
}

export function createBackend(url: string, opts: BackendFactoryOptions = {}): ResultBackend {
  const scheme = url.split(':', 1)[0]!.toLowerCase();
  switch (scheme) {
    case 'redis':
    case 'rediss':
    case 'redis+socket':
    case 'unix':
    case 'sentinel':
      return new RedisBackend({
        url,
        transportOptions: opts.transportOptions,
        ssl: opts.ssl,
        expires: opts.expires,
        globalKeyprefix: opts.transportOptions?.global_keyprefix === undefined ? undefined : String(opts.transportOptions.global_keyprefix),
        logger: opts.logger,
        chordOrdered: opts.transportOptions?.result_chord_ordered === undefined ? true : Boolean(opts.transportOptions.result_chord_ordered),
      });
    case 'file':
      return FileBackend.fromUrl(url);
    case 'rpc':
      if (!opts.brokerUrl || !/^(amqps?|pyamqp):/i.test(opts.brokerUrl)) {
        throw new Error('rpc:// results need an AMQP broker (amqp://): they travel as broker messages');
      }
      return new RpcBackend({
        brokerUrl: opts.brokerUrl,
        expires: opts.expires,
        ssl: opts.brokerSsl,
        failoverStrategy: opts.brokerFailoverStrategy,
        confirmPublish: opts.confirmPublish,
      });
    case 'mongodb':
    case 'mongodb+srv':
      return new MongoBackend({ url, settings: opts.mongodbSettings, expires: opts.expires, logger: opts.logger });
    default:
      throw new Error(`unsupported result backend ${maskUrl(url)}: use redis://, rediss://, sentinel://, file://, rpc:// or mongodb://`);
  }
}
