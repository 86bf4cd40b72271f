// Celery events from a Celeriac worker, read by real Python Celery 5.7: an app.events.Receiver
// (what `celery events` and Flower run) captures the worker's events, and celery.events.state.State
// (Flower's model) is fed with them. On Redis (PUB/SUB fanout, db 60; db 61 with global_keyprefix)
// and on RabbitMQ (the celeryev topic exchange, vhost events-amqp).
import { testRedisUrl } from '../helpers/env';
import { lines, startReceiver, waitUntil, type Ev, type Line } from '../helpers/eventsReceiver';
import { pyClient } from '../helpers/python';
import { startCeleriacWorker } from '../helpers/celeriacWorker';
import { flushDb } from '../helpers/redis';
import { freshVhost, listExchanges } from '../helpers/rabbit';

const REDIS_DB = 60;
const PREFIXED_DB = 61;

const typesFor = (ls: Line[], id: string): string[] => ls.filter((l) => l.event.uuid === id).map((l) => l.event.type);
const eventFor = (ls: Line[], id: string, type: string): Ev => {
  const found = ls.find((l) => l.event.uuid === id && l.event.type === type);
  if (!found) throw new Error(`no ${type} for ${id}`);
  return found.event;
};

interface Ids {
  add: string;
  fail: string;
  retry: string;
  expired: string;
}

async function sendTasks(brokerUrl: string): Promise<Ids> {
  const send = (task: string, args: unknown[], options: Record<string, unknown> = {}) => ({ op: 'send', task, args, options });
  const out = await pyClient<{ results: { out: { id: string } }[] }>(
    {
      op: 'batch',
      commands: [
        send('demo.add', [2, 3]),
        send('demo.fail', ['boom']),
        send('demo.retry', [1]),
        // Expires while it waits for its ETA: revoked as expired (no TTL drop on RabbitMQ: it is
        // already delivered by then).
        send('demo.add', [1, 1], { countdown: 2, expires: 1 }),
      ],
    },
    { env: { BROKER_URL: brokerUrl } },
  );
  const [add, fail, retry, expired] = out.results.map((r) => r.out.id) as [string, string, string, string];
  return { add, fail, retry, expired };
}

/** The whole -E scenario against one broker. */
async function fullScenario(brokerUrl: string, hostname: string): Promise<void> {
  const receiver = await startReceiver(brokerUrl, hostname);
  const worker = await startCeleriacWorker({ brokerUrl, hostname, concurrency: 4, extraArgs: ['-E'] });
  const ids = await sendTasks(brokerUrl);

  let ls = await waitUntil(receiver, 'every task finished and a heartbeat', (all) => {
    const done = (id: string, type: string): boolean => all.some((l) => l.event.uuid === id && l.event.type === type);
    return (
      done(ids.add, 'task-succeeded') &&
      done(ids.fail, 'task-failed') &&
      done(ids.retry, 'task-succeeded') &&
      done(ids.expired, 'task-revoked') &&
      all.some((l) => l.event.type === 'worker-heartbeat')
    );
  });
  // Flower's view while the worker runs: alive, each task in its final state.
  const live = ls[ls.length - 1]!.state;
  expect(live.workers[hostname]).toMatchObject({ alive: true, sw_ident: 'celeriac' });
  expect(live.tasks[ids.add]).toMatchObject({ state: 'SUCCESS', name: 'demo.add', result: '5', worker: hostname });
  expect(live.tasks[ids.fail]).toMatchObject({ state: 'FAILURE', name: 'demo.fail' });
  expect(live.tasks[ids.fail]!.exception).toContain('ValueError');
  expect(live.tasks[ids.retry]).toMatchObject({ state: 'SUCCESS', name: 'demo.retry', result: '2', retries: 1 });
  expect(live.tasks[ids.expired]).toMatchObject({ state: 'REVOKED', name: 'demo.add' });

  worker.kill('SIGTERM');
  expect(await worker.exited).toMatchObject({ code: 0 });
  const end = await receiver.exited;
  ls = lines(receiver);
  expect(end.code).toBe(0);

  const mine = ls.filter((l) => l.event.hostname === hostname);
  const types = mine.map((l) => l.event.type);
  expect(types[0]).toBe('worker-online');
  expect(types[types.length - 1]).toBe('worker-offline');
  // One Lamport clock per worker, moved forward once per event.
  const clocks = mine.map((l) => l.event.clock);
  expect(clocks).toEqual([...clocks].sort((a, b) => a - b));
  expect(new Set(clocks).size).toBe(clocks.length);

  const beat = mine.find((l) => l.event.type === 'worker-heartbeat')!.event;
  expect(beat).toMatchObject({ hostname, pid: worker.pid, freq: 2, sw_ident: 'celeriac', sw_sys: expect.any(String), sw_ver: expect.any(String) });
  expect(beat.active).toEqual(expect.any(Number));
  expect(beat.processed).toEqual(expect.any(Number));
  expect(beat.loadavg).toHaveLength(3);
  expect(beat.utcoffset).toEqual(expect.any(Number));
  expect(Math.abs((beat.timestamp as number) - Date.now() / 1000)).toBeLessThan(60);
  // add, fail and the two runs of retry started; the expired task never did.
  expect(mine[mine.length - 1]!.event).toMatchObject({ type: 'worker-offline', active: 0, processed: 4 });
  expect(ls[ls.length - 1]!.state.workers[hostname]!.alive).toBe(false);

  expect(typesFor(ls, ids.add)).toEqual(['task-received', 'task-started', 'task-succeeded']);
  expect(eventFor(ls, ids.add, 'task-received')).toMatchObject({ name: 'demo.add', args: '[2, 3]', kwargs: '{}', retries: 0, eta: null, expires: null, root_id: ids.add, parent_id: null });
  const ok = eventFor(ls, ids.add, 'task-succeeded');
  expect(ok.result).toBe('5');
  expect(ok.runtime).toEqual(expect.any(Number));

  expect(typesFor(ls, ids.fail)).toEqual(['task-received', 'task-started', 'task-failed']);
  const failed = eventFor(ls, ids.fail, 'task-failed');
  expect(failed.exception).toBe("ValueError('boom')");
  expect(failed.traceback).toMatch(/^Traceback \(most recent call last\):/);

  // Like Celery's Task.retry, the new message is published before task-retried is sent: its
  // task-received may come first.
  const retryTypes = typesFor(ls, ids.retry);
  expect(retryTypes.slice(0, 2)).toEqual(['task-received', 'task-started']);
  expect(retryTypes.slice(2, 4).sort()).toEqual(['task-received', 'task-retried']);
  expect(retryTypes.slice(4)).toEqual(['task-started', 'task-succeeded']);
  expect(eventFor(ls, ids.retry, 'task-retried')).toMatchObject({ exception: 'None', traceback: expect.stringContaining('Traceback') });
  expect(ls.filter((l) => l.event.uuid === ids.retry && l.event.type === 'task-received').map((l) => l.event.retries)).toEqual([0, 1]);

  expect(typesFor(ls, ids.expired)).toEqual(['task-received', 'task-revoked']);
  expect(eventFor(ls, ids.expired, 'task-received')).toMatchObject({ eta: expect.stringMatching(/\+00:00$/), expires: expect.stringMatching(/\+00:00$/) });
  expect(eventFor(ls, ids.expired, 'task-revoked')).toMatchObject({ expired: true, terminated: false, signum: null });
}

describe('Celery events on Redis', () => {
  beforeEach(async () => {
    await flushDb(REDIS_DB);
    await flushDb(PREFIXED_DB);
  });
  afterAll(async () => {
    await flushDb(REDIS_DB);
    await flushDb(PREFIXED_DB);
  });

  test('-E: worker-online, heartbeats, task events, worker-offline; State shows it all', async () => {
    await fullScenario(testRedisUrl(REDIS_DB), 'events-redis@celeriac-test');
  });

  test('without -E: heartbeats only, on channels with global_keyprefix as kombu names them', async () => {
    const brokerUrl = testRedisUrl(PREFIXED_DB);
    const hostname = 'events-prefixed@celeriac-test';
    const receiver = await startReceiver(brokerUrl, hostname, { BROKER_TRANSPORT_OPTIONS: JSON.stringify({ global_keyprefix: 'pfx:' }) });
    const worker = await startCeleriacWorker({ brokerUrl, hostname, env: { CELERIAC_GLOBAL_KEYPREFIX: 'pfx:' } });
    const sent = await pyClient<{ id: string }>(
      { op: 'send', task: 'demo.add', args: [1, 2] },
      { env: { BROKER_URL: brokerUrl, BROKER_TRANSPORT_OPTIONS: JSON.stringify({ global_keyprefix: 'pfx:' }) } },
    );
    await waitUntil(receiver, 'a heartbeat after the task ran', (ls) => ls.some((l) => l.event.type === 'worker-heartbeat' && l.event.processed === 1));
    worker.kill('SIGTERM');
    await worker.exited;
    expect((await receiver.exited).code).toBe(0);
    const types = lines(receiver).map((l) => l.event.type);
    expect(types[0]).toBe('worker-online');
    expect(types[types.length - 1]).toBe('worker-offline');
    expect(types.filter((t) => t.startsWith('task-'))).toEqual([]);
    expect(worker.output()).toContain(`Task demo.add[${sent.id}] succeeded`);
  });
});

describe('Celery events on RabbitMQ', () => {
  let brokerUrl: string;
  beforeAll(async () => {
    brokerUrl = await freshVhost('events-amqp');
  });

  test('-E: worker-online, heartbeats, task events, worker-offline; State shows it all', async () => {
    await fullScenario(brokerUrl, 'events-amqp@celeriac-test');
    // Declared as Celery declares its event exchange (receivers declare it the same way).
    const ex = (await listExchanges('events-amqp')).find((e) => e.name === 'celeryev');
    expect(ex).toMatchObject({ type: 'topic', durable: true, auto_delete: false });
  });
});
