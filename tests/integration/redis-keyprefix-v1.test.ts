// Python Celery producers -> Celeriac worker with less common message/key formats:
// (a) broker_transport_options global_keyprefix (kombu's PrefixedStrictRedis) on both sides:
//     every broker key, Celeriac's unacked bookkeeping included, carries the prefix;
// (b) task_protocol = 1 (everything in the body dict, no task headers);
// (c) compression='zlib' and compression='gzip' (kombu: both zlib bodies, application/x-gzip).
// Redis dbs 30-33 (the brief asked for 70-75, but the run's redis-server has 64 dbs).
import { testRedisUrl } from '../helpers/env';
import { pyClient, runPyJson } from '../helpers/python';
import { startCeleriacWorker } from '../helpers/celeriacWorker';
import { flushDb, redisClient, type Redis } from '../helpers/redis';

const PFX_BROKER = 30;
const PFX_RESULTS = 31;
const BROKER = 32;
const RESULTS = 33;
const PREFIX = 'pfx:';

const pfxEnv = {
  BROKER_URL: testRedisUrl(PFX_BROKER),
  RESULT_BACKEND: testRedisUrl(PFX_RESULTS),
  BROKER_TRANSPORT_OPTIONS: JSON.stringify({ global_keyprefix: PREFIX }),
};
const pyEnv = { BROKER_URL: testRedisUrl(BROKER), RESULT_BACKEND: testRedisUrl(RESULTS) };

interface Envelope {
  body: string;
  'content-type': string;
  headers: Record<string, unknown>;
  properties: { body_encoding: string };
}

interface GetOut {
  state: string;
  result: unknown;
  exc_type: string | null;
}

let pfxBroker: Redis;
let broker: Redis;

beforeAll(async () => {
  await Promise.all([PFX_BROKER, PFX_RESULTS, BROKER, RESULTS].map((db) => flushDb(db)));
  pfxBroker = redisClient(PFX_BROKER);
  broker = redisClient(BROKER);
});

afterAll(async () => {
  await Promise.all([pfxBroker.quit(), broker.quit()]);
});

async function waitFor(cond: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`timed out waiting for ${what}`);
}

function get(id: string, env: Record<string, string>): Promise<GetOut> {
  return pyClient<GetOut>({ op: 'get', id, timeout: 15 }, { env });
}

it('shares queues and unacked bookkeeping with kombu under a global_keyprefix', async () => {
  // Sent before any worker runs, so the keys kombu writes can be looked at as they are.
  const first = await pyClient<{ id: string }>({ op: 'send', task: 'demo.add', args: [2, 3] }, { env: pfxEnv });
  expect((await pfxBroker.keys('*')).sort()).toEqual([`${PREFIX}_kombu.binding.celery`, `${PREFIX}_kombu.binding_permanent.celery`, `${PREFIX}celery`]);
  expect(await pfxBroker.llen(`${PREFIX}celery`)).toBe(1);

  const worker = await startCeleriacWorker({
    brokerUrl: testRedisUrl(PFX_BROKER),
    backendUrl: testRedisUrl(PFX_RESULTS),
    app: 'tests/fixtures/tasks.ts',
    env: { CELERIAC_GLOBAL_KEYPREFIX: PREFIX },
  });
  expect(await get(first.id, pfxEnv)).toMatchObject({ state: 'SUCCESS', result: 5 });

  // An acks_late task holds its message in the prefixed unacked hash while it runs.
  const late = await pyClient<{ id: string }>({ op: 'send', task: 'test.slow_late', args: ['p', 1500] }, { env: pfxEnv });
  await waitFor(async () => (await pfxBroker.hlen(`${PREFIX}unacked`)) === 1, 5_000, `${PREFIX}unacked to hold the running task`);
  expect(await pfxBroker.zcard(`${PREFIX}unacked_index`)).toBe(1);
  expect(await pfxBroker.exists('unacked', 'unacked_index', 'celery')).toBe(0);
  expect(await get(late.id, pfxEnv)).toMatchObject({ state: 'SUCCESS', result: 'p' });
  await waitFor(async () => (await pfxBroker.hlen(`${PREFIX}unacked`)) === 0, 5_000, `${PREFIX}unacked to empty`);

  expect((await worker.stop()).code).toBe(0);
  const unprefixed = (await pfxBroker.keys('*')).filter((k) => !k.startsWith(PREFIX));
  expect(unprefixed).toEqual([]);
});

it('runs protocol 1 and zlib/gzip-compressed messages sent by Python Celery', async () => {
  const v1 = await runPyJson<{ id: string }>(
    [
      'import json',
      'from pyapp import app',
      'app.conf.task_protocol = 1',
      "res = app.send_task('demo.add', args=[2, 3])",
      "print(json.dumps({'id': res.id}))",
    ].join('\n'),
    { env: pyEnv },
  );
  const zlib = await pyClient<{ id: string }>({ op: 'send', task: 'demo.add', args: [20, 22], options: { compression: 'zlib' } }, { env: pyEnv });
  const gzip = await pyClient<{ id: string }>({ op: 'send', task: 'demo.add', args: [100, 23], options: { compression: 'gzip' } }, { env: pyEnv });

  // What actually went over the wire (kombu LPUSHes: the oldest message is last).
  const [gzipRaw, zlibRaw, v1Raw] = (await broker.lrange('celery', 0, -1)).map((s) => JSON.parse(s) as Envelope);
  const body = (e: Envelope): Buffer => Buffer.from(e.body, 'base64');
  expect(v1Raw!.headers.task).toBeUndefined();
  expect(JSON.parse(body(v1Raw!).toString('utf8'))).toMatchObject({ task: 'demo.add', id: v1.id, args: [2, 3], kwargs: {} });
  for (const raw of [zlibRaw!, gzipRaw!]) {
    expect(raw.headers.compression).toBe('application/x-gzip');
    expect(raw['content-type']).toBe('application/json');
    expect(() => JSON.parse(body(raw).toString('utf8'))).toThrow();
  }
  expect([zlibRaw!.headers.id, gzipRaw!.headers.id]).toEqual([zlib.id, gzip.id]);

  const worker = await startCeleriacWorker({ brokerUrl: testRedisUrl(BROKER), backendUrl: testRedisUrl(RESULTS) });
  expect(await get(v1.id, pyEnv)).toMatchObject({ state: 'SUCCESS', result: 5 });
  expect(await get(zlib.id, pyEnv)).toMatchObject({ state: 'SUCCESS', result: 42 });
  expect(await get(gzip.id, pyEnv)).toMatchObject({ state: 'SUCCESS', result: 123 });
  expect((await worker.stop()).code).toBe(0);
  expect(worker.output()).not.toMatch(/invalid task message|ERROR/);
});
