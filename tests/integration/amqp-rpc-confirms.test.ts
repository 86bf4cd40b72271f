/**
 * rpc:// results and publisher confirms (workers/backends/rpc.ts, #16). A result of a task whose
 * message is acked already is confirmed in the background: store() resolves once it is sent, and a
 * result the broker refuses is retried and then reported, not dropped silently. Any other result
 * (acks_late: the ack waits for it) still resolves only on the broker's confirm. At most
 * maxUnconfirmed background results at once. A queue with x-max-length 1 and x-overflow
 * reject-publish makes RabbitMQ nack every publish once it holds one message.
 */
import { connect, type ChannelModel } from 'amqplib';
import { RpcBackend } from '../../workers/backends/rpc';
import { buildMeta } from '../../workers/backends/meta';
import { freshVhost } from '../helpers/rabbit';

describe('rpc:// result confirms', () => {
  let url: string;
  let admin: ChannelModel;
  const warnings: string[] = [];
  let backend: RpcBackend;

  beforeAll(async () => {
    url = await freshVhost('rpc-confirms');
    admin = await connect(url);
  });

  afterAll(async () => {
    await admin.close().catch(() => undefined);
  });

  beforeEach(async () => {
    warnings.length = 0;
  });

  afterEach(async () => {
    await backend.close();
  });

  /** A reply queue that takes one message and nacks every publish after it. */
  async function fullQueue(name: string): Promise<void> {
    const ch = await admin.createChannel();
    await ch.assertQueue(name, { durable: false, arguments: { 'x-max-length': 1, 'x-overflow': 'reject-publish' } });
    await ch.sendToQueue(name, Buffer.from('{}'));
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

  it('an acked task\'s result resolves before its confirm; a refused one is retried, then reported', async () => {
    backend = new RpcBackend({ brokerUrl: url, logger: { warn: (m) => warnings.push(m) } });
    await backend.connect();
    await fullQueue('reply-full');
    const events: string[] = [];
    await backend.store(buildMeta('acked-1', 'SUCCESS', 1), { replyTo: 'reply-full', messageAcked: true });
    events.push('acked store resolved');
    expect(warnings).toEqual([]); // resolved although the broker refuses it: the refusal comes later
    // Not acked: the caller acks after this, so it must see the broker's refusal.
    await expect(backend.store(buildMeta('late-1', 'SUCCESS', 1), { replyTo: 'reply-full' })).rejects.toThrow();
    events.push('late store rejected');
    for (let i = 0; i < 50 && warnings.length === 0; i++) await new Promise((r) => setTimeout(r, 100));
    expect(events).toEqual(['acked store resolved', 'late store rejected']);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain('acked-1');
    expect(await messagesIn('reply-full')).toBe(1);
  });

  it('an acked task\'s result that the broker takes arrives; no warning', async () => {
    backend = new RpcBackend({ brokerUrl: url, logger: { warn: (m) => warnings.push(m) } });
    await backend.connect();
    const ch = await admin.createChannel();
    await ch.assertQueue('reply-open', { durable: false });
    await ch.close();
    for (let i = 0; i < 20; i++) await backend.store(buildMeta(`ok-${i}`, 'SUCCESS', i), { replyTo: 'reply-open', messageAcked: true });
    await backend.close(); // waits for the confirms still outstanding
    expect(await messagesIn('reply-open')).toBe(20);
    expect(warnings).toEqual([]);
  });

  it('holds at most maxUnconfirmed background results: the next store waits until one is settled', async () => {
    const events: string[] = [];
    backend = new RpcBackend({ brokerUrl: url, logger: { warn: (m) => events.push(`warned: ${m.includes('first') ? 'first' : m}`) }, maxUnconfirmed: 1 });
    await backend.connect();
    await fullQueue('reply-bound');
    await backend.store(buildMeta('first', 'SUCCESS', 1), { replyTo: 'reply-bound', messageAcked: true });
    events.push('first resolved');
    // The first is still being retried (about 1 s of nacks): the second waits for it to be given up.
    await backend.store(buildMeta('second', 'SUCCESS', 2), { replyTo: 'reply-bound', messageAcked: true });
    events.push('second resolved');
    expect(events).toEqual(['first resolved', 'warned: first', 'second resolved']);
  });
});
