// Celeriac's rq producer (workers/rq/producer.ts): jobs it enqueues by name are run by a real
// Python rq 2.12 SimpleWorker and read back with rq's API; its job hash has the fields Python's
// enqueue writes; actinia's queue choices. Redis db 123.
import { testRedisUrl } from '../helpers/env';
import { rqOps } from '../helpers/rq';
import { flushDb, redisClient, type Redis } from '../helpers/redis';
import { actiniaQueue, enqueueRq } from '../../workers/rq';

jest.setTimeout(120_000);

const DB = 123;
const url = testRedisUrl(DB);
let redis: Redis;

interface JobView {
  status: string;
  return_value: unknown;
  worker_name: string;
  retries_left: number | null;
  ttl: number;
}

beforeAll(async () => {
  await flushDb(DB);
  redis = redisClient(DB);
});

afterAll(async () => {
  await redis.quit();
});

test('TS-enqueued jobs run on a Python rq SimpleWorker; at_front first; results read by Python', async () => {
  const add = await enqueueRq(redis, 'rqtasks.add', [2, 40], {}, { queue: 'ts_made', resultTtl: 100, retry: { max: 2, interval: [1, 5] } });
  const echo = await enqueueRq(redis, 'rqtasks.echo', ['x', { nested: [1, null] }], { flag: true }, { queue: 'ts_made' });
  const first = await enqueueRq(redis, 'rqtasks.add', [1, 1], {}, { queue: 'ts_made', atFront: true });
  expect(await redis.lrange('rq:queue:ts_made', 0, -1)).toEqual([first, add, echo]);
  const [ran, a, e] = await rqOps<[boolean, JobView, JobView]>(url, [
    { op: 'work', queues: ['ts_made'] },
    { op: 'job', id: add },
    { op: 'job', id: echo },
  ]);
  expect(ran).toBe(true);
  expect(a).toMatchObject({ status: 'finished', return_value: 42, retries_left: 2 });
  expect(a.ttl).toBeLessThanOrEqual(100);
  expect(e.return_value).toEqual({ args: ['x', { nested: [1, null] }], kwargs: { flag: true } });
});

test('the job hash has the fields Python rq writes for the same call', async () => {
  const ts = await enqueueRq(redis, 'rqtasks.add', [1, 2], {}, { queue: 'layout', retry: { max: 1 }, failureTtl: 60, ttl: 600 });
  const [py] = await rqOps<[string]>(url, [{ op: 'enqueue', queue: 'layout', func: 'rqtasks.add', args: [1, 2], retry: { max: 1 }, failure_ttl: 60, ttl: 600 }]);
  const fieldsOf = async (id: string): Promise<string[]> => Object.keys(await redis.hgetall(`rq:job:${id}`)).sort();
  expect(await fieldsOf(ts)).toEqual(await fieldsOf(py));
  const [tsTtl, pyTtl] = [await redis.ttl(`rq:job:${ts}`), await redis.ttl(`rq:job:${py}`)];
  expect(tsTtl).toBeGreaterThan(0);
  expect(pyTtl).toBeGreaterThan(0);
  expect(await redis.sismember('rq:queues', 'rq:queue:layout')).toBe(1);
});

test('actinia queue choice: per job, per user, round-robin over N workers', async () => {
  expect(await actiniaQueue(redis, { kind: 'per_job', jobId: 'r-1' })).toBe('job_queue_r-1');
  expect(await actiniaQueue(redis, { kind: 'per_user', user: 'alice' })).toBe('job_queue_alice');
  const names = [];
  for (let i = 0; i < 4; i++) names.push(await actiniaQueue(redis, { kind: 'round_robin', workers: 2 }));
  expect(names).toEqual(['job_queue_1', 'job_queue_0', 'job_queue_1', 'job_queue_0']);
  await expect(enqueueRq(redis, 'not a name', [])).rejects.toThrow(/dotted name/);
});
