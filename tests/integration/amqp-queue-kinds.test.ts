// task_queues with a topic exchange, and quorum queues (task_create_missing_queue_type), on a real
// RabbitMQ: declared as asked, and Python-sent tasks routed through them reach a Celeriac worker.
// Quorum queues refuse global QoS, so this also proves the per-consumer prefetch path.
// Vhosts amqp-kinds-*; Redis db 49 (results).
import { testRedisUrl } from '../helpers/env';
import { pyClient } from '../helpers/python';
import { startCeleriacWorker } from '../helpers/celeriacWorker';
import { flushDb } from '../helpers/redis';
import { freshVhost, listBindings, listExchanges, listQueues } from '../helpers/rabbit';
import type { SendReply } from '../helpers/pyReplies';

const RESULTS = 49;

beforeAll(() => flushDb(RESULTS));

it('a task_queues entry on a topic exchange is declared and receives tasks by routing key', async () => {
  const vhost = 'amqp-kinds-topic';
  const url = await freshVhost(vhost);
  const queues = [{ name: 'reports', exchange: 'jobs', exchange_type: 'topic', routing_key: 'reports.#' }];
  const worker = await startCeleriacWorker({
    brokerUrl: url,
    backendUrl: testRedisUrl(RESULTS),
    queues: ['reports'],
    env: { CELERIAC_TASK_QUEUES: JSON.stringify(queues) },
  });
  expect((await listExchanges(vhost)).find((x) => x.name === 'jobs')).toMatchObject({ type: 'topic', durable: true });
  expect(await listBindings(vhost)).toContainEqual(
    expect.objectContaining({ source_name: 'jobs', destination_name: 'reports', routing_key: 'reports.#' }),
  );
  const sent = await pyClient<SendReply>(
    { op: 'send', task: 'demo.add', args: [20, 22], options: { exchange: 'jobs', routing_key: 'reports.daily' }, wait: true, timeout: 20 },
    { env: { BROKER_URL: url, RESULT_BACKEND: testRedisUrl(RESULTS) } },
  );
  expect([sent.state, sent.result]).toEqual(['SUCCESS', 42]);
  expect((await worker.stop()).code).toBe(0);
});

it('task_create_missing_queue_type=quorum declares quorum queues and consumes them', async () => {
  const vhost = 'amqp-kinds-quorum';
  const url = await freshVhost(vhost);
  const worker = await startCeleriacWorker({
    brokerUrl: url,
    backendUrl: testRedisUrl(RESULTS),
    queues: ['qq'],
    concurrency: 2,
    env: { CELERIAC_CREATE_MISSING_QUEUE_TYPE: 'quorum' },
  });
  expect((await listQueues(vhost)).find((q) => q.name === 'qq')).toMatchObject({ arguments: { 'x-queue-type': 'quorum' }, durable: true });
  const sent = await pyClient<{ ids: string[] }>(
    { op: 'send_many', task: 'demo.add', args: [1, 2], options: { queue: 'qq' }, count: 20 },
    // A producer declares the queue too: with another type RabbitMQ refuses it (as for Python workers).
    { env: { BROKER_URL: url, CREATE_MISSING_QUEUE_TYPE: 'quorum' } },
  );
  const results = await Promise.all(
    sent.ids.map((id) => pyClient<{ state: string; result: unknown }>({ op: 'result', id, timeout: 20 }, { env: { BROKER_URL: url, RESULT_BACKEND: testRedisUrl(RESULTS) } })),
  );
  expect(results.map((r) => [r.state, r.result])).toEqual(sent.ids.map(() => ['SUCCESS', 3]));
  expect(worker.output()).not.toMatch(/PRECONDITION_FAILED|NOT_IMPLEMENTED/);
  expect((await worker.stop()).code).toBe(0);
});
