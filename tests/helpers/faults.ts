/**
 * What the fault suite (tests/integration/faults-*.test.ts) shares: counting every task id end to
 * end through the ledger that tests/fixtures/tasks.ts's fault.* tasks write, sending batches of
 * tasks, and reading queue state on both brokers.
 *
 *   sleep(ms), waitFor(cond, timeoutMs, what)     poll until cond() is true, else throw naming `what`
 *   new Ledger(client, key)                      the list the fault.* tasks append to
 *     .env(url)                                  CELERIAC_TEST_LEDGER_URL/_LEDGER for the worker
 *     .entries()                                 [{event: 'start'|'done', id, pid}]
 *     .count(event)
 *   tally(ids, entries)                          per id: starts, dones, pids; missing, duplicated
 *   sendTasks(brokerUrl, name, argsList, opts?)  publish one task per args entry (TS producer,
 *                                                'celery' queue declared first); name and opts may
 *                                                depend on the index; returns the ids in order
 *   statuses(redis, ids)                         celery-task-meta-<id> status per id (null: none)
 *   queueState(broker)                           {ready, unacked} of the 'celery' queue
 *   expectCleanLog(output)                       no unhandled rejection / uncaught exception line
 */
import { Celeriac } from '../../workers/app/app';
import { buildTaskMessage, type TaskMessageOptions } from '../../workers/protocol/message';
import { declarationFor } from '../../workers/worker/queues';
import { freshVhost, listQueues } from './rabbit';
import { redisClient, type Redis } from './redis';
import { testRedisUrl } from './env';

export type BrokerKind = 'redis' | 'amqp';

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function waitFor(cond: () => Promise<boolean> | boolean, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await cond()) return;
    await sleep(50);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

export interface LedgerEntry {
  event: string;
  id: string;
  pid: number;
}

export class Ledger {
  constructor(
    readonly client: Redis,
    readonly key: string,
  ) {}

  /** What a worker process needs in its environment to write here (`url`: this client's db). */
  env(url: string): Record<string, string> {
    return { CELERIAC_TEST_LEDGER_URL: url, CELERIAC_TEST_LEDGER: this.key };
  }

  async entries(): Promise<LedgerEntry[]> {
    const raw = await this.client.lrange(this.key, 0, -1);
    return raw.map((line) => {
      const [event, id, pid] = line.split(':');
      if (!event || !id || !pid) throw new Error(`not a fault ledger entry: ${line}`);
      return { event, id, pid: Number(pid) };
    });
  }

  async count(event: string): Promise<number> {
    return (await this.entries()).filter((e) => e.event === event).length;
  }

  async clear(): Promise<void> {
    await this.client.del(this.key);
  }
}

export interface Tally {
  /** Per sent id: how many times it started and finished, and in which processes. */
  byId: Map<string, { starts: number; dones: number; startPids: number[]; donePids: number[] }>;
  /** Ids never finished. */
  missing: string[];
  /** Ids finished more than once. */
  duplicated: string[];
  /** Ledger ids that were never sent (would mean the ledger is mixed up). */
  strangers: string[];
}

export function tally(ids: readonly string[], entries: readonly LedgerEntry[]): Tally {
  const byId = new Map(ids.map((id) => [id, { starts: 0, dones: 0, startPids: [] as number[], donePids: [] as number[] }]));
  const strangers = new Set<string>();
  for (const e of entries) {
    const row = byId.get(e.id);
    if (!row) {
      strangers.add(e.id);
      continue;
    }
    if (e.event === 'start') {
      row.starts++;
      row.startPids.push(e.pid);
    } else if (e.event === 'done') {
      row.dones++;
      row.donePids.push(e.pid);
    }
  }
  const rows = [...byId.entries()];
  return {
    byId,
    missing: rows.filter(([, r]) => r.dones === 0).map(([id]) => id),
    duplicated: rows.filter(([, r]) => r.dones > 1).map(([id]) => id),
    strangers: [...strangers],
  };
}

/**
 * Publishes one `name` task per args entry through Celeriac's own producer side (as a TS
 * producer would), in chunks, after declaring the 'celery' queue as a worker does: on RabbitMQ a
 * message sent before any worker declared the queue would otherwise be dropped as unroutable.
 */
export async function sendTasks(
  brokerUrl: string,
  name: string | ((i: number) => string),
  argsList: readonly unknown[][],
  opts: (i: number) => TaskMessageOptions = () => ({}),
): Promise<string[]> {
  const app = new Celeriac({ brokerUrl, resultBackend: null });
  try {
    const transport = await app.transport();
    await transport.declareQueue(declarationFor('celery', { definitions: null, maxPriority: null, missingQueueType: 'classic' }));
    const ids: string[] = [];
    for (let i = 0; i < argsList.length; i += 200) {
      const chunk = argsList.slice(i, i + 200).map((args, j) => buildTaskMessage(typeof name === 'string' ? name : name(i + j), args, {}, opts(i + j)));
      await Promise.all(chunk.map(({ message }) => transport.publish({ message, exchange: '', routingKey: 'celery' })));
      ids.push(...chunk.map((c) => c.id));
    }
    return ids;
  } finally {
    await app.close();
  }
}

/** Status of celery-task-meta-<id> per id (null when absent), read in chunks. */
export async function statuses(r: Redis, ids: readonly string[]): Promise<(string | null)[]> {
  const out: (string | null)[] = [];
  for (let i = 0; i < ids.length; i += 500) {
    const raws = await r.mget(ids.slice(i, i + 500).map((id) => `celery-task-meta-${id}`));
    for (const raw of raws) out.push(raw === null ? null : ((JSON.parse(raw) as { status?: string }).status ?? null));
  }
  return out;
}

/** Result documents per id (null when absent). */
export interface Meta {
  status: string;
  result: unknown;
  date_done: string | null;
}

export async function metas(r: Redis, ids: readonly string[]): Promise<(Meta | null)[]> {
  const raws = await r.mget(ids.map((id) => `celery-task-meta-${id}`));
  return raws.map((raw) => (raw === null ? null : (JSON.parse(raw) as Meta)));
}

/** The broker side of a scenario: Redis (its db client) or RabbitMQ (its vhost). */
export type BrokerHandle = { kind: 'redis'; url: string; client: Redis } | { kind: 'amqp'; url: string; vhost: string };

/** Messages of queue 'celery' waiting (ready) and handed out but not acknowledged (unacked). */
export async function queueState(b: BrokerHandle): Promise<{ ready: number; unacked: number }> {
  if (b.kind === 'redis') {
    const [ready, unacked] = await Promise.all([b.client.llen('celery'), b.client.hlen('unacked')]);
    return { ready, unacked };
  }
  const q = (await listQueues(b.vhost)).find((x) => x.name === 'celery');
  return { ready: q?.messages_ready ?? 0, unacked: q?.messages_unacknowledged ?? 0 };
}

/** A worker that survived a fault must not have logged an unhandled rejection or exception. */
export function expectCleanLog(output: string): void {
  const bad = output.split('\n').filter((l) => /unhandled rejection|uncaught exception|UnhandledPromiseRejection/i.test(l));
  expect(bad).toEqual([]);
}

/**
 * The Redis clients of one fault test file (its broker db and its results + ledger db), opened in
 * beforeAll and closed in afterAll, and a fresh broker per case: a flushed Redis db or a fresh
 * RabbitMQ vhost named after the case.
 */
export function faultDbs(brokerDb: number, resultsDb: number): { results(): Redis; openBroker(kind: BrokerKind, name: string): Promise<BrokerHandle> } {
  let brokerRedis: Redis;
  let results: Redis;
  beforeAll(() => {
    [brokerRedis, results] = [redisClient(brokerDb), redisClient(resultsDb)];
  });
  afterAll(async () => {
    await Promise.all([brokerRedis.quit(), results.quit()]);
  });
  return {
    results: () => results,
    async openBroker(kind, name) {
      if (kind === 'amqp') return { kind, url: await freshVhost(name), vhost: name };
      await brokerRedis.flushdb();
      return { kind, url: testRedisUrl(brokerDb), client: brokerRedis };
    },
  };
}
