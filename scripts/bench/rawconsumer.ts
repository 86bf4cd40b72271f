/**
 * The AMQP bench's reference line: what RabbitMQ and amqplib allow on this machine with no task
 * framework at all. Consumes the `celery` queue like a worker does (global basic.qos, one
 * basic.ack per message); with `rpc`, publishes a small Celery-shaped result to each message's
 * reply_to (default exchange, correlation_id = task id, delivery_mode 1, no publisher confirms, as
 * Celery's rpc backend does) before the ack. It parses nothing but the task id header.
 *
 *   node -r tsx/cjs scripts/bench/rawconsumer.ts AMQP_URL ignored|rpc PREFETCH
 */
import amqp from 'amqplib';
import { amqpTargetFromUrl } from '../../workers/transports/amqp/url';
import { successMeta } from './successMeta';

async function main(): Promise<void> {
  const [url, mode, prefetchArg] = process.argv.slice(2);
  if (!url || (mode !== 'ignored' && mode !== 'rpc')) {
    process.stderr.write('usage: rawconsumer.ts AMQP_URL ignored|rpc PREFETCH\n');
    process.exit(2);
  }
  const target = amqpTargetFromUrl(url);
  const conn = await amqp.connect(target.connect, target.socket);
  const ch = await conn.createChannel();
  const out = mode === 'rpc' ? await (await amqp.connect(target.connect, target.socket)).createChannel() : null;
  await ch.prefetch(Number(prefetchArg ?? 400), true);
  await ch.consume('celery', (msg) => {
    if (!msg) return;
    if (out && msg.properties.replyTo) {
      const id = String((msg.properties.headers as Record<string, unknown> | undefined)?.id ?? msg.properties.correlationId);
      out.publish('', msg.properties.replyTo, Buffer.from(successMeta(id)), { contentType: 'application/json', contentEncoding: 'utf-8', correlationId: id, deliveryMode: 1 });
    }
    ch.ack(msg);
  });
  const stop = (): void => {
    void conn.close().finally(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((err: Error) => {
  process.stderr.write(`rawconsumer: ${err.stack ?? err.message}\n`);
  process.exit(1);
});
