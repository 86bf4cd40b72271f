/** Pick a result backend by URL scheme (redis, rediss, file). */
import type { ResultBackend } from './backend';
import { RedisBackend } from './redis/redisBackend';
import { FileBackend } from './file';
import { maskUrl } from '../log/mask';

export interface BackendFactoryOptions {
  expires?: number | null;
  transportOptions?: Record<string, unknown>;
  logger?: { info(msg: string): void; warn(msg: string): void };
}

export function createBackend(url: string, opts: BackendFactoryOptions = {}): ResultBackend {
  const scheme = url.split(':', 1)[0]!.toLowerCase();
  switch (scheme) {
    case 'redis':
    case 'rediss':
    case 'redis+socket':
    case 'unix':
      return new RedisBackend({
        url,
        expires: opts.expires,
        globalKeyprefix: opts.transportOptions?.global_keyprefix === undefined ? undefined : String(opts.transportOptions.global_keyprefix),
        logger: opts.logger,
      });
    case 'file':
      return FileBackend.fromUrl(url);
    default:
      throw new Error(`unsupported result backend ${maskUrl(url)}: use redis://, rediss:// or file://`);
  }
}
