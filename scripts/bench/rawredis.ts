/**
 * The Redis bench's reference line: what Redis and ioredis allow on this machine with no task
 * framework, the counterpart of rawconsumer.ts on AMQP. Pops kombu's `celery` list like a worker
 * (BRPOP, then one RPOP with a count for whatever else is waiting), keeps no unacked record and no
 * concurrency bound, and parses each envelope only for its task id. With a results URL it stores
 * a Celery-shaped SUCCESS result as Celery's Redis backend does (SETEX, then PUBLISH on the same
 * key), the writes of one batch pipelined and not waited for before the next pop.
 *
 *   node -r tsx/cjs scripts/bench/rawredis.ts BROKER_URL RESULTS_URL|'' BATCH
 */
import Redis from 'ioredis';
import { successMeta } from './successMeta';

const QUEUE = 'celery';
/** Celery's default result_expires (1 day), which makes its backend write SETEX. */
const EXPIRES_S = 86_400;

function fail(err: Error): never {
  process.stderr.write(`rawredis: ${err.stack ?? err.message}\n`);
  process.exit(1);
}

function taskId(raw: string): string {
  const envelope = JSON.parse(raw) as { headers?: { id?: unknown } };
  return String(envelope.headers?.id);
}

async function main(): Promise<void> {
  const [brokerUrl, resultsUrl, batchArg] = process.argv.slice(2);
  const batch = Number(batchArg ?? 400);
  if (!brokerUrl || resultsUrl === undefined || !(batch >= 1)) {
    process.stderr.write("usage: rawredis.ts BROKER_URL RESULTS_URL|'' BATCH\n");
    process.exit(2);
  }
  const broker = new Redis(brokerUrl);
  const results = resultsUrl ? new Redis(resultsUrl) : null;
  const stop = (): void => {
    broker.disconnect();
    results?.disconnect();
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);

  for (;;) {
    const popped = await broker.brpop(QUEUE, 1);
    if (!popped) continue;
    const rest = (await broker.rpop(QUEUE, batch - 1)) ?? [];
    const pipe = results?.pipeline();
    for (const raw of [popped[1], ...rest]) {
      const id = taskId(raw);
      if (!pipe) continue;
      const key = `celery-task-meta-${id}`;
      const meta = successMeta(id);
      pipe.setex(key, EXPIRES_S, meta).publish(key, meta);
    }
    pipe?.exec().catch(fail);
  }
}

main().catch(fail);
