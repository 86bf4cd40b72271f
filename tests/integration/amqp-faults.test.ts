// Faults on a real RabbitMQ: kill -9 of a Celeriac worker holding acks_late messages (RabbitMQ
// redelivers them, a second worker finishes them, none lost), and broker restarts (rabbitmqctl
// stop_app / start_app): while 5,000 tasks flow (the worker reconnects by itself, every task
// completes, each once), with a countdown task held across it (runs once), and with rpc://
// results (the result connection recovers too). Vhosts amqp-faults-*; Redis dbs 38 (ledger),
// 39 and 43 (results).
import { testRedisUrl } from '../helpers/env';
import { pyClient } from '../helpers/python';
import { startCeleriacWorker } from '../helpers/celeriacWorker';
import { flushDb, redisClient, type Redis } from '../helpers/redis';
import { freshVhost, listQueues, startBroker, stopBroker, brokerStopped, type QueueInfo } from '../helpers/rabbit';

const LEDGER = 38;
const CRASH_RESULTS = 39;
const RESTART_RESULTS = 43;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor(cond: () => Promise<boolean> | boolean, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await cond()) return;
    await sleep(50);
  }
  throw new Error(`timed out waiting for ${what}`);
}

async function celeryQueue(vhost: string): Promise<QueueInfo> {
  const q = (await listQueues(vhost)).find((x) => x.name === 'celery');
  if (!q) throw new Error(`no queue celery on ${vhost}`);
  return q;
}

/** status of celery-task-meta-<id> for each id (null when absent), read in chunks. */
async function statuses(r: Redis, ids: string[]): Promise<(string | null)[]> {
  const out: (string | null)[] = [];
  for (let i = 0; i < ids.length; i += 500) {
    const raws = await r.mget(ids.slice(i, i + 500).map((id) => `celery-task-meta-${id}`));
    for (const raw of raws) out.push(raw === null ? null : ((JSON.parse(raw) as { status?: string }).status ?? null));
  }
  return out;
}

function countMatches(text: string, re: RegExp): number {
  return [...text.matchAll(new RegExp(re.source, re.flags.includes('g') ? re.flags : `${re.flags}g`))].length;
}

let ledger: Redis;
let crashResults: Redis;
let restartResults: Redis;

beforeAll(async () => {
  await Promise.all([flushDb(LEDGER), flushDb(CRASH_RESULTS), flushDb(RESTART_RESULTS)]);
  [ledger, crashResults, restartResults] = [redisClient(LEDGER), redisClient(CRASH_RESULTS), redisClient(RESTART_RESULTS)];
});

afterAll(async () => {
  if (brokerStopped()) await startBroker();
  await Promise.all([ledger.quit(), crashResults.quit(), restartResults.quit()]);
});

describe('kill -9 of a worker holding acks_late messages', () => {
  it('RabbitMQ redelivers them, a second worker finishes all; duplicates only of what was running', async () => {
    const VHOST = 'amqp-faults-crash';
    const url = await freshVhost(VHOST);
    const N = 40;
    const CONCURRENCY = 4;
    const common = {
      brokerUrl: url,
      backendUrl: testRedisUrl(CRASH_RESULTS),
      app: 'tests/fixtures/tasks.ts',
      env: { CELERIAC_TEST_LEDGER_URL: testRedisUrl(LEDGER) },
    };
    const first = await startCeleriacWorker({ ...common, concurrency: CONCURRENCY });
    const tags = Array.from({ length: N }, (_, i) => `t${i}`);
    const { ids } = await pyClient<{ ids: string[] }>(
      { op: 'send_list', task: 'test.slow_late', args_list: tags.map((t) => [t, 1500]) },
      { env: { BROKER_URL: url, RESULT_BACKEND: testRedisUrl(CRASH_RESULTS) } },
    );
    expect(ids).toHaveLength(N);

    // Prefetch 4 x 4 = 16 held: 4 running, 12 reserved. Let the first 4 finish (recorded in the
    // ledger), so that the next 4 are running when the worker dies without a word.
    await waitFor(async () => (await celeryQueue(VHOST)).messages_unacknowledged >= 16, 10_000, 'the first worker to hold 16 messages');
    await waitFor(async () => (await ledger.llen('ledger')) >= CONCURRENCY, 10_000, 'the first batch to finish');
    const held = (await celeryQueue(VHOST)).messages_unacknowledged;
    first.kill('SIGKILL');
    await first.exited;
    const doneByFirst = await ledger.lrange('ledger', 0, -1);
    expect(held).toBeGreaterThanOrEqual(12);
    expect(held).toBeLessThanOrEqual(16); // acks_late: running + reserved <= -c x prefetch multiplier

    // RabbitMQ put everything the dead connection held back on the queue.
    await waitFor(async () => (await celeryQueue(VHOST)).messages_unacknowledged === 0, 5_000, 'the dead connection to be dropped');
    const afterKill = await celeryQueue(VHOST);
    expect(afterKill.consumers).toBe(0);
    // Everything not acked by the first worker is back: at least N minus what it finished.
    expect(afterKill.messages_ready).toBeGreaterThanOrEqual(N - doneByFirst.length);

    const second = await startCeleriacWorker({ ...common, concurrency: 20 });
    try {
      await waitFor(async () => (await statuses(crashResults, ids)).every((s) => s === 'SUCCESS'), 40_000, 'all results');
      await waitFor(async () => (await celeryQueue(VHOST)).messages === 0, 5_000, 'the queue to drain');
    } finally {
      await second.stop();
    }

    // Every task ran at least once; none lost.
    const runs = await ledger.lrange('ledger', 0, -1);
    const byTag = new Map<string, string[]>();
    for (const entry of runs) {
      const [tag, pid] = entry.split(':') as [string, string];
      byTag.set(tag, [...(byTag.get(tag) ?? []), pid]);
    }
    expect([...byTag.keys()].sort()).toEqual([...tags].sort());
    // The dead worker wrote nothing after it was killed.
    expect(runs.filter((e) => e.endsWith(`:${first.pid}`))).toEqual(doneByFirst.filter((e) => e.endsWith(`:${first.pid}`)));
    // Duplicates: only tasks the first worker had run to the end without its ack reaching the
    // broker — at most its concurrency — once by each worker. Reserved (unstarted) ones ran once.
    const dups = [...byTag.entries()].filter(([, pids]) => pids.length > 1);
    expect(dups.length).toBeLessThanOrEqual(CONCURRENCY);
    for (const [, pids] of dups) expect([...pids].sort()).toEqual([String(first.pid), String(second.pid)].sort());
    expect(runs.length).toBe(N + dups.length);
  });
});

describe('broker restart (rabbitmqctl stop_app, ~3 s, start_app)', () => {
  it('5,000 tasks flowing: the worker reconnects by itself (one lost/reconnected line), every task completes', async () => {
    const VHOST = 'amqp-faults-restart';
    const url = await freshVhost(VHOST);
    const N = 5_000;
    const pyEnv = { BROKER_URL: url, RESULT_BACKEND: testRedisUrl(RESTART_RESULTS) };

    // The worker is up before the producer sends (so its prefetch of 10 x 4 is in force); all
    // 5,000 are sent before the restart, so the producer is done by then. demo.sleep(0.01) at
    // -c 10 keeps the flow under ~1,000/s: the broker goes down with thousands still queued.
    const worker = await startCeleriacWorker({ brokerUrl: url, backendUrl: testRedisUrl(RESTART_RESULTS), concurrency: 10 });
    const { ids } = await pyClient<{ ids: string[] }>(
      { op: 'send_many', task: 'demo.sleep', args: [0.01], count: N },
      { env: pyEnv, timeoutMs: 45_000 },
    );
    expect(ids).toHaveLength(N);
    try {
      await waitFor(async () => (await restartResults.dbsize()) >= 1_000, 20_000, '1,000 results');
      await stopBroker();
      const doneAtStop = await restartResults.dbsize();
      await sleep(3_000);
      await startBroker();
      const restartedAt = await restartResults.dbsize();
      await waitFor(async () => (await restartResults.dbsize()) >= N, 40_000, `all ${N} results`);
      // It really was mid-flow: thousands still to run when the broker came back.
      expect(doneAtStop).toBeLessThan(N - 1_000);
      expect(N - restartedAt).toBeGreaterThan(1_000);
      const states = await statuses(restartResults, ids);
      expect(states.filter((s) => s === 'SUCCESS')).toHaveLength(N);
      await waitFor(async () => (await celeryQueue(VHOST)).messages === 0, 10_000, 'the queue to drain');
      expect(await celeryQueue(VHOST)).toMatchObject({ consumers: 1, messages: 0 });
    } finally {
      await worker.stop();
    }

    const out = worker.output();
    // One transport connection: one loss, one recovery — no tight reconnect loop.
    expect(countMatches(out, /connection lost/i)).toBe(1);
    expect(countMatches(out, /reconnected/i)).toBe(1);
    expect(countMatches(out, /cannot connect/i)).toBeLessThanOrEqual(1);

    // Each task ran once: reserved messages of the dead connection are not run from the stale
    // copy as well as from RabbitMQ's redelivery (Celery drops them on connection loss). A task
    // whose early ack was in flight when the broker went down may run again: at most -c of them.
    const runs = new Map<string, number>();
    for (const m of out.matchAll(/Task demo\.sleep\[([0-9a-f-]{36})\] succeeded/g)) runs.set(m[1]!, (runs.get(m[1]!) ?? 0) + 1);
    expect(runs.size).toBe(N);
    const twice = [...runs.values()].filter((n) => n > 1).length;
    expect(twice).toBeLessThanOrEqual(10);
  });

  it('a countdown task held across the restart runs once (its timer from the dead connection is dropped)', async () => {
    const VHOST = 'amqp-faults-restart-eta';
    const url = await freshVhost(VHOST);
    const pyEnv = { BROKER_URL: url, RESULT_BACKEND: testRedisUrl(RESTART_RESULTS) };
    const worker = await startCeleriacWorker({ brokerUrl: url, backendUrl: testRedisUrl(RESTART_RESULTS), concurrency: 4 });
    try {
      const sent = await pyClient<{ id: string }>({ op: 'send', task: 'demo.echo', args: ['eta-once'], options: { countdown: 4 } }, { env: pyEnv });
      const received = new RegExp(`Task demo\\.echo\\[${sent.id}\\] received`, 'g');
      const succeeded = new RegExp(`Task demo\\.echo\\[${sent.id}\\] succeeded`, 'g');
      await waitFor(() => countMatches(worker.output(), received) === 1, 5_000, 'the worker to hold the countdown task');
      await stopBroker();
      await sleep(1_500);
      await startBroker();
      await waitFor(() => /reconnected/.test(worker.output()), 15_000, 'the worker to reconnect');
      const got = await pyClient<{ state: string; result: unknown }>({ op: 'get', id: sent.id, timeout: 15 }, { env: pyEnv });
      expect(got).toMatchObject({ state: 'SUCCESS', result: 'eta-once' });
      // Both copies (the dead connection's and RabbitMQ's redelivery) were due at the same time.
      await sleep(1_000);
      expect(countMatches(worker.output(), succeeded)).toBe(1);
    } finally {
      await worker.stop();
    }
  });

  it('with rpc:// results the worker also reconnects its result connection: results sent after the restart arrive', async () => {
    const VHOST = 'amqp-faults-restart-rpc';
    const url = await freshVhost(VHOST);
    const pyEnv = { BROKER_URL: url, RESULT_BACKEND: 'rpc://' };
    const worker = await startCeleriacWorker({ brokerUrl: url, backendUrl: 'rpc://', concurrency: 4 });
    try {
      expect(await pyClient({ op: 'send', task: 'demo.add', args: [1, 2], wait: true }, { env: pyEnv })).toMatchObject({ result: 3 });
      await stopBroker();
      await sleep(2_000);
      await startBroker();
      await waitFor(() => /reconnected/.test(worker.output()), 15_000, 'the worker to reconnect');
      const after = await pyClient<{ state: string; result: unknown; exc_type: string | null }>(
        { op: 'send', task: 'demo.add', args: [2, 3], wait: true, timeout: 10 },
        { env: pyEnv },
      );
      expect(after).toMatchObject({ state: 'SUCCESS', result: 5, exc_type: null });
    } finally {
      await worker.stop();
    }
    expect(worker.output()).not.toMatch(/could not be completed/);
  });
});
