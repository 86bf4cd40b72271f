// Garbage in the queue list, malformed bodies, pickle and unknown tasks, interleaved with valid
// tasks: the worker stays up, rejects each bad one with a logged reason, and runs every valid one.
// Redis dbs 44-45.
import { testRedisUrl } from '../helpers/env';
import { pyClient } from '../helpers/python';
import { startCeleriacWorker } from '../helpers/celeriacWorker';
import { flushDb, redisClient, type Redis } from '../helpers/redis';
import { buildTaskMessage } from '../../workers/protocol/message';
import { encodeEnvelope } from '../../workers/transports/virtualEnvelope';
import type { BrokerMessage } from '../../workers/transports/transport';

const BROKER = 44;
const RESULTS = 45;
const pyEnv = { BROKER_URL: testRedisUrl(BROKER), RESULT_BACKEND: testRedisUrl(RESULTS) };

let broker: Redis;
let results: Redis;

beforeAll(async () => {
  await Promise.all([flushDb(BROKER), flushDb(RESULTS)]);
  broker = redisClient(BROKER);
  results = redisClient(RESULTS);
});

afterAll(async () => {
  await Promise.all([broker.quit(), results.quit()]);
});

function envelope(message: BrokerMessage): string {
  return JSON.stringify(encodeEnvelope(message, '', 'celery'));
}

function withBody(body: string, contentType = 'application/json', task = 'demo.add'): string {
  const { message } = buildTaskMessage(task, [1, 2]);
  return envelope({ ...message, body: Buffer.from(body), contentType });
}

it('survives bad input and runs every valid task around it', async () => {
  const unknown = buildTaskMessage('no.such.task', [1]);
  const bad = [
    'not json at all',
    '{"body": "e30=", "properties": {}}',
    withBody('[[1, 2], {'),
    withBody('{"args": "not a list"}'),
    withBody('\x80\x04\x95.', 'application/x-python-serialize'),
    withBody('[1]', 'application/x-unknown'),
    envelope(unknown.message),
  ];
  const sendValid = (): Promise<{ ids: string[] }> =>
    pyClient<{ ids: string[] }>({ op: 'send_many', task: 'demo.add', args: [20, 22], count: 5 }, { env: pyEnv });
  const valid: string[] = [];
  for (const payload of bad) {
    valid.push(...(await sendValid()).ids);
    await broker.lpush('celery', payload);
  }
  valid.push(...(await sendValid()).ids);

  const worker = await startCeleriacWorker({ brokerUrl: testRedisUrl(BROKER), backendUrl: testRedisUrl(RESULTS), concurrency: 4 });
  const metas = await Promise.all(
    valid.map((id) => pyClient<{ state: string; result: unknown }>({ op: 'result', id, timeout: 20 }, { env: pyEnv })),
  );
  expect(metas.map((m) => [m.state, m.result])).toEqual(valid.map(() => ['SUCCESS', 42]));

  const unknownMeta = await pyClient<{ state: string; result: string }>({ op: 'result', id: unknown.id, timeout: 10 }, { env: pyEnv });
  expect(unknownMeta.state).toBe('FAILURE');
  expect(JSON.stringify(unknownMeta.result)).toMatch(/NotRegistered.*no\.such\.task|no\.such\.task.*NotRegistered/);

  const log = worker.output();
  expect(log).toMatch(/dropped a non-message/);
  expect(log).toMatch(/malformed json body/);
  expect(log).toMatch(/args must be a list|body must be/);
  expect(log).toMatch(/refusing to deserialize pickle/);
  expect(log).toMatch(/unknown content type/);
  expect(log).toMatch(/Received unregistered task of type 'no.such.task'/);
  expect(await broker.llen('celery')).toBe(0);
  // Acks travel on the broker connection, results on the backend's: under load the last acks
  // may land just after the last result. Nothing may stay unacked for long, though.
  for (let i = 0; i < 100 && (await broker.hlen('unacked')) > 0; i++) await new Promise((r) => setTimeout(r, 50));
  expect(await broker.hlen('unacked')).toBe(0);

  const exit = await worker.stop();
  expect(exit.code).toBe(0);
});

// {"toString": 0} as a number field made Number() throw: the message was rejected, and a restore
// (a dead worker's unacked message, or reject with requeue) failed on every sweep, leaving the
// message unacked for good. Both copies must run: one queued, one held by a "dead" worker.
it('runs a task whose numeric headers and priority are JSON objects, queued or restored from unacked', async () => {
  await Promise.all([flushDb(BROKER), flushDb(RESULTS)]);
  const odd = { toString: 0 };
  const oddEnvelope = (): { id: string; tag: string; payload: string } => {
    const { id, message } = buildTaskMessage('demo.add', [1, 2]);
    const env = encodeEnvelope({ ...message, headers: { ...message.headers, retries: odd, group_index: odd, timelimit: [odd, odd] } }, '', 'celery');
    (env.properties as Record<string, unknown>).priority = odd;
    return { id, tag: env.properties.delivery_tag, payload: JSON.stringify(env) };
  };
  const queued = oddEnvelope();
  await broker.lpush('celery', queued.payload);
  const held = oddEnvelope();
  // kombu's unacked layout: [message, exchange, routing_key], scored long before visibility_timeout.
  await broker.hset('unacked', held.tag, `[${held.payload}, "", "celery"]`);
  await broker.zadd('unacked_index', Date.now() / 1000 - 7200, held.tag);

  const worker = await startCeleriacWorker({ brokerUrl: testRedisUrl(BROKER), backendUrl: testRedisUrl(RESULTS), concurrency: 2 });
  try {
    const metas = await Promise.all(
      [queued.id, held.id].map((id) => pyClient<{ state: string; result: unknown }>({ op: 'result', id, timeout: 20 }, { env: pyEnv })),
    );
    expect(metas.map((m) => [m.state, m.result])).toEqual([
      ['SUCCESS', 3],
      ['SUCCESS', 3],
    ]);
    for (let i = 0; i < 100 && (await broker.hlen('unacked')) > 0; i++) await new Promise((r) => setTimeout(r, 50));
    expect(await broker.hlen('unacked')).toBe(0);
    expect(worker.output()).not.toMatch(/restore failed|TypeError/);
  } finally {
    expect((await worker.stop()).code).toBe(0);
  }
});
