/** Pick a transport adapter by broker URL scheme (redis, rediss, sentinel, amqp, filesystem). */
import type { Transport } from './transport';
import { RedisTransport } from './redis/redisTransport';
import { FilesystemTransport } from './filesystem';
import { AmqpTransport } from './amqp/amqpTransport';
import type { FailoverStrategy } from './amqp/failover';
import { maskUrl } from '../log/mask';

export interface TransportLogger {
  info(msg: string): void;
  warn(msg: string): void;
  error(msg: string): void;
}

function num(v: unknown): number | undefined {
  return v === undefined || v === null || v === '' ? undefined : Number(v);
}

/** Settings beside the URL and broker_transport_options. */
export interface TransportSettings {
  /** Celery's broker_use_ssl (TLS files and cert_reqs for rediss:// and amqps://). */
  ssl?: Record<string, unknown> | null;
  failoverStrategy?: FailoverStrategy;
  /** Flower's broker_api (RabbitMQ management API), for unacked counts on AMQP. */
  brokerApi?: string | null;
}

export function createTransport(url: string, options: Record<string, unknown>, logger?: TransportLogger, settings: TransportSettings = {}): Transport {
  const { ssl = null, failoverStrategy, brokerApi } = settings;
  const scheme = url.trim().split(':', 1)[0]!.toLowerCase();
  const list = url.split(';').filter((u) => u.trim() !== '');
  if (list.length > 1 && !['amqp', 'amqps', 'pyamqp', 'sentinel'].includes(scheme)) {
    throw new Error(`broker url ${maskUrl(url)}: a ';'-separated failover list works with amqp:// nodes (or sentinel:// for Redis behind Sentinel)`);
  }
  if (list.some((u) => u.trim().split(':', 1)[0]!.toLowerCase() !== scheme)) {
    throw new Error(`broker url ${maskUrl(url)}: every URL of a failover list must use the same scheme`);
  }
  switch (scheme) {
    case 'redis':
    case 'rediss':
    case 'redis+socket':
    case 'unix':
    case 'sentinel':
      return new RedisTransport({
        url,
        transportOptions: options,
        ssl,
        visibilityTimeout: num(options.visibility_timeout),
        restoreInterval: num(options.unacked_restore_interval),
        unackedMutexExpire: num(options.unacked_mutex_expire),
        globalKeyprefix: options.global_keyprefix === undefined ? undefined : String(options.global_keyprefix),
        sep: options.sep === undefined ? undefined : String(options.sep),
        prioritySteps: Array.isArray(options.priority_steps) ? options.priority_steps.map(Number) : undefined,
        fanoutPrefix: typeof options.fanout_prefix === 'string' || typeof options.fanout_prefix === 'boolean' ? options.fanout_prefix : undefined,
        fanoutPatterns: typeof options.fanout_patterns === 'boolean' ? options.fanout_patterns : undefined,
        logger,
      });
    case 'amqp':
    case 'amqps':
    case 'pyamqp':
      return new AmqpTransport({ url, logger, ssl, failoverStrategy, brokerApi });
    case 'filesystem':
      return FilesystemTransport.fromOptions(options, logger);
    default:
      throw new Error(`unsupported broker url ${maskUrl(url)}: use amqp://, amqps://, redis://, rediss://, sentinel:// or filesystem://`);
  }
}
