// Fault suite, RabbitMQ restarts (rabbitmqctl stop_app / start_app) with work held across them:
// a countdown task held by the worker runs once (its timer from the dead connection is dropped),
// and rpc:// results (which travel over the broker) resume after the restart. The 10 s outage
// with thousands of tasks flowing is in faults-broker-outage.test.ts, kill -9 in
// faults-kill9.test.ts. Vhosts amqp-faults-restart-*; Redis db 123 (results).
import { testRedisUrl } from '../helpers/env';
import { pyClient } from '../helpers/python';
import { startCeleriacWorker } from '../helpers/celeriacWorker';
import { redisClient, type Redis } from '../helpers/redis';
import { freshVhost, startBroker, stopBroker, brokerStopped } from '../helpers/rabbit';
import { sleep, waitFor } from '../helpers/faults';

const RESTART_RESULTS = 123;

function countMatches(text: string, re: RegExp): number {
  return [...text.matchAll(new RegExp(re.source, re.flags.includes('g') ? re.flags : `${re.flags}g`))].length;
}

let restartResults: Redis;

beforeAll(async () => {
  restartResults = redisClient(RESTART_RESULTS);
  await restartResults.flushdb();
});

afterAll(async () => {
  if (brokerStopped()) await startBroker();
  await restartResults.quit();
});

describe('broker restart (rabbitmqctl stop_app, start_app) with work held across it', () => {
  it('a countdown task held across the restart runs once (its timer from the dead connection is dropped)', async () => {
    const VHOST = 'amqp-faults-restart-eta';
    const url = await freshVhost(VHOST);
    const pyEnv = { BROKER_URL: url, RESULT_BACKEND: testRedisUrl(RESTART_RESULTS) };
    const worker = await startCeleriacWorker({ brokerUrl: url, backendUrl: testRedisUrl(RESTART_RESULTS), concurrency: 4 });
    try {
      const sent = await pyClient<{ id: string }>({ op: 'send', task: 'demo.echo', args: ['eta-once'], options: { countdown: 4 } }, { env: pyEnv });
      const received = new RegExp(`Task demo\\.echo\\[${sent.id}\\] received`, 'g');
      const succeeded = new RegExp(`Task demo\\.echo\\[${sent.id}\\] succeeded`, 'g');
      await waitFor(() => countMatches(worker.output(), received) === 1, 5_000, 'the worker to hold the countdown task');
      await stopBroker();
      await sleep(1_500);
      await startBroker();
      await waitFor(() => /reconnected/.test(worker.output()), 15_000, 'the worker to reconnect');
      const got = await pyClient<{ state: string; result: unknown }>({ op: 'get', id: sent.id, timeout: 15 }, { env: pyEnv });
      expect(got).toMatchObject({ state: 'SUCCESS', result: 'eta-once' });
      // Both copies (the dead connection's and RabbitMQ's redelivery) were due at the same time.
      await sleep(1_000);
      expect(countMatches(worker.output(), succeeded)).toBe(1);
    } finally {
      await worker.stop();
    }
  });

  it('with rpc:// results the worker also reconnects its result connection: results sent after the restart arrive', async () => {
    const VHOST = 'amqp-faults-restart-rpc';
    const url = await freshVhost(VHOST);
    const pyEnv = { BROKER_URL: url, RESULT_BACKEND: 'rpc://' };
    const worker = await startCeleriacWorker({ brokerUrl: url, backendUrl: 'rpc://', concurrency: 4 });
    try {
      expect(await pyClient({ op: 'send', task: 'demo.add', args: [1, 2], wait: true }, { env: pyEnv })).toMatchObject({ result: 3 });
      await stopBroker();
      await sleep(2_000);
      await startBroker();
      await waitFor(() => /reconnected/.test(worker.output()), 15_000, 'the worker to reconnect');
      const after = await pyClient<{ state: string; result: unknown; exc_type: string | null }>(
        { op: 'send', task: 'demo.add', args: [2, 3], wait: true, timeout: 10 },
        { env: pyEnv },
      );
      expect(after).toMatchObject({ state: 'SUCCESS', result: 5, exc_type: null });
    } finally {
      await worker.stop();
    }
    expect(worker.output()).not.toMatch(/could not be completed/);
  });
});
