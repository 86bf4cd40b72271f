/**
 * `celeriac queues` on RabbitMQ: ready from AMQP, unacked from the management API named by
 * broker_api (Flower's option). A node of this file's own runs the management plugin (the run's
 * shared node does not: see tests/helpers/rabbitManagement.ts). Seven messages go to a queue on a
 * vhost whose name needs encoding ('celeriac/mgmt'); an amqplib consumer with prefetch 3 takes
 * three and never acks them, so the queue holds exactly 4 ready and 3 unacked. The real command
 * prints them (after the plugin's next sample), and on the default vhost Flower's own RabbitMQ
 * broker class reads the same numbers from the same API. Without broker_api it prints the ready
 * count and says once that unacked needs broker_api; a wrong password (401), a URL that is not the
 * API, a missing queue and an API that is down each give one clear line naming the URL with the
 * password masked, and `--watch` keeps polling through the outage.
 */
import amqplib from 'amqplib';
import { CELERIAC_PROGRAM, celeriacCli } from '../helpers/celeriacWorker';
import { PROJECT_ROOT } from '../helpers/env';
import { waitFor } from '../helpers/faults';
import { startProcess } from '../helpers/processes';
import { startManagedRabbit, type ManagedRabbit } from '../helpers/rabbitManagement';
import { runPyJson } from '../helpers/python';
import { freePort } from '../setup/redisServer';

jest.setTimeout(180_000);

const VHOST = 'celeriac/mgmt';
const QUEUE = 'mq';
const EMPTY = 'mq-empty';
const SENT = 7;
const PREFETCH = 3;

let rabbit: ManagedRabbit;
let broker: string;
const consumers: amqplib.ChannelModel[] = [];

function queues(args: string[], brokerApi: string | null, brokerUrl = broker) {
  return celeriacCli(['queues', ...args], { CELERY_BROKER_URL: brokerUrl, ...(brokerApi === null ? {} : { CELERIAC_BROKER_API: brokerApi }) });
}

/** SENT messages in QUEUE (and an empty EMPTY) on `url`'s vhost, PREFETCH of them held unacked until afterAll. */
async function holdSome(url: string): Promise<void> {
  const producer = await amqplib.connect(url);
  const ch = await producer.createConfirmChannel();
  for (const q of [QUEUE, EMPTY]) await ch.assertQueue(q, { durable: true });
  for (let i = 0; i < SENT; i++) ch.sendToQueue(QUEUE, Buffer.from(`m${i}`), { persistent: true });
  await ch.waitForConfirms();
  await producer.close();

  const consumer = await amqplib.connect(url);
  consumers.push(consumer);
  const cch = await consumer.createChannel();
  await cch.prefetch(PREFETCH);
  let received = 0;
  await cch.consume(QUEUE, () => void received++, { noAck: false });
  await waitFor(() => received === PREFETCH, 30_000, `${PREFETCH} deliveries`);
}

beforeAll(async () => {
  rabbit = await startManagedRabbit('mgmt');
  broker = await rabbit.addVhost(VHOST);
  await holdSome(broker);
  await holdSome(rabbit.amqpUrl('/'));
}, 180_000);

afterAll(async () => {
  await Promise.all(consumers.map((c) => c.close().catch(() => undefined)));
  rabbit?.stop();
});

test('ready from AMQP and unacked from broker_api, exactly', async () => {
  const api = rabbit.apiUrl();
  let last = await queues([QUEUE, EMPTY], api);
  // The plugin samples its counts every second here (5 s by default): wait for the sample.
  await waitFor(async () => (last = await queues([QUEUE, EMPTY], api)).stdout.includes(`${QUEUE}\t4\t3`), 60_000, 'the management API to report 3 unacked');
  expect(last.stdout).toBe(`queue\tready\tunacked\n${QUEUE}\t${SENT - PREFETCH}\t${PREFETCH}\n${EMPTY}\t0\t0\n`);
  expect(last.stderr).toBe('');
  expect(last.code).toBe(0);

  // The management API's own view agrees.
  const info = (await rabbit.api('GET', `queues/${encodeURIComponent(VHOST)}/${QUEUE}`)) as { messages_ready: number; messages_unacknowledged: number };
  expect([info.messages_ready, info.messages_unacknowledged]).toEqual([4, 3]);

  // A queue that does not exist: its own line says so, the others still print, exit status 1.
  const missing = await queues([QUEUE, 'no-such-queue'], api);
  expect(missing.stdout).toMatch(new RegExp(`^queue\\tready\\tunacked\\n${QUEUE}\\t4\\t3\\nno-such-queue\\terror: .*NOT_FOUND - no queue 'no-such-queue' in vhost 'celeriac/mgmt'.*\\n$`));
  expect(missing.code).toBe(1);
});

test("on the default vhost '/', Flower's broker view (its RabbitMQ class with broker_api) reads the same counts", async () => {
  const url = rabbit.amqpUrl('/');
  const api = rabbit.apiUrl();
  await waitFor(async () => (await queues([QUEUE], api, url)).stdout === `queue\tready\tunacked\n${QUEUE}\t4\t3\n`, 60_000, "4 ready and 3 unacked on '/'");
  const script = [
    'import asyncio, json, os',
    'from flower.utils.broker import Broker',
    "b = Broker(os.environ['BROKER'], http_api=os.environ['BROKER_API'])",
    `qs = asyncio.run(b.queues(['${QUEUE}']))`,
    "print(json.dumps(sorted([q['vhost'], q['name'], q['messages_ready'], q['messages_unacknowledged']] for q in qs)))",
  ].join('\n');
  // Flower asks for `queues//` on vhost '/', which the API answers with every vhost's queues: it
  // lists the other vhost's `mq` too. Celeriac asks for /api/queues/%2F/mq, that vhost's only.
  expect(await runPyJson(script, { env: { BROKER: url, BROKER_API: api } })).toEqual([
    ['/', QUEUE, 4, 3],
    [VHOST, QUEUE, 4, 3],
  ]);
});

test('without broker_api: the ready counts, and one note that unacked needs broker_api', async () => {
  const res = await queues([QUEUE, EMPTY], null);
  expect(res.stdout).toBe(`queue\tready\tunacked\n${QUEUE}\t4\t-\n${EMPTY}\t0\t-\n`);
  expect(res.stderr).toBe("note: unacked needs RabbitMQ's management API: set broker_api (env CELERIAC_BROKER_API), e.g. http://guest:guest@localhost:15672/api/\n");
  expect(res.code).toBe(0);
});

test('a wrong broker_api password (401) or a URL that is not the API (4xx): one line naming the URL, password masked, no stack trace', async () => {
  const res = await queues([QUEUE], rabbit.apiUrl('not-the-password'));
  const port = rabbit.node.managementPort!;
  expect(res.stdout).toBe(
    `queue\tready\tunacked\n${QUEUE}\t4\terror: management API http://guest:**@127.0.0.1:${port}/api/queues/celeriac%2Fmgmt/${QUEUE}: ` +
      '401 Unauthorized (not_authorized: Login failed) (check the user and password of broker_api)\n',
  );
  expect(res.stderr).toBe('');
  expect(`${res.stdout}${res.stderr}`).not.toContain('not-the-password');
  expect(res.code).toBe(1);

  // A URL that is not the API (a path the plugin does not serve; RabbitMQ 3.10 answers 400 there): said the same way.
  const notApi = await queues([QUEUE], `http://guest:guest@127.0.0.1:${port}/not-api/`);
  expect(notApi.stdout).toMatch(
    new RegExp(`^queue\\tready\\tunacked\\n${QUEUE}\\t4\\terror: management API http://guest:\\*\\*@127\\.0\\.0\\.1:${port}/not-api/queues/celeriac%2Fmgmt/${QUEUE}: 4\\d\\d [A-Za-z ]+.*\\n$`),
  );
  expect(notApi.code).toBe(1);
});

test('--watch keeps polling while the management API is down, the error on each line', async () => {
  const down = await freePort();
  const watch = startProcess(process.execPath, ['-r', require.resolve('tsx/cjs'), CELERIAC_PROGRAM, 'queues', QUEUE, '--watch', '1'], {
    cwd: PROJECT_ROOT,
    env: { APP_ENV: 'development', CELERY_BROKER_URL: broker, CELERIAC_BROKER_API: `http://guest:secret@127.0.0.1:${down}/api` },
  });
  let ended = false;
  void watch.exited.then(() => (ended = true));
  try {
    const line = `${QUEUE}\t4\terror: management API http://guest:**@127.0.0.1:${down}/api/queues/celeriac%2Fmgmt/${QUEUE}: cannot reach it (ECONNREFUSED)`;
    // The first table and two more, each with a timestamp line.
    await waitFor(() => watch.output().split(line).length - 1 >= 3, 60_000, 'three tables with the error line');
    expect(watch.output().match(/^\d{4}-\d\d-\d\dT[\d:.]+Z$/gm)?.length).toBeGreaterThanOrEqual(2);
    expect(watch.output()).not.toMatch(/secret|\n\s+at /);
    expect(ended).toBe(false);
  } finally {
    await watch.stop(10_000);
  }
});
