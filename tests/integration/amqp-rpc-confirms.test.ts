/**
 * rpc:// results and publisher confirms (workers/backends/rpc.ts, #16). A result whose task message
 * is acked already (early ack, the default) goes out without a confirm, as Celery publishes it
 * (kombu's confirm_publish is off by default). A result the caller acks after (acks_late) resolves
 * only on the broker's confirm, so a refused result is never followed by the ack. confirm_publish
 * confirms every result. A reply queue with x-max-length 1 and x-overflow reject-publish makes
 * RabbitMQ nack every publish once it holds one message: that refusal is what a confirm reports.
 */
import { connect, type ChannelModel } from 'amqplib';
import { RpcBackend } from '../../workers/backends/rpc';
import { buildMeta } from '../../workers/backends/meta';
import { buildTaskMessage } from '../../workers/protocol/message';
import { publishOptions } from '../../workers/transports/amqp/broadcast';
import { freshVhost } from '../helpers/rabbit';
import { startCeleriacWorker } from '../helpers/celeriacWorker';
import { pyClient } from '../helpers/python';
import type { SendReply } from '../helpers/pyReplies';

describe('rpc:// result confirms', () => {
  let url: string;
  let admin: ChannelModel;

  beforeAll(async () => {
    url = await freshVhost('rpc-confirms');
    admin = await connect(url);
  });

  afterAll(async () => {
    await admin.close().catch(() => undefined);
  });

  /** A reply queue that holds one message and makes the broker nack every publish after it. */
  async function fullQueue(name: string): Promise<void> {
    const ch = await admin.createChannel();
    await ch.assertQueue(name, { durable: false, arguments: { 'x-max-length': 1, 'x-overflow': 'reject-publish' } });
    await ch.purgeQueue(name);
    ch.sendToQueue(name, Buffer.from('{}'));
    await ch.close();
  }

  async function messagesIn(name: string): Promise<number> {
    const ch = await admin.createChannel();
    try {
      return (await ch.checkQueue(name)).messageCount;
    } finally {
      await ch.close();
    }
  }

  async function until(check: () => Promise<boolean>, what: string, timeoutMs = 15_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  describe('RpcBackend.store', () => {
    let backend: RpcBackend;

    afterEach(async () => {
      await backend.close();
    });

    test('an acked task\'s result is sent without a confirm; a result the caller acks after waits for it', async () => {
      backend = new RpcBackend({ brokerUrl: url });
      await backend.connect();
      await fullQueue('reply-full');
      // Dropped by the broker, unseen, as Celery's unconfirmed publish is.
      await expect(backend.store(buildMeta('acked-1', 'SUCCESS', 1), { replyTo: 'reply-full', messageAcked: true })).resolves.toBeUndefined();
      // Not acked yet: the caller acks after this, so it must see the refusal (5 attempts, then the error).
      await expect(backend.store(buildMeta('late-1', 'SUCCESS', 1), { replyTo: 'reply-full' })).rejects.toThrow();
      expect(await messagesIn('reply-full')).toBe(1);
    });

    test('confirmPublish (kombu confirm_publish) confirms an acked task\'s result too', async () => {
      backend = new RpcBackend({ brokerUrl: url, confirmPublish: true });
      await backend.connect();
      await fullQueue('reply-full-confirmed');
      await expect(backend.store(buildMeta('acked-2', 'SUCCESS', 2), { replyTo: 'reply-full-confirmed', messageAcked: true })).rejects.toThrow();
    });

    test('unconfirmed results all arrive, in the order stored', async () => {
      backend = new RpcBackend({ brokerUrl: url });
      await backend.connect();
      const ch = await admin.createChannel();
      await ch.assertQueue('reply-open', { durable: false });
      await ch.purgeQueue('reply-open');
      await Promise.all(Array.from({ length: 200 }, (_, i) => backend.store(buildMeta(`ok-${i}`, 'SUCCESS', i), { replyTo: 'reply-open', messageAcked: true })));
      await until(async () => (await ch.checkQueue('reply-open')).messageCount === 200, '200 results in reply-open');
      const ids: string[] = [];
      for (let msg = await ch.get('reply-open', { noAck: true }); msg; msg = await ch.get('reply-open', { noAck: true })) {
        ids.push(String(msg.properties.correlationId));
      }
      await ch.close();
      expect(ids).toEqual(Array.from({ length: 200 }, (_, i) => `ok-${i}`));
    });
  });

  describe('a worker', () => {
    /** demo.add(2, 3) with its result to `replyTo`, published straight to the worker's queue. */
    async function sendAdd(replyTo: string): Promise<void> {
      const { message } = buildTaskMessage('demo.add', [2, 3], {}, { replyTo });
      const ch = await admin.createConfirmChannel();
      await new Promise<void>((resolve, reject) => ch.publish('', 'celery', message.body, publishOptions(message), (err) => (err ? reject(err) : resolve())));
      await ch.close();
    }

    test('early ack: a result the broker drops costs no error and no retry; the next result arrives', async () => {
      await fullQueue('worker-reply-full');
      const ch = await admin.createChannel();
      await ch.assertQueue('worker-reply-open', { durable: false });
      const worker = await startCeleriacWorker({ brokerUrl: url, backendUrl: 'rpc://', concurrency: 2 });
      try {
        await sendAdd('worker-reply-full');
        await sendAdd('worker-reply-open');
        await until(async () => (await ch.checkQueue('worker-reply-open')).messageCount === 1, 'the second result');
        const msg = await ch.get('worker-reply-open', { noAck: true });
        expect(msg && JSON.parse(msg.content.toString())).toMatchObject({ status: 'SUCCESS', result: 5 });
        expect(await messagesIn('celery')).toBe(0);
      } finally {
        await ch.close();
        await worker.stop();
      }
      expect(worker.output()).not.toMatch(/could not be completed/);
      expect(await messagesIn('worker-reply-full')).toBe(1);
    });

    test('a result too deep to encode reaches the caller\'s reply queue as an EncodeError FAILURE', async () => {
      const ch = await admin.createChannel();
      await ch.assertQueue('worker-reply-encode', { durable: false });
      const worker = await startCeleriacWorker({ brokerUrl: url, backendUrl: 'rpc://', concurrency: 1 });
      try {
        // demo.echo returns its argument: nested 20,000 deep, it parses but cannot be written back.
        const { id, message } = buildTaskMessage('demo.echo', [0], {}, { replyTo: 'worker-reply-encode' });
        const deep = '['.repeat(20_000) + ']'.repeat(20_000);
        const body = Buffer.from(`[[${deep}], {}, {"callbacks": null, "errbacks": null, "chain": null, "chord": null}]`);
        const pub = await admin.createConfirmChannel();
        await new Promise<void>((resolve, reject) => pub.publish('', 'celery', body, publishOptions(message), (err) => (err ? reject(err) : resolve())));
        await pub.close();
        await until(async () => (await ch.checkQueue('worker-reply-encode')).messageCount === 1, 'the EncodeError result');
        const msg = await ch.get('worker-reply-encode', { noAck: true });
        expect(msg && msg.properties.correlationId).toBe(id);
        expect(msg && JSON.parse(msg.content.toString())).toMatchObject({ status: 'FAILURE', result: { exc_type: 'EncodeError' } });
      } finally {
        await ch.close();
        await worker.stop();
      }
      expect(worker.output()).not.toMatch(/could not be completed/);
    });

    test('confirm_publish: an early-acked task\'s refused result is reported', async () => {
      await fullQueue('worker-reply-full-confirmed');
      const worker = await startCeleriacWorker({ brokerUrl: url, backendUrl: 'rpc://', concurrency: 1, env: { CELERIAC_CONFIRM_PUBLISH: 'true' } });
      try {
        await sendAdd('worker-reply-full-confirmed');
        await worker.waitForOutput(/demo\.add\[[^\]]+\] could not be completed/, 30_000);
      } finally {
        await worker.stop();
      }
      expect(await messagesIn('celery')).toBe(0); // acked as it started, as without confirm_publish
    });

    test('Python Celery gets results both ways: unconfirmed (early ack) and confirmed (acks_late)', async () => {
      const env = { BROKER_URL: url, RESULT_BACKEND: 'rpc://' };
      for (const acksLate of ['false', 'true']) {
        const worker = await startCeleriacWorker({ brokerUrl: url, backendUrl: 'rpc://', concurrency: 2, env: { CELERIAC_TASK_ACKS_LATE: acksLate } });
        try {
          const reply = await pyClient<SendReply>({ op: 'send', task: 'demo.add', args: [20, 22], wait: true, timeout: 20 }, { env });
          expect(reply).toMatchObject({ state: 'SUCCESS', result: 42 });
        } finally {
          await worker.stop();
        }
        expect(await messagesIn('celery')).toBe(0);
      }
    });

    test('acks_late: a result the broker refuses is never followed by the ack; the message stays queued', async () => {
      await fullQueue('worker-reply-full-late');
      const worker = await startCeleriacWorker({ brokerUrl: url, backendUrl: 'rpc://', concurrency: 1, env: { CELERIAC_TASK_ACKS_LATE: 'true', CELERIAC_LOG_LEVEL: 'info' } });
      try {
        await sendAdd('worker-reply-full-late');
        await worker.waitForOutput(/demo\.add\[[^\]]+\] could not be completed/, 30_000);
      } finally {
        await worker.stop();
      }
      // Its channel closed with the worker: the unacked message is back in the queue.
      await until(async () => (await messagesIn('celery')) === 1, 'the message back in celery');
      const ch = await admin.createChannel();
      await ch.purgeQueue('celery');
      await ch.close();
    });
  });
});
