/**
 * A named Lua script run by EVALSHA, loaded on first NOSCRIPT (after a Redis restart too).
 * Each atomic multi-key change lives in one .lua file beside the code that uses it.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type Redis from 'ioredis';

export type RedisReply = string | number | null | Buffer | RedisReply[];

export class LuaScript {
  readonly sha: string;
  constructor(readonly name: string, readonly source: string) {
    this.sha = createHash('sha1').update(source).digest('hex');
  }

  static fromFile(name: string, path: string): LuaScript {
    return new LuaScript(name, readFileSync(path, 'utf8'));
  }

  async run(client: Redis, keys: readonly string[], args: readonly (string | number | Buffer)[]): Promise<RedisReply> {
    try {
      return (await client.evalsha(this.sha, keys.length, ...keys, ...args)) as RedisReply;
    } catch (err) {
      if (!String((err as Error).message).includes('NOSCRIPT')) throw err;
      return (await client.eval(this.source, keys.length, ...keys, ...args)) as RedisReply;
    }
  }

  /** Put the script in Redis's cache (SCRIPT LOAD), for callers that cannot retry on NOSCRIPT. */
  async load(client: Redis): Promise<void> {
    await client.script('LOAD', this.source);
  }

  /** As run, with bulk replies as Buffers (binary values such as zlib'd data survive). */
  async runBuffer(client: Redis, keys: readonly string[], args: readonly (string | number | Buffer)[]): Promise<RedisReply> {
    try {
      return (await client.callBuffer('EVALSHA', this.sha, keys.length, ...keys, ...args)) as RedisReply;
    } catch (err) {
      if (!String((err as Error).message).includes('NOSCRIPT')) throw err;
      return (await client.callBuffer('EVAL', this.source, keys.length, ...keys, ...args)) as RedisReply;
    }
  }
}
