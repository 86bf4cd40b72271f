/**
 * Differential, worker side (issue #6): the same canvases, with fixed task and group ids, sent by
 * one Python producer and run once with only a Python Celery worker consuming and once with only a
 * Celeriac worker consuming (tests/interop/twins.ts gives it the same py.* task names), each time
 * on freshly flushed broker and results dbs. The Redis writes of the two runs must be the same:
 *   1. the results db afterwards: every key (celery-task-meta-*, celery-taskset-meta-*, chord keys
 *      left behind), its decoded value and its expiry (to ten seconds);
 *   2. the writes while the canvases run, captured with MONITOR (commands run inside Lua scripts
 *      show too, so Celery's scripts and pipelines and ours are seen alike): per key, in order, the
 *      values set and published, the members added to the chord's .j and .d, the size and the
 *      claim, expiries and deletes. Not the command names (SETEX vs SET EX), not reads, not the
 *      order across keys.
 * The producer's own writes (the chord size, the claim reset) are in both logs alike.
 * Normalised away, as they legitimately differ: date_done (its format is still checked), traceback
 * text, JSON spacing (values are compared decoded) and the random chord claim token.
 */
import type Redis from 'ioredis';
import { startPythonWorker } from '../helpers/pyworker';
import { startCeleriacWorker } from '../helpers/celeriacWorker';
import { pyClient } from '../helpers/python';
import { testRedisUrl } from '../helpers/env';
import { flushDb, redisClient, withRedis } from '../helpers/redis';
import type { ProcessHandle } from '../helpers/processes';
import type { CanvasSpec } from '../helpers/canvasSpec';

// This file's own dbs: the broker on one, the results (what is compared) on the other.
const BROKER_DB = 126;
const RESULTS_DB = 127;

/** A run is finished once no write reached the results db for this long. */
const QUIET_MS = 750;

/** Fixed, readable ids: the same keys in both runs, so they compare key by key. */
const fixed = (n: number): string => `d1ff0000-0000-4000-8000-${String(n).padStart(12, '0')}`;

const add = (n: number, ...args: number[]): CanvasSpec => ({ sig: 'py.add', args, options: { task_id: fixed(n) } });

type Final = { status: 'SUCCESS'; result: unknown } | { status: 'FAILURE'; excType: string };

interface Case {
  spec: CanvasSpec;
  /** apply_async options (a chord's task_id is its body's id). */
  options?: Record<string, unknown>;
  /** Every task and group id of the canvas: the keys that contain one belong to this case. */
  ids: string[];
  /** Result documents that must be stored (state and result) before the run counts as finished. */
  final: Record<string, Final>;
}

const ok = (result: unknown): Final => ({ status: 'SUCCESS', result });
const range5 = [1, 2, 3, 4, 5];

// Queued in this order. The failing chord goes last: after its last header task only the tasks
// sent by workers (chain steps 2 and 3, the other chord's body) run, so the dispatch claim it
// leaves behind (6 s, as Celery leaves it) is still there when the db is read.
const CASES: Record<string, Case> = {
  'chain of 3': {
    spec: { chain: [add(1, 1, 1), add(2, 10), add(3, 100)] },
    ids: [1, 2, 3].map(fixed),
    final: { [fixed(1)]: ok(2), [fixed(2)]: ok(12), [fixed(3)]: ok(112) },
  },
  'group of 5': {
    spec: { group: range5.map((i) => add(10 + i, i, i)), options: { task_id: fixed(10) } },
    ids: [10, ...range5.map((i) => 10 + i)].map(fixed),
    final: Object.fromEntries(range5.map((i) => [fixed(10 + i), ok(2 * i)])),
  },
  'chord of 5 with a sum body': {
    // The chord's own task_id becomes its header's group id (Celery's chord.apply_async).
    spec: { chord: range5.map((i) => add(20 + i, i, i)), body: { sig: 'py.tsum' }, options: { task_id: fixed(20) } },
    options: { task_id: fixed(26) },
    ids: [20, ...range5.map((i) => 20 + i), 26].map(fixed),
    final: { ...Object.fromEntries(range5.map((i) => [fixed(20 + i), ok(2 * i)])), [fixed(26)]: ok(30) },
  },
  'chord whose header has a failure': {
    spec: {
      chord: [add(31, 1, 1), { sig: 'py.fail', args: ['boom'], options: { task_id: fixed(32) } }, add(33, 2, 2)],
      body: { sig: 'py.tsum' },
      options: { task_id: fixed(30) },
    },
    options: { task_id: fixed(34) },
    ids: [30, 31, 32, 33, 34].map(fixed),
    final: { [fixed(31)]: ok(2), [fixed(32)]: { status: 'FAILURE', excType: 'ValueError' }, [fixed(33)]: ok(4), [fixed(34)]: { status: 'FAILURE', excType: 'ChordError' } },
  },
};
const NAMES = Object.keys(CASES);

// ---------------------------------------------------------------------------------------------
// Decoding and normalising values

const DATE_DONE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{6})?\+00:00$/;
const CLAIM_TOKEN = /^[0-9a-f]{32}$/;

/** Result documents with date_done and traceback text blanked (what differs run to run). */
function normaliseDoc(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(normaliseDoc);
  if (v === null || typeof v !== 'object') return v;
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) {
    // A date in another format than Celery's isoformat() stays as it is, and shows as a diff.
    if (k === 'date_done' && typeof x === 'string' && DATE_DONE.test(x)) out[k] = '<date_done>';
    else if (k === 'traceback' && typeof x === 'string') out[k] = '<traceback>';
    else out[k] = normaliseDoc(x);
  }
  return out;
}

/** A stored value, decoded: JSON documents as values (spacing is the serializer's business). */
function decode(key: string, raw: string): unknown {
  // The dispatch claim is a random hex token in both (uuid4().hex / randomUUID without dashes).
  if (key.endsWith('.c') && CLAIM_TOKEN.test(raw)) return '<claim token>';
  try {
    return normaliseDoc(JSON.parse(raw));
  } catch {
    return raw;
  }
}

// ---------------------------------------------------------------------------------------------
// The writes, from MONITOR

type Op =
  | { op: 'set'; value: unknown; ex: number | null; nx: boolean }
  | { op: 'publish'; value: unknown }
  | { op: 'del' }
  | { op: 'expire'; seconds: number }
  | { op: 'zadd'; score: string; member: unknown }
  | { op: 'rpush'; value: unknown }
  | { op: 'sadd'; member: unknown }
  | { op: 'incrby'; by: number }
  | { op: 'other'; command: string; args: string[] };

/** Commands that write nothing (or nothing in a db: connection and script plumbing). */
const NOT_WRITES = new Set(
  [
    'get', 'mget', 'exists', 'type', 'ttl', 'pttl', 'strlen', 'sismember', 'smembers', 'scard',
    'zcard', 'zcount', 'zrange', 'zrangebyscore', 'lrange', 'llen', 'scan', 'keys', 'dbsize',
    'subscribe', 'unsubscribe', 'psubscribe', 'punsubscribe', 'ping', 'echo', 'select', 'info',
    'client', 'hello', 'auth', 'command', 'evalsha', 'eval', 'evalsha_ro', 'eval_ro', 'script',
    'multi', 'exec', 'discard', 'watch', 'unwatch', 'readonly', 'quit', 'memory', 'time',
  ],
);

/**
 * MONITOR prints each argument escaped as Redis' sdscatrepr does (\\ \" \n \r \t \a \b \xHH,
 * everything else printable ASCII); ioredis has already turned \" back into ", nothing else.
 */
function unescapeArg(s: string): string {
  const bytes: number[] = [];
  const simple: Record<string, number> = { '\\': 0x5c, '"': 0x22, n: 0x0a, r: 0x0d, t: 0x09, a: 0x07, b: 0x08 };
  for (let i = 0; i < s.length; i += 1) {
    const c = s[i]!;
    const next = s[i + 1];
    if (c === '\\' && next !== undefined && simple[next] !== undefined) {
      bytes.push(simple[next]!);
      i += 1;
    } else if (c === '\\' && next === 'x' && /^[0-9a-f]{2}$/i.test(s.slice(i + 2, i + 4))) {
      bytes.push(parseInt(s.slice(i + 2, i + 4), 16));
      i += 3;
    } else {
      bytes.push(c.charCodeAt(0));
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

/** One write command as (key, op) pairs; a DEL of four keys is four deletes. */
function opsOf(args: string[]): [string, Op][] {
  const [name, ...rest] = args;
  const cmd = (name ?? '').toLowerCase();
  if (NOT_WRITES.has(cmd)) return [];
  const key = rest[0] ?? '';
  switch (cmd) {
    case 'set': {
      const opts = rest.slice(2).map((o) => o.toLowerCase());
      const ex = opts.indexOf('ex');
      const px = opts.indexOf('px');
      const seconds = ex >= 0 ? Number(opts[ex + 1]) : px >= 0 ? Number(opts[px + 1]) / 1000 : null;
      return [[key, { op: 'set', value: decode(key, rest[1] ?? ''), ex: seconds, nx: opts.includes('nx') }]];
    }
    case 'setex':
      return [[key, { op: 'set', value: decode(key, rest[2] ?? ''), ex: Number(rest[1]), nx: false }]];
    case 'publish':
      return [[key, { op: 'publish', value: decode(key, rest[1] ?? '') }]];
    case 'del':
    case 'unlink':
      return rest.map((k): [string, Op] => [k, { op: 'del' }]);
    case 'expire':
      return [[key, { op: 'expire', seconds: Number(rest[1]) }]];
    case 'pexpire':
      return [[key, { op: 'expire', seconds: Number(rest[1]) / 1000 }]];
    case 'zadd': {
      const pairs = rest.slice(1).filter((a) => !['nx', 'xx', 'gt', 'lt', 'ch', 'incr'].includes(a.toLowerCase()));
      const out: [string, Op][] = [];
      for (let i = 0; i + 1 < pairs.length; i += 2) out.push([key, { op: 'zadd', score: pairs[i]!, member: decode(key, pairs[i + 1]!) }]);
      return out;
    }
    case 'rpush':
      return rest.slice(1).map((v): [string, Op] => [key, { op: 'rpush', value: decode(key, v) }]);
    case 'sadd':
      return rest.slice(1).map((m): [string, Op] => [key, { op: 'sadd', member: m }]);
    case 'incr':
      return [[key, { op: 'incrby', by: 1 }]];
    case 'incrby':
      return [[key, { op: 'incrby', by: Number(rest[1]) }]];
    default:
      // Anything else that may write is kept whole: it must then be written by both.
      return [[key, { op: 'other', command: cmd, args: rest.slice(1) }]];
  }
}

/** Every write to one db, per key in order, from a separate ioredis client in MONITOR mode. */
class WriteLog {
  readonly byKey = new Map<string, Op[]>();
  lastWrite = Date.now();

  private constructor(private readonly monitor: Redis) {}

  static async start(db: number): Promise<WriteLog> {
    const client = redisClient(db);
    try {
      const monitor = await client.monitor();
      const log = new WriteLog(monitor);
      monitor.on('monitor', (_time: string, args: string[], _source: string, database: string) => {
        // MONITOR sees every db: the broker's traffic is on the other one.
        if (Number(database) !== db) return;
        const ops = opsOf(args.map(unescapeArg));
        if (!ops.length) return;
        log.lastWrite = Date.now();
        for (const [key, op] of ops) log.byKey.set(key, [...(log.byKey.get(key) ?? []), op]);
      });
      return log;
    } finally {
      // monitor() runs on a duplicate connection: this one is not needed.
      client.disconnect();
    }
  }

  stop(): void {
    this.monitor.disconnect();
  }
}

// ---------------------------------------------------------------------------------------------
// The results db afterwards

interface Stored {
  type: string;
  value: unknown;
  /** null: no expiry; else the remaining time rounded up to ten seconds (86400, 300, 10). */
  ttl: number | null;
}

async function dumpDb(db: number): Promise<Map<string, Stored>> {
  return withRedis(db, async (r) => {
    const out = new Map<string, Stored>();
    for (const key of (await r.keys('*')).sort()) {
      const type = await r.type(key);
      let value: unknown;
      if (type === 'string') value = decode(key, (await r.get(key)) ?? '');
      else if (type === 'zset') {
        const flat = await r.zrange(key, '0', '-1', 'WITHSCORES');
        value = [];
        for (let i = 0; i + 1 < flat.length; i += 2) (value as unknown[]).push({ score: flat[i + 1], member: decode(key, flat[i]!) });
      } else if (type === 'list') value = (await r.lrange(key, 0, -1)).map((v) => decode(key, v));
      else if (type === 'set') value = (await r.smembers(key)).sort();
      else value = `<${type}>`;
      const pttl = await r.pttl(key);
      out.set(key, { type, value, ttl: pttl < 0 ? null : Math.ceil(pttl / 10_000) * 10 });
    }
    return out;
  });
}

// ---------------------------------------------------------------------------------------------
// One run: every case, one worker

interface Run {
  /** The result tuple of each applied canvas (its ids). */
  tuples: Record<string, unknown>;
  state: Map<string, Stored>;
  writes: Map<string, Op[]>;
}

function metaKey(id: string): string {
  return `celery-task-meta-${id}`;
}

/** Waits until every case's final documents hold their states and the db has been quiet a while. */
async function settle(log: WriteLog): Promise<void> {
  const final = Object.values(CASES).flatMap((c) => Object.entries(c.final));
  const deadline = Date.now() + 20_000;
  await withRedis(RESULTS_DB, async (r) => {
    for (;;) {
      const raws = await r.mget(final.map(([id]) => metaKey(id)));
      const missing = final.filter(([, want], i) => {
        const raw = raws[i];
        return !raw || (JSON.parse(raw) as { status?: string }).status !== want.status;
      });
      if (!missing.length && Date.now() - log.lastWrite >= QUIET_MS) return;
      if (Date.now() > deadline) throw new Error(`results not final after 20 s: ${missing.map(([id, want]) => `${id} (${want.status})`).join(', ')}`);
      await new Promise((res) => setTimeout(res, 50));
    }
  });
}

async function runOn(side: 'python' | 'celeriac'): Promise<Run> {
  const brokerUrl = testRedisUrl(BROKER_DB);
  const backendUrl = testRedisUrl(RESULTS_DB);
  await Promise.all([flushDb(BROKER_DB), flushDb(RESULTS_DB)]);
  const log = await WriteLog.start(RESULTS_DB);
  let worker: ProcessHandle | null = null;
  try {
    // Every canvas is queued before the worker starts. Celery's producer sets a chord's size
    // (.s) only as it sends the LAST header task, so a worker already consuming may record the
    // first parts before the size exists, and the order of writes on .s would depend on timing.
    const commands = NAMES.map((n) => ({ op: 'canvas_run', spec: CASES[n]!.spec, options: CASES[n]!.options ?? {}, wait: false }));
    const sent = await pyClient<{ results: { out: { tuple: unknown } }[] }>({ op: 'batch', commands }, { env: { BROKER_URL: brokerUrl, RESULT_BACKEND: backendUrl } });
    // One worker, one task at a time, one queue consumed in order: the tasks run in the same
    // order in both runs, so the per-key write sequences (and which part completes a chord) are
    // deterministic.
    worker =
      side === 'python'
        ? await startPythonWorker({ brokerUrl, backendUrl, concurrency: 1 })
        : await startCeleriacWorker({ brokerUrl, backendUrl, concurrency: 1, app: 'tests/interop/twins.ts' });
    await settle(log);
    const state = await dumpDb(RESULTS_DB);
    // Stopped before the log is: anything a worker writes on its way out is compared too.
    await worker.stop();
    worker = null;
    return { tuples: Object.fromEntries(NAMES.map((n, i) => [n, sent.results[i]!.out.tuple])), state, writes: log.byKey };
  } finally {
    await worker?.stop();
    log.stop();
  }
}

const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g;

/** The keys of one case (those naming one of its ids), or of none (name = null). */
function slice<T>(all: Map<string, T>, name: string | null): Record<string, T> {
  const owner = (key: string): string | null => NAMES.find((n) => CASES[n]!.ids.some((id) => key.includes(id))) ?? null;
  return Object.fromEntries([...all].filter(([key]) => owner(key) === name));
}

describe('canvas Redis writes: Python worker vs Celeriac worker', () => {
  let python: Run;
  let celeriac: Run;

  beforeAll(async () => {
    python = await runOn('python');
    celeriac = await runOn('celeriac');
  }, 120_000);

  it('the canvases used only the fixed ids, and both workers stored the expected results', () => {
    for (const name of NAMES) {
      const c = CASES[name]!;
      const used = [...new Set(JSON.stringify(python.tuples[name]).match(UUID))].sort();
      expect({ name, used }).toEqual({ name, used: [...c.ids].sort() });
      for (const run of [python, celeriac]) {
        for (const [id, want] of Object.entries(c.final)) {
          const doc = run.state.get(metaKey(id))?.value;
          if (want.status === 'SUCCESS') expect({ id, doc }).toMatchObject({ id, doc: { status: 'SUCCESS', result: want.result } });
          else expect({ id, doc }).toMatchObject({ id, doc: { status: 'FAILURE', result: { exc_type: want.excType } } });
        }
      }
    }
  });

  it('the Python run wrote what a chord writes (the comparison below is not of empty logs)', () => {
    const chord = slice(python.writes, 'chord of 5 with a sum body');
    const g = `celery-taskset-meta-${fixed(20)}`;
    expect(Object.keys(chord)).toEqual(expect.arrayContaining([`${g}.s`, `${g}.j`, `${g}.d`, `${g}.c`, metaKey(fixed(26))]));
    expect(chord[`${g}.j`]!.filter((op) => op.op === 'zadd')).toHaveLength(5);
  });

  describe.each(NAMES)('%s', (name) => {
    it('the results db afterwards: same keys, decoded values and expiries', () => {
      expect(slice(celeriac.state, name)).toEqual(slice(python.state, name));
    });

    it('the writes while it ran: per key, the same values, members, counters and expiries', () => {
      expect(slice(celeriac.writes, name)).toEqual(slice(python.writes, name));
    });
  });

  it('no other keys were written, by either worker', () => {
    expect({ state: slice(celeriac.state, null), writes: slice(celeriac.writes, null) }).toEqual({ state: slice(python.state, null), writes: slice(python.writes, null) });
  });
});
