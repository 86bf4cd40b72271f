// add_consumer / cancel_consumer sent to a Celeriac worker by real Python Celery's app.control,
// on Redis (broker db 20, results db 21) and on RabbitMQ (vhost control-consumers, results db 22):
// the worker starts and stops consuming a queue while it runs, and tasks Python sends there run
// or wait accordingly.
import os from 'node:os';
import { testRedisUrl } from '../helpers/env';
import { pyClient } from '../helpers/python';
import type { SendReply } from '../helpers/pyReplies';
import { startCeleriacWorker } from '../helpers/celeriacWorker';
import type { ProcessHandle } from '../helpers/processes';
import { flushDb, withRedis } from '../helpers/redis';
import { freshVhost, listQueues } from '../helpers/rabbit';
import { pyControl, type ControlCall } from '../helpers/control';

const VHOST = 'control-consumers';

interface Broker {
  broker: string;
  env: () => Promise<Record<string, string>>;
  /** Messages waiting in `queue`, as the broker itself counts them. */
  waiting: (queue: string) => Promise<number>;
}

const BROKERS: Broker[] = [
  {
    broker: 'Redis',
    env: async () => {
      await flushDb(20);
      await flushDb(21);
      return { BROKER_URL: testRedisUrl(20), RESULT_BACKEND: testRedisUrl(21) };
    },
    waiting: (queue) => withRedis(20, (r) => r.llen(queue)),
  },
  {
    broker: 'RabbitMQ',
    env: async () => {
      await flushDb(22);
      return { BROKER_URL: await freshVhost(VHOST), RESULT_BACKEND: testRedisUrl(22) };
    },
    waiting: async (queue) => (await listQueues(VHOST)).find((q) => q.name === queue)?.messages_ready ?? -1,
  },
];

interface QueueInfo {
  name: string;
  routing_key: string;
  exchange: { name: string; type: string };
}

describe.each(BROKERS)('add_consumer / cancel_consumer ($broker)', ({ broker, env: brokerEnv, waiting }) => {
  const hostname = `ctl-consumers-${broker.toLowerCase()}-${process.pid}@${os.hostname()}`;
  let env: Record<string, string>;
  let worker: ProcessHandle;

  const control = (calls: ControlCall[], waitPing = false): Promise<unknown[]> =>
    pyControl(env, calls, { destination: [hostname], ...(waitPing ? { waitFor: [hostname] } : {}) });
  const activeQueues = async (): Promise<QueueInfo[]> => {
    const [reply] = (await control([['inspect', 'active_queues', [], {}]])) as [Record<string, QueueInfo[]>];
    return reply[hostname]!;
  };
  /** Python sends demo.add(x, y) with extra send_task options; wait=true waits for its result. */
  const send = (x: number, options: Record<string, unknown>, wait: boolean): Promise<SendReply> =>
    pyClient<SendReply>({ op: 'send', task: 'demo.add', args: [x, 1], options, wait, timeout: 15 }, { env });
  const state = async (id: string): Promise<string> => (await pyClient<{ state: string }>({ op: 'state', id }, { env })).state;

  beforeAll(async () => {
    env = await brokerEnv();
    worker = await startCeleriacWorker({ brokerUrl: env.BROKER_URL!, backendUrl: env.RESULT_BACKEND, hostname, concurrency: 2 });
  });

  afterAll(async () => {
    await worker?.stop().catch(() => undefined);
  });

  it('add_consumer consumes a new queue (or one bound to the exchange and key given); cancel_consumer stops it, and its tasks wait', async () => {
    const replies = await control(
      [
        ['control', 'add_consumer', ['extra'], {}],
        ['control', 'add_consumer', ['routed'], { exchange: 'ex.routed', routing_key: 'rk.routed' }],
        // Already consumed: Celery answers the same and changes nothing.
        ['control', 'add_consumer', ['extra'], {}],
      ],
      true,
    );
    expect(replies).toEqual([
      [{ [hostname]: { ok: 'add consumer extra' } }],
      [{ [hostname]: { ok: 'add consumer routed' } }],
      [{ [hostname]: { ok: 'add consumer extra' } }],
    ]);
    expect(await activeQueues()).toEqual([
      expect.objectContaining({ name: 'celery', routing_key: 'celery', exchange: expect.objectContaining({ name: 'celery', type: 'direct' }) }),
      expect.objectContaining({ name: 'extra', routing_key: 'extra', exchange: expect.objectContaining({ name: 'extra', type: 'direct' }) }),
      expect.objectContaining({ name: 'routed', routing_key: 'rk.routed', exchange: expect.objectContaining({ name: 'ex.routed', type: 'direct' }) }),
    ]);

    const viaQueue = await send(1, { queue: 'extra' }, true);
    expect(viaQueue).toMatchObject({ state: 'SUCCESS', result: 2 });
    // Published to the exchange add_consumer declared, with its routing key: it reaches `routed`.
    const viaExchange = await send(2, { exchange: 'ex.routed', routing_key: 'rk.routed' }, true);
    expect(viaExchange).toMatchObject({ state: 'SUCCESS', result: 3 });
    await worker.waitForOutput(`demo.add[${viaExchange.id}] received`);

    const [cancelled] = await control([['control', 'cancel_consumer', ['extra'], {}]]);
    expect(cancelled).toEqual([{ [hostname]: { ok: 'no longer consuming from extra' } }]);
    expect((await activeQueues()).map((q) => q.name)).toEqual(['celery', 'routed']);

    const left = await send(3, { queue: 'extra' }, false);
    // The worker still runs what comes on its other queues meanwhile...
    expect(await send(4, {}, true)).toMatchObject({ state: 'SUCCESS', result: 5 });
    // ...and leaves the task on the cancelled queue alone (longer than a Redis poll takes).
    await new Promise((r) => setTimeout(r, 1500));
    expect(await waiting('extra')).toBe(1);
    expect(await state(left.id)).toBe('PENDING');
    expect(worker.output()).not.toContain(`demo.add[${left.id}] received`);

    // Consuming it again picks the waiting task up.
    await control([['control', 'add_consumer', ['extra'], {}]]);
    expect(await pyClient<{ state: string; result: unknown }>({ op: 'result', id: left.id, timeout: 15 }, { env })).toMatchObject({ state: 'SUCCESS', result: 4 });
    expect(await waiting('extra')).toBe(0);
  });

  it('with every queue cancelled the worker takes nothing, until add_consumer gives it one back', async () => {
    const names = (await activeQueues()).map((q) => q.name);
    const replies = await control(names.map((q): ControlCall => ['control', 'cancel_consumer', [q], {}]));
    expect(replies).toEqual(names.map((q) => [{ [hostname]: { ok: `no longer consuming from ${q}` } }]));
    expect(await activeQueues()).toEqual([]);

    const idle = await send(10, {}, false);
    await new Promise((r) => setTimeout(r, 1500));
    expect(await waiting('celery')).toBe(1);
    expect(await state(idle.id)).toBe('PENDING');

    await control([['control', 'add_consumer', ['celery'], {}]]);
    expect(await pyClient<{ state: string; result: unknown }>({ op: 'result', id: idle.id, timeout: 15 }, { env })).toMatchObject({ state: 'SUCCESS', result: 11 });
    expect((await activeQueues()).map((q) => q.name)).toEqual(['celery']);
  });
});
