// Real Flower 2.2.0 watching a Celeriac worker started with -E, through Flower's REST API: the
// worker is listed online with its pool and queues (Flower's inspect broadcast), its tasks with
// states, args, results and runtime (Flower's event capture), and Flower's revoke and pool grow
// act on it (Flower's remote control). On Redis (broker db 3, results db 4) and on RabbitMQ
// (vhost flower-amqp, results in Redis db 5).
import { testRedisUrl } from '../helpers/env';
import { startCeleriacWorker } from '../helpers/celeriacWorker';
import { startFlower, waitFor, type Flower } from '../helpers/flower';
import type { ProcessHandle } from '../helpers/processes';
import { pyClient } from '../helpers/python';
import { freshVhost } from '../helpers/rabbit';
import { flushDb } from '../helpers/redis';

const REDIS_BROKER_DB = 3;
const REDIS_BACKEND_DB = 4;
const AMQP_BACKEND_DB = 5;

/** What Flower's /api/workers keeps per worker: the inspect replies by method name. */
interface FlowerWorker {
  stats?: { pid: number; pool: Record<string, unknown>; broker: Record<string, unknown>; total: Record<string, number> };
  active_queues?: { name: string; routing_key: string; exchange: { name: string; type: string } }[];
  registered?: string[];
  // Only fetched for one worker (?workername=): active (safe=True), scheduled, reserved, revoked.
  active?: { id: string; name: string; args: unknown; acknowledged: boolean; worker_pid: number | null }[];
  scheduled?: { eta: string; request: { id: string; name: string; args: unknown } }[];
  revoked?: string[];
}

/** celery.events.state.Task.as_dict() as Flower serves it (worker = hostname). */
interface FlowerTask {
  uuid: string;
  name: string;
  state: string;
  args: string;
  kwargs: string;
  result: string | null;
  exception: string | null;
  traceback: string | null;
  runtime: number | null;
  received: number | null;
  retries: number | null;
  worker: string;
}

const FINAL = ['SUCCESS', 'FAILURE', 'REVOKED'];

function flowerSuite(transport: 'redis' | 'amqp', urls: () => Promise<{ broker: string; backend: string }>): void {
  const hostname = `flower-${transport}-${process.pid}@celeriac-test`;
  const name = encodeURIComponent(hostname);
  let env: Record<string, string>;
  let flower: Flower;
  let worker: ProcessHandle;

  /** Flower's inspect of this one worker, fresh (refresh=1 waits for the replies). */
  const inspected = async (): Promise<FlowerWorker> =>
    (await flower.get<Record<string, FlowerWorker>>(`/api/workers?refresh=1&workername=${name}`))[hostname] ?? {};
  const task = (id: string): Promise<FlowerTask> => flower.get<FlowerTask>(`/api/task/info/${id}`);
  const send = (task: string, args: unknown[], options: Record<string, unknown> = {}) => ({ op: 'send', task, args, options });

  beforeAll(async () => {
    const u = await urls();
    env = { BROKER_URL: u.broker, RESULT_BACKEND: u.backend };
    // Flower first, and subscribed: on Redis, events published before it listens are gone.
    flower = await startFlower({ brokerUrl: u.broker, backendUrl: u.backend });
    worker = await startCeleriacWorker({ brokerUrl: u.broker, backendUrl: u.backend, hostname, concurrency: 2, queues: ['celery', 'flower-extra'], extraArgs: ['-E'] });
    // Online from its events (worker-online or a heartbeat), so Flower's event stream is live.
    await waitFor('worker online in Flower', async () => ((await flower.get<Record<string, boolean>>('/api/workers?status=1'))[hostname] ? true : undefined));
  });

  afterAll(async () => {
    await worker?.stop().catch(() => undefined);
    await flower?.process.stop().catch(() => undefined);
  });

  it('/api/workers lists the Celeriac worker with its pool, broker and active queues', async () => {
    const all = await waitFor('inspect replies in /api/workers', async () => {
      const w = await flower.get<Record<string, FlowerWorker>>('/api/workers?refresh=1');
      return w[hostname]?.stats && w[hostname]?.active_queues ? w : undefined;
    });
    const w = all[hostname]!;
    expect(w.stats!.pid).toBe(worker.pid);
    expect(w.stats!.pool).toMatchObject({ 'max-concurrency': 2, processes: [worker.pid], implementation: 'celeriac:AsyncPool' });
    expect(w.stats!.broker).toMatchObject({ transport, hostname: '127.0.0.1', ssl: false });
    expect(w.active_queues!.map((q) => [q.name, q.routing_key, q.exchange.name, q.exchange.type])).toEqual([
      ['celery', 'celery', 'celery', 'direct'],
      ['flower-extra', 'flower-extra', 'flower-extra', 'direct'],
    ]);
    expect(w.registered).toEqual(expect.arrayContaining(['demo.add', 'demo.fail', 'demo.sleep']));
  });

  it('/api/tasks and /api/task/info show the tasks it ran: states, args, results, runtime', async () => {
    const out = await pyClient<{ results: { out: { id: string } }[] }>(
      { op: 'batch', commands: [send('demo.add', [2, 3]), send('demo.fail', ['boom']), send('demo.sleep', [0.3])] },
      { env },
    );
    const [addId, failId, sleepId] = out.results.map((r) => r.out.id) as [string, string, string];
    const tasks = await waitFor('three finished tasks in /api/tasks', async () => {
      const t = await flower.get<Record<string, FlowerTask>>('/api/tasks');
      return [addId, failId, sleepId].every((id) => FINAL.includes(t[id]?.state ?? '')) ? t : undefined;
    });
    expect(tasks[addId]).toMatchObject({ name: 'demo.add', state: 'SUCCESS', args: '[2, 3]', kwargs: '{}', result: '5', exception: null, worker: hostname });
    expect(tasks[failId]).toMatchObject({ name: 'demo.fail', state: 'FAILURE', args: "['boom']", result: null, exception: "ValueError('boom')", worker: hostname });
    expect(tasks[failId]!.traceback).toContain('ValueError: boom');
    expect(tasks[sleepId]).toMatchObject({ name: 'demo.sleep', state: 'SUCCESS', args: '[0.3]', result: '0.3', worker: hostname });
    // The runtime the worker measured: about the 0.3 s the task slept.
    expect(tasks[sleepId]!.runtime).toBeGreaterThanOrEqual(0.29);
    expect(tasks[sleepId]!.runtime).toBeLessThan(2);
    expect(Math.abs(tasks[addId]!.received! - Date.now() / 1000)).toBeLessThan(60);

    expect(await task(addId)).toMatchObject({ uuid: addId, name: 'demo.add', state: 'SUCCESS', result: '5', retries: 0, worker: hostname, runtime: expect.any(Number) });
    // Filtering happens on Flower's side over the event state.
    expect(Object.keys(await flower.get<Record<string, FlowerTask>>('/api/tasks?state=FAILURE'))).toEqual([failId]);
  });

  it('/api/task/revoke discards the countdown task the Celeriac worker holds', async () => {
    const { id } = await pyClient<{ id: string }>(send('demo.add', [1, 2], { countdown: 30 }), { env });
    // Flower sees it in the worker's scheduled list (inspect scheduled).
    const before = await waitFor('scheduled in Flower', async () => {
      const w = await inspected();
      return w.scheduled?.some((s) => s.request.id === id) ? w : undefined;
    });
    expect(before.scheduled!.find((s) => s.request.id === id)!.request).toMatchObject({ name: 'demo.add', args: [1, 2] });

    const res = await flower.post(`/api/task/revoke/${id}`);
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toEqual({ message: `Revoked '${id}'` });

    await waitFor('REVOKED in the result backend', async () => ((await pyClient<{ state: string }>({ op: 'state', id }, { env })).state === 'REVOKED' ? true : undefined));
    await waitFor('REVOKED in Flower (task-revoked event)', async () => ((await task(id)).state === 'REVOKED' ? true : undefined));
    const after = await inspected();
    expect(after.revoked).toContain(id);
    expect(after.scheduled).toEqual([]);
    expect(worker.output()).toContain(`Discarding revoked task: demo.add[${id}]`);
  });

  it('/api/worker/pool/grow grows the pool: max-concurrency 2 -> 5 and five tasks run at once', async () => {
    const res = await flower.post(`/api/worker/pool/grow/${name}?n=3`);
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toEqual({ message: `Growing '${hostname}' worker's pool by 3` });
    await waitFor('max-concurrency 5', async () => ((await inspected()).stats?.pool['max-concurrency'] === 5 ? true : undefined));
    await worker.waitForOutput('pool grown to 5');

    // Five sleeps at once: only a pool of five runs them all together (Flower's inspect active, safe=True).
    await pyClient({ op: 'batch', commands: Array.from({ length: 5 }, () => send('demo.sleep', [2])) }, { env });
    const busy = await waitFor('five active', async () => {
      const w = await inspected();
      return w.active?.length === 5 ? w : undefined;
    });
    for (const a of busy.active!) {
      // safe=True: args as the worker's repr string, as Celery's Request.info(safe=True) gives them.
      expect(a).toMatchObject({ name: 'demo.sleep', args: '[2]', acknowledged: true, worker_pid: worker.pid });
    }
  });

  it('shows the worker offline once it stops (worker-offline)', async () => {
    expect(await worker.stop()).toEqual({ code: 0, signal: null });
    await waitFor('worker offline in Flower', async () => ((await flower.get<Record<string, boolean>>('/api/workers?status=1'))[hostname] === false ? true : undefined));
    // The warm shutdown let the five sleeps finish. (Like Celery, worker-offline goes out before
    // running tasks drain, so their task-succeeded events may reach Flower just after it.)
    const sleeps = await waitFor('six demo.sleep finished', async () => {
      const t = Object.values(await flower.get<Record<string, FlowerTask>>('/api/tasks?taskname=demo.sleep'));
      return t.every((x) => FINAL.includes(x.state)) ? t : undefined;
    });
    expect(sleeps.map((t) => t.state)).toEqual(Array(6).fill('SUCCESS'));
  });
}

describe('Flower on Redis', () => {
  flowerSuite('redis', async () => {
    await flushDb(REDIS_BROKER_DB);
    await flushDb(REDIS_BACKEND_DB);
    return { broker: testRedisUrl(REDIS_BROKER_DB), backend: testRedisUrl(REDIS_BACKEND_DB) };
  });
});

describe('Flower on RabbitMQ', () => {
  flowerSuite('amqp', async () => {
    await flushDb(AMQP_BACKEND_DB);
    return { broker: await freshVhost('flower-amqp'), backend: testRedisUrl(AMQP_BACKEND_DB) };
  });
});
