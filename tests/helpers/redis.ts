/**
 * ioredis access to the run's redis-server (see env.ts for the db numbering rule).
 *
 *   redisClient(db: number): Redis                          a connected client; the test MUST quit() it
 *   withRedis<T>(db: number, fn: (r: Redis) => Promise<T>): Promise<T>   client quit for you
 *   flushDb(db: number): Promise<void>                      empty one db
 *
 * Clients give up after a few reconnects and one retry per command, so a dead server shows up
 * as an error rather than a hung test.
 */
import Redis from 'ioredis';
import { testRedisUrl } from './env';

export type { Redis };

export function redisClient(db: number): Redis {
  return new Redis(testRedisUrl(db), {
    maxRetriesPerRequest: 1,
    enableOfflineQueue: true,
    retryStrategy: (times) => (times > 3 ? null : 100),
  });
}

export async function withRedis<T>(db: number, fn: (r: Redis) => Promise<T>): Promise<T> {
  const client = redisClient(db);
  try {
    return await fn(client);
  } finally {
    await client.quit().catch(() => client.disconnect());
  }
}

export async function flushDb(db: number): Promise<void> {
  await withRedis(db, async (r) => {
    await r.flushdb();
  });
}
