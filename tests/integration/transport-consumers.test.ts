// Each transport adapter on its real broker (Redis db 23, RabbitMQ vhosts transport-consumers*,
// a filesystem folder): addQueue / cancelQueue while consuming (what add_consumer / cancel_consumer
// need) and queueDepth (what /metrics reports). The cancel is checked at its hardest moment: the
// consumer is idle in a poll that still includes the cancelled queue (Redis BRPOP), and a message
// arrives there at once.
import { randomUUID } from 'node:crypto';
import { createTransport } from '../../workers/transports';
import { FilesystemTransport } from '../../workers/transports/filesystem';
import type { BrokerMessage, Delivery, Transport } from '../../workers/transports/transport';
import { declarationFor } from '../../workers/worker/queues';
import { testRedisUrl, testTmpDir } from '../helpers/env';
import { flushDb } from '../helpers/redis';
import { freshVhost, listQueues, rabbitctl } from '../helpers/rabbit';
import { waitFor } from '../helpers/control';

const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };

const TRANSPORTS: { kind: string; make: () => Promise<Transport> }[] = [
  {
    kind: 'redis',
    make: async () => {
      await flushDb(23);
      return createTransport(testRedisUrl(23), {}, quiet);
    },
  },
  { kind: 'amqp', make: async () => createTransport(await freshVhost('transport-consumers'), {}, quiet) },
  {
    kind: 'filesystem',
    make: async () => {
      const dir = testTmpDir('transport-consumers');
      return new FilesystemTransport({ dataFolderIn: `${dir}/q`, dataFolderOut: `${dir}/q`, controlFolder: `${dir}/control`, logger: quiet });
    },
  },
];

function message(text: string): BrokerMessage {
  return { body: Buffer.from(JSON.stringify(text)), contentType: 'application/json', contentEncoding: 'utf-8', headers: { id: randomUUID() }, properties: { delivery_mode: 2, priority: 0 } };
}

const POLICY = { definitions: null, maxPriority: null, missingQueueType: 'classic' as const };

describe.each(TRANSPORTS)('Transport.addQueue / cancelQueue / queueDepth ($kind)', ({ make }) => {
  let t: Transport;
  const got: Delivery[] = [];
  const bodies = (queue: string): string[] => got.filter((d) => d.queue === queue).map((d) => JSON.parse(d.message.body.toString()) as string);
  const publish = (queue: string, text: string): Promise<void> => t.publish({ message: message(text), exchange: queue, routingKey: queue });

  beforeAll(async () => {
    t = await make();
    await t.connect();
    for (const q of ['tc.a', 'tc.b']) await t.declareQueue(declarationFor(q, POLICY));
  });

  afterAll(async () => {
    await t?.close();
  });

  it('counts waiting messages, starts and stops consuming single queues, and puts back what a cancelled queue yields late', async () => {
    await publish('tc.a', 'a1');
    await publish('tc.a', 'a2');
    for (const text of ['b1', 'b2', 'b3']) await publish('tc.b', text);
    await waitFor('depths 2 and 3', async () => (await t.queueDepth!('tc.a')) === 2 && (await t.queueDepth!('tc.b')) === 3);

    t.setPrefetch(0);
    await t.consume(['tc.a'], (d) => {
      got.push(d);
      void t.ack(d);
    });
    await waitFor('tc.a drained', async () => bodies('tc.a').length === 2);
    expect(bodies('tc.a')).toEqual(['a1', 'a2']);
    expect(await t.queueDepth!('tc.b')).toBe(3);

    await t.addQueue('tc.b');
    await t.addQueue('tc.b'); // twice: still one consumer, each message once
    await waitFor('tc.b drained', async () => bodies('tc.b').length === 3);
    expect(bodies('tc.b')).toEqual(['b1', 'b2', 'b3']);
    await waitFor('depths 0', async () => (await t.queueDepth!('tc.a')) === 0 && (await t.queueDepth!('tc.b')) === 0);

    // Idle now, polling both queues; cancel one and publish to it at once.
    await new Promise((r) => setTimeout(r, 300));
    await t.cancelQueue('tc.b');
    await publish('tc.b', 'b-late');
    await publish('tc.a', 'a3');
    await waitFor('a3', async () => bodies('tc.a').includes('a3'));
    // Longer than one Redis poll (1 s): a message popped by the poll in flight is back by then.
    await new Promise((r) => setTimeout(r, 1500));
    expect(bodies('tc.b')).toEqual(['b1', 'b2', 'b3']);
    expect(await t.queueDepth!('tc.b')).toBe(1);

    await t.addQueue('tc.b');
    await waitFor('b-late', async () => bodies('tc.b').includes('b-late'));
    expect(await t.queueDepth!('tc.b')).toBe(0);
  });
});

describe('the queues an AMQP consumer resumes after a reconnect', () => {
  it('are the ones consumed at the time: added ones included, cancelled ones left out', async () => {
    const vhost = 'transport-consumers-reconnect';
    const logged: string[] = [];
    const log = (m: string): number => logged.push(m);
    const t = createTransport(await freshVhost(vhost), {}, { info: log, warn: log, error: log });
    const got: string[] = [];
    try {
      await t.connect();
      for (const q of ['tr.a', 'tr.b', 'tr.c']) await t.declareQueue(declarationFor(q, POLICY));
      await t.consume(['tr.a', 'tr.b'], (d) => {
        got.push(`${d.queue}:${JSON.parse(d.message.body.toString()) as string}`);
        void t.ack(d);
      });
      await t.addQueue('tr.c');
      await t.cancelQueue('tr.b');
      // The broker drops the connection; the transport reconnects with backoff.
      await rabbitctl(['close_all_connections', '-p', vhost, 'test: reconnect']);
      await waitFor('reconnected', async () => logged.some((m) => m.endsWith('reconnected')));
      await waitFor('consumers back', async () => {
        const consumers = Object.fromEntries((await listQueues(vhost)).map((q) => [q.name, q.consumers]));
        return consumers['tr.a'] === 1 && consumers['tr.c'] === 1;
      });
      expect(Object.fromEntries((await listQueues(vhost)).map((q) => [q.name, q.consumers]))).toEqual({ 'tr.a': 1, 'tr.b': 0, 'tr.c': 1 });
      for (const q of ['tr.a', 'tr.b', 'tr.c']) await t.publish({ message: message(q), exchange: q, routingKey: q });
      await waitFor('a and c', async () => got.length === 2);
      expect(got.sort()).toEqual(['tr.a:tr.a', 'tr.c:tr.c']);
      expect(await t.queueDepth!('tr.b')).toBe(1);
    } finally {
      await t.close();
    }
  });
});
