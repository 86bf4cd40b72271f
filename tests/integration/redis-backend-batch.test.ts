/**
 * RedisBackend writes the stores made in one tick with one storeResult.lua call, and all of them
 * share one promise (#16). What each store must still do, as Celery's RedisBackend does it:
 * a key that already holds SUCCESS keeps it (Celery never overwrites a stored SUCCESS), every
 * written result gets result_expires and is PUBLISHed on its key's channel, so Python's
 * AsyncResult.get(), already waiting on that channel, wakes with it.
 */
import { RedisBackend } from '../../workers/backends/redis/redisBackend';
import { buildMeta } from '../../workers/backends/meta';
import { testRedisUrl } from '../helpers/env';
import { flushDb, redisClient, withRedis, type Redis } from '../helpers/redis';
import { runPython } from '../helpers/python';

const DB = 44;
const key = (id: string): string => `celery-task-meta-${id}`;

/** evalsha calls redis-server has counted so far (INFO commandstats). */
async function evalshaCalls(r: Redis): Promise<number> {
  const info = await r.info('commandstats');
  return Number(/cmdstat_evalsha:calls=(\d+)/.exec(info)?.[1] ?? 0);
}

describe('RedisBackend: stores of one tick in one script call', () => {
  let backend: RedisBackend;

  beforeEach(async () => {
    await flushDb(DB);
    backend = new RedisBackend({ url: testRedisUrl(DB), expires: 600 });
    await backend.connect();
  });

  afterEach(async () => {
    await backend.close();
  });

  test('one call writes and publishes the batch; a key holding SUCCESS keeps it', async () => {
    const ids = Array.from({ length: 50 }, (_, i) => `batch-${i}`);
    const kept = ids[17]!;
    const first = JSON.stringify(buildMeta(kept, 'SUCCESS', 'the first result'));
    await withRedis(DB, (r) => r.set(key(kept), first));
    // The script is loaded by one store before counting (the first call may need EVAL).
    await backend.store(buildMeta('warm-up', 'SUCCESS', null));

    const sub = redisClient(DB);
    const published: string[] = [];
    sub.on('pmessage', (_p: string, channel: string) => published.push(channel));
    await sub.psubscribe('celery-task-meta-batch-*');
    try {
      const before = await withRedis(DB, evalshaCalls);
      // The kept id fails this time: a late FAILURE must not replace its SUCCESS.
      await Promise.all(ids.map((id) => backend.store(buildMeta(id, id === kept ? 'FAILURE' : 'SUCCESS', id === kept ? null : { n: id }))));
      const after = await withRedis(DB, evalshaCalls);
      expect(after - before).toBe(1);

      await withRedis(DB, async (r) => {
        expect(await r.get(key(kept))).toBe(first);
        for (const id of ids.filter((i) => i !== kept)) {
          expect(JSON.parse((await r.get(key(id)))!)).toMatchObject({ status: 'SUCCESS', result: { n: id }, task_id: id });
          const ttl = await r.ttl(key(id));
          expect(ttl).toBeGreaterThan(500);
          expect(ttl).toBeLessThanOrEqual(600);
        }
      });
      // Messages arrive after the replies: wait for all 49, then check none was for the kept key.
      for (let i = 0; i < 200 && published.length < ids.length - 1; i++) await new Promise((r) => setTimeout(r, 25));
      expect(published.sort()).toEqual(ids.filter((i) => i !== kept).map(key).sort());
    } finally {
      sub.disconnect();
    }
  });

  test('more stores than one call takes (200) are all written, in batches', async () => {
    const ids = Array.from({ length: 450 }, (_, i) => `many-${i}`);
    await backend.store(buildMeta('warm-up', 'SUCCESS', null));
    const before = await withRedis(DB, evalshaCalls);
    await Promise.all(ids.map((id) => backend.store(buildMeta(id, 'SUCCESS', id))));
    expect((await withRedis(DB, evalshaCalls)) - before).toBe(3);
    await withRedis(DB, async (r) => {
      const values = await r.mget(...ids.map(key));
      expect(values.map((v) => (JSON.parse(v!) as { result: string }).result)).toEqual(ids);
    });
  });

  test("Python's AsyncResult.get(), waiting before the batch is written, gets every result of it", async () => {
    const ids = Array.from({ length: 20 }, (_, i) => `py-${i}`);
    // Python subscribes to every result's channel first, then waits in get(): the first results
    // reach it by their PUBLISH (get() reads the key once too, so later ones may come that way).
    const script = `
import json, sys
from pyapp import app
ids = ${JSON.stringify(ids)}
results = [app.AsyncResult(i) for i in ids]
for r in results:
    app.backend.result_consumer.consume_from(r.id)
print("subscribed", flush=True)
out = [[r.id, r.get(timeout=30), r.state] for r in results]
print(json.dumps(out), flush=True)
`;
    const python = runPython(script, { env: { RESULT_BACKEND: testRedisUrl(DB), BROKER_URL: testRedisUrl(DB) }, timeoutMs: 60_000 });
    await withRedis(DB, async (r) => {
      for (let i = 0; i < 400; i++) {
        const counts = (await r.call('PUBSUB', 'NUMSUB', ...ids.map(key))) as (string | number)[];
        if (counts.filter((_, j) => j % 2 === 1).every((n) => Number(n) > 0)) return;
        await new Promise((res) => setTimeout(res, 50));
      }
      throw new Error('Python never subscribed to the result channels');
    });
    await Promise.all(ids.map((id, n) => backend.store(buildMeta(id, 'SUCCESS', n * 10))));
    const { stdout, stderr, code } = await python;
    expect({ code, stderr: code === 0 ? '' : stderr }).toEqual({ code: 0, stderr: '' });
    const got = JSON.parse(stdout.trim().split('\n').pop()!) as [string, number, string][];
    expect(got).toEqual(ids.map((id, n) => [id, n * 10, 'SUCCESS']));
  });
});
