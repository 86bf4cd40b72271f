/**
 * batchFrameWrites (workers/transports/amqp/writeBatch.ts): the frames amqplib queues in one turn
 * of the event loop leave in one writev instead of one write each (#16), and every one of them
 * still reaches RabbitMQ: publishes arrive, acks are taken (nothing is redelivered).
 */
import type { Socket } from 'node:net';
import { connect, type ChannelModel, type ConsumeMessage } from 'amqplib';
import { batchFrameWrites } from '../../workers/transports/amqp/writeBatch';
import { freshVhost } from '../helpers/rabbit';

const N = 50;

/** Counts the socket's write calls: one per frame unbatched, one writev per corked pass. */
function countWrites(model: ChannelModel): { writes: number; writevs: number } {
  type Writer = (...args: unknown[]) => void;
  const socket = (model.connection as unknown as { stream: Socket & { _write: Writer; _writev: Writer } }).stream;
  const counts = { writes: 0, writevs: 0 };
  const write = socket._write.bind(socket);
  const writev = socket._writev.bind(socket);
  socket._write = (...a: unknown[]) => {
    counts.writes++;
    write(...a);
  };
  socket._writev = (...a: unknown[]) => {
    counts.writevs++;
    writev(...a);
  };
  return counts;
}

describe('AMQP frame writes batched per event-loop turn', () => {
  let model: ChannelModel;

  beforeEach(async () => {
    model = await connect(await freshVhost('write-batch'));
  });

  afterEach(async () => {
    await model.close().catch(() => undefined);
  });

  test('50 publishes made in one turn go out in one writev, and all arrive', async () => {
    expect(batchFrameWrites(model)).toBe(true);
    expect(batchFrameWrites(model)).toBe(true); // a second call does not wrap twice
    const ch = await model.createConfirmChannel();
    await ch.assertQueue('wb', { durable: false });
    const counts = countWrites(model);
    const confirmed = Array.from({ length: N }, (_, i) => new Promise<void>((resolve, reject) => {
      ch.publish('', 'wb', Buffer.from(String(i)), {}, (err) => (err ? reject(err) : resolve()));
    }));
    await Promise.all(confirmed);
    // 50 messages are 150 frames (method, header, body): all in one writev.
    expect(counts).toEqual({ writes: 0, writevs: 1 });
    expect((await ch.checkQueue('wb')).messageCount).toBe(N);
  });

  test('acks made in one turn leave together and RabbitMQ takes every one', async () => {
    batchFrameWrites(model);
    const ch = await model.createChannel();
    await ch.assertQueue('wb-acks', { durable: false });
    for (let i = 0; i < N; i++) ch.sendToQueue('wb-acks', Buffer.from(String(i)));
    const got: ConsumeMessage[] = [];
    await new Promise<void>((resolve) => {
      void ch.consume('wb-acks', (m) => {
        if (m) got.push(m);
        if (got.length === N) resolve();
      });
    });
    const counts = countWrites(model);
    for (const m of got) ch.ack(m);
    // A round trip on the same channel: RabbitMQ answers it after taking the acks before it.
    const { messageCount } = await ch.checkQueue('wb-acks');
    expect(counts.writes + counts.writevs).toBeLessThanOrEqual(2);
    expect(counts.writevs).toBe(1);
    expect(messageCount).toBe(0);
    await ch.close();
    // Nothing was left unacked: closing the channel gave nothing back to the queue.
    const check = await model.createChannel();
    expect((await check.checkQueue('wb-acks')).messageCount).toBe(0);
  });
});
