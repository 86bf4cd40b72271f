// RabbitMQ's consumer_timeout closes the channel of a consumer holding an unacked message too long,
// and redelivers the message. For a long acks_late task that copy comes back to the same worker
// while the task still runs: it must not start twice, and both must end acknowledged. The node's
// timeout is lowered (rabbitmqctl eval) only while this file's worker opens its channel: channels
// read consumer_timeout when they open. Vhost amqp-consumer-timeout; Redis dbs 47-48.
import { testRedisUrl } from '../helpers/env';
import { pyClient } from '../helpers/python';
import { startCeleriacWorker } from '../helpers/celeriacWorker';
import { flushDb, redisClient } from '../helpers/redis';
import { freshVhost, listQueues, rabbitctl } from '../helpers/rabbit';

const LEDGER = 47;
const RESULTS = 48;
const VHOST = 'amqp-consumer-timeout';

async function setRabbitEnv(key: string, value: string): Promise<void> {
  await rabbitctl(['eval', `application:set_env(rabbit, ${key}, ${value}).`]);
}

afterAll(async () => {
  // Back to RabbitMQ's defaults for every later file (30 min; 60 s channel tick).
  await setRabbitEnv('consumer_timeout', '1800000');
  await setRabbitEnv('channel_tick_interval', '60000');
});

it('a task outliving consumer_timeout runs once; its redelivered copy is acked with it', async () => {
  await Promise.all([flushDb(LEDGER), flushDb(RESULTS)]);
  const url = await freshVhost(VHOST);
  await setRabbitEnv('channel_tick_interval', '500');
  await setRabbitEnv('consumer_timeout', '2000');
  const worker = await startCeleriacWorker({
    brokerUrl: url,
    backendUrl: testRedisUrl(RESULTS),
    app: 'tests/fixtures/tasks.ts',
    concurrency: 2,
    env: { CELERIAC_TEST_LEDGER_URL: testRedisUrl(LEDGER) },
  });
  const ledger = redisClient(LEDGER);
  try {
    const sent = await pyClient<{ id: string }>({ op: 'send', task: 'test.slow_late', args: ['long', 6000] }, { env: { BROKER_URL: url } });
    await worker.waitForOutput(`[${sent.id}] received`);
    // The channel the task came on dies after ~2 s; the reconnect opens channels with the default again.
    await worker.waitForOutput(/connection lost/, 10_000);
    await setRabbitEnv('consumer_timeout', '1800000');
    await worker.waitForOutput(`[${sent.id}] redelivered while running here`, 10_000);
    const done = await pyClient<{ state: string; result: unknown }>(
      { op: 'result', id: sent.id, timeout: 20 },
      { env: { BROKER_URL: url, RESULT_BACKEND: testRedisUrl(RESULTS) } },
    );
    expect([done.state, done.result]).toEqual(['SUCCESS', 'long']);
    expect(await ledger.lrange('ledger', 0, -1)).toHaveLength(1);
    await new Promise((r) => setTimeout(r, 500));
    const q = (await listQueues(VHOST)).find((x) => x.name === 'celery');
    expect(q).toMatchObject({ messages_ready: 0, messages_unacknowledged: 0 });
    expect((await worker.stop()).code).toBe(0);
  } finally {
    await ledger.quit();
  }
});
