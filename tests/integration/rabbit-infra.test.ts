// Proves the RabbitMQ side of the integration infrastructure (tests/setup/rabbitServer.ts,
// tests/helpers/rabbit.ts) works end to end: the run's node answers AMQP, Python Celery produces
// to it and consumes from it with the rpc:// result backend, and the broker can be stopped and
// started again mid-run. Uses vhosts rabbit-infra-*.
//
// What Python Celery 5.7.0 / kombu 5.7.0 declare on RabbitMQ 3.10 with pyapp's defaults (asserted
// below; this is what the AMQP transport must match, or the first declarer wins and the other
// side gets 406 PRECONDITION_FAILED):
//   exchange `celery`   type direct, durable, not auto-delete, no arguments
//   queue    `celery`   durable, not auto-delete, not exclusive, NO arguments (no x-max-priority,
//                       no x-queue-type: a classic queue), bound to exchange `celery` with routing
//                       key `celery`
//   task message        published to the DEFAULT exchange '' with routing key `celery`;
//                       properties: content_type application/json, content_encoding utf-8,
//                       delivery_mode 2 (persistent), priority 0, correlation_id = task id, the
//                       protocol-2 headers (lang, task, id, root_id, retries, argsrepr, ...);
//                       and reply_to = the client's oid (a uuid) even without a result backend
//   rpc:// reply queue  named by the client's oid (a uuid), durable, auto-delete, not exclusive,
//                       x-expires = result_expires in ms (86400000); bound only to the default exchange (declared by the client
//                       when it sends, so it exists before any result is published)
//   worker pidbox       `<hostname>.celery.pidbox`: exclusive, auto-delete, non-durable queue
//                       bound to the fanout exchange `celery.pidbox` (non-durable), even with
//                       --without-mingle --without-gossip (remote control is still on)
import amqp from 'amqplib';
import net from 'node:net';
import { testAmqpPort } from '../helpers/env';
import { pyClient } from '../helpers/python';
import { startPythonWorker } from '../helpers/pyworker';
import {
  brokerStopped,
  freshVhost,
  listBindings,
  listExchanges,
  listQueues,
  rabbitctl,
  startBroker,
  stopBroker,
  testAmqpUrl,
} from '../helpers/rabbit';
import type { SendReply } from '../helpers/pyReplies';

/** Connects with error handlers attached, so a broker-side close never becomes an unhandled 'error'. */
async function connect(url: string): Promise<{ conn: amqp.ChannelModel; errors: Error[]; closed: Promise<Error | undefined> }> {
  const conn = await amqp.connect(url);
  const errors: Error[] = [];
  conn.on('error', (err: Error) => errors.push(err));
  const closed = new Promise<Error | undefined>((resolve) => conn.on('close', (err?: Error) => resolve(err)));
  return { conn, errors, closed };
}

function tcpRefused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ host: '127.0.0.1', port });
    sock.on('connect', () => (sock.destroy(), resolve(false)));
    sock.on('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED'));
  });
}

describe('environment', () => {
  it('exports the AMQP port and URLs in the kombu/amqplib form', () => {
    const port = testAmqpPort();
    expect(port).toBeGreaterThan(0);
    expect(process.env.CELERIAC_TEST_AMQP_URL).toBe(`amqp://guest:guest@127.0.0.1:${port}//`);
    expect(testAmqpUrl()).toBe(`amqp://guest:guest@127.0.0.1:${port}//`);
    expect(testAmqpUrl('a b/c')).toBe(`amqp://guest:guest@127.0.0.1:${port}/a%20b%2Fc`);
    expect(process.env.CELERIAC_TEST_RABBIT_NODE).toMatch(/^celeriac-\d+@localhost$/);
  });

  it('rabbitctl talks to the run node and reports failures with the CLI output', async () => {
    expect(await rabbitctl(['eval', 'node().'])).toContain(process.env.CELERIAC_TEST_RABBIT_NODE as string);
    await expect(rabbitctl(['delete_vhost', 'rabbit-infra-no-such-vhost'])).rejects.toThrow(
      /delete_vhost rabbit-infra-no-such-vhost failed \(exit code \d+\)[\s\S]*does not exist/,
    );
  });
});

describe('amqplib against a fresh vhost', () => {
  it('declares a queue, publishes and gets the message back', async () => {
    const url = await freshVhost('rabbit-infra-amqplib');
    expect(url).toBe(`amqp://guest:guest@127.0.0.1:${testAmqpPort()}/rabbit-infra-amqplib`);
    const { conn } = await connect(url);
    try {
      const ch = await conn.createChannel();
      await ch.assertQueue('infra-q', { durable: false });
      ch.sendToQueue('infra-q', Buffer.from('hello'), { contentType: 'text/plain' });
      let msg: amqp.GetMessage | false = false;
      for (let i = 0; i < 50 && !msg; i++) {
        msg = await ch.get('infra-q', { noAck: true });
        if (!msg) await new Promise((r) => setTimeout(r, 20));
      }
      expect(msg && msg.content.toString()).toBe('hello');
      expect(msg && msg.properties.contentType).toBe('text/plain');
    } finally {
      await conn.close();
    }
    // freshVhost really starts from scratch: the queue is gone after a second call.
    await freshVhost('rabbit-infra-amqplib');
    expect(await listQueues('rabbit-infra-amqplib')).toEqual([]);
  });
});

describe('Python Celery producer -> RabbitMQ', () => {
  it('client.py send declares `celery` as Celery does and leaves one message on it', async () => {
    const vhost = 'rabbit-infra-producer';
    const url = await freshVhost(vhost);
    const reply = await pyClient<SendReply>(
      { op: 'send', task: 'py.add', args: [2, 3], wait: false },
      { env: { BROKER_URL: url, RESULT_BACKEND: '' } },
    );
    expect(reply.id).toMatch(/^[0-9a-f-]{36}$/);

    expect(await listQueues(vhost)).toEqual([
      {
        name: 'celery',
        messages: 1,
        messages_ready: 1,
        messages_unacknowledged: 0,
        consumers: 0,
        arguments: {},
        durable: true,
        auto_delete: false,
        exclusive: false,
      },
    ]);
    const exchanges = await listExchanges(vhost);
    expect(exchanges.find((x) => x.name === 'celery')).toEqual({
      name: 'celery',
      type: 'direct',
      durable: true,
      auto_delete: false,
      internal: false,
      arguments: {},
    });
    expect(await listBindings(vhost)).toContainEqual({
      source_name: 'celery',
      destination_name: 'celery',
      destination_kind: 'queue',
      routing_key: 'celery',
      arguments: {},
    });

    const { conn } = await connect(url);
    try {
      const ch = await conn.createChannel();
      const msg = await ch.get('celery', { noAck: true });
      if (!msg) throw new Error('no message on `celery`');
      expect(msg.fields).toMatchObject({ exchange: '', routingKey: 'celery', redelivered: false });
      expect(msg.properties).toMatchObject({
        contentType: 'application/json',
        contentEncoding: 'utf-8',
        deliveryMode: 2,
        priority: 0,
        correlationId: reply.id,
      });
      // reply_to is set even without a result backend (the client's oid); no queue of that name
      // exists: only the rpc:// backend declares one.
      expect(msg.properties.replyTo).toMatch(/^[0-9a-f-]{36}$/);
      expect(msg.properties.headers).toMatchObject({ lang: 'py', task: 'py.add', id: reply.id, root_id: reply.id, retries: 0 });
      expect(JSON.parse(msg.content.toString('utf8'))).toEqual([
        [2, 3],
        {},
        { callbacks: null, errbacks: null, chain: null, chord: null },
      ]);
    } finally {
      await conn.close();
    }
  });
});

describe('Python worker with the rpc:// backend', () => {
  it('runs py.add sent by client.py and the result comes back over rpc://', async () => {
    const vhost = 'rabbit-infra-worker';
    const url = await freshVhost(vhost);
    const worker = await startPythonWorker({ brokerUrl: url, backendUrl: 'rpc://' });
    try {
      const reply = await pyClient<SendReply>(
        { op: 'send', task: 'py.add', args: [2, 3], wait: true, timeout: 20 },
        { env: { BROKER_URL: url, RESULT_BACKEND: 'rpc://' } },
      );
      expect(reply).toMatchObject({ state: 'SUCCESS', result: 5, exc_type: null });

      // Not `messages: 0` here: Python's solo worker sometimes leaves the ack of a finished task
      // unsent until its event loop next wakes (up to 10 s on amqp, see below); it is sent by the
      // time the worker has stopped.
      const queues = await listQueues(vhost);
      expect(queues.find((q) => q.name === 'celery')).toMatchObject({ consumers: 1, durable: true, arguments: {} });
      expect(queues.find((q) => q.name.endsWith('.celery.pidbox'))).toMatchObject({
        durable: false,
        auto_delete: true,
        exclusive: true,
        consumers: 1,
      });
    } finally {
      // Takes ~10 s: on amqp, kombu's hub sleeps in poll() for up to 10 s (fire_timers max_delay)
      // and only then sees the SIGTERM flag; the redis transport's polling timer wakes it sooner.
      expect(await worker.stop()).toEqual({ code: 0, signal: null });
    }
    expect(worker.output()).toMatch(/Task py\.add\[[0-9a-f-]+\] succeeded/);
    expect((await listQueues(vhost)).find((q) => q.name === 'celery')).toMatchObject({ messages: 0, consumers: 0 });
  });

  it('the rpc:// client declares its reply queue when it sends (durable, auto-delete, x-expires = result_expires)', async () => {
    const vhost = 'rabbit-infra-rpc';
    const url = await freshVhost(vhost);
    await pyClient<SendReply>(
      { op: 'send', task: 'py.add', args: [1, 1], wait: false },
      { env: { BROKER_URL: url, RESULT_BACKEND: 'rpc://' } },
    );
    const queues = await listQueues(vhost);
    const reply = queues.filter((q) => q.name !== 'celery');
    expect(reply).toEqual([
      expect.objectContaining({ durable: true, auto_delete: true, exclusive: false, arguments: { 'x-expires': 86_400_000 }, messages: 0 }),
    ]);
    expect(reply[0].name).toMatch(/^[0-9a-f-]{36}$/);
    const { conn } = await connect(url);
    try {
      const msg = await (await conn.createChannel()).get('celery', { noAck: true });
      expect(msg && msg.properties.replyTo).toBe(reply[0].name);
    } finally {
      await conn.close();
    }
  });
});

// rabbit.ts's own afterAll starts the broker again if this test fails while it is stopped.
describe('stopBroker / startBroker', () => {
  it('drops client connections, refuses new ones, and keeps durable queues with persistent messages', async () => {
    const vhost = 'rabbit-infra-restart';
    const url = await freshVhost(vhost);
    const before = await connect(url);
    const ch = await before.conn.createChannel();
    ch.on('error', () => undefined);
    await ch.assertQueue('durable-q', { durable: true });
    await ch.assertQueue('transient-q', { durable: false });
    ch.sendToQueue('durable-q', Buffer.from('survives'), { persistent: true });
    ch.sendToQueue('transient-q', Buffer.from('lost'), { persistent: false });
    // Wait until the broker has both messages (basic.publish has no reply).
    for (let i = 0; i < 100; i++) {
      const qs = await listQueues(vhost);
      if (qs.every((q) => q.messages === 1) && qs.length === 2) break;
      await new Promise((r) => setTimeout(r, 50));
    }

    const t0 = Date.now();
    await stopBroker();
    const stopMs = Date.now() - t0;
    const closeErr = await before.closed;
    expect(closeErr?.message).toMatch(/CONNECTION[-_]FORCED/);
    expect(brokerStopped()).toBe(true);
    expect(await tcpRefused(testAmqpPort())).toBe(true);
    await expect(amqp.connect(url)).rejects.toThrow(/ECONNREFUSED/);

    const t1 = Date.now();
    await startBroker();
    const startMs = Date.now() - t1;
    expect(brokerStopped()).toBe(false);
    // Generous bounds: this is about "same node, no re-boot", not a benchmark (~0.3 s + ~0.5 s here).
    expect(stopMs).toBeLessThan(15_000);
    expect(startMs).toBeLessThan(30_000);

    const after = await connect(url);
    try {
      const ch2 = await after.conn.createChannel();
      const msg = await ch2.get('durable-q', { noAck: true });
      expect(msg && msg.content.toString()).toBe('survives');
      expect(msg && msg.properties.deliveryMode).toBe(2);
      const names = (await listQueues(vhost)).map((q) => q.name);
      expect(names).toEqual(['durable-q']); // the non-durable queue did not survive
    } finally {
      await after.conn.close();
    }
  });
});
