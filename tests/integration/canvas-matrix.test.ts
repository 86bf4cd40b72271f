/**
 * Canvas matrix: producer (Python, TypeScript) × worker (Python, Celeriac, mixed: py.* tasks on
 * a Python-only queue, ts.* tasks on a Celeriac-only queue) × shape (chain of 5, link/link_error,
 * group of 100, chord of 100 with a sum body, chord with a failing header task, chain-in-group-in-
 * chord, starmap/chunks), on Redis results (Redis broker) and on rpc:// over RabbitMQ. Python
 * producers check results with Celery's own AsyncResult/GroupResult; TS producers with Celeriac's.
 */
import { randomUUID } from 'node:crypto';
import { Celeriac } from '../../workers/app/app';
import type { Signature } from '../../workers/canvas';
import { startPythonWorker } from '../helpers/pyworker';
import { startCeleriacWorker } from '../helpers/celeriacWorker';
import { pyClient } from '../helpers/python';
import { testRedisUrl } from '../helpers/env';
import { flushDb, redisClient } from '../helpers/redis';
import { freshVhost } from '../helpers/rabbit';
import type { ProcessHandle } from '../helpers/processes';
import { buildCanvas, type CanvasSpec } from '../helpers/canvasSpec';

// Shared with nobody else: broker, results and the errback ledger, flushed before each config.
const DB = 59;

type Mode = 'python' | 'celeriac' | 'mixed';
const MODES: Mode[] = ['python', 'celeriac', 'mixed'];

/** The task of step i for a worker mode: py.* on queue py, ts.* on queue ts, mixed alternates. */
function on(mode: Mode, i: number, name: string, args: unknown[], extra: Record<string, unknown> = {}): CanvasSpec {
  const lang = mode === 'python' || (mode === 'mixed' && i % 2 === 0) ? 'py' : 'ts';
  return { sig: `${lang}.${name}`, args, options: { queue: lang, ...extra } };
}

interface Shape {
  spec: CanvasSpec;
  options?: Record<string, unknown>;
  /** What .get() gives, or the error it raises. */
  expect: { result?: unknown; error?: { type: string; message: RegExp } };
  /** Ledger entries the errbacks must have written. */
  ledger?: string[];
  /** A result document that must be stored (Redis results only): id, status, exception type and message. */
  stored?: { id: string; status: string; excType: string; message: RegExp };
  chord?: boolean;
}

function shapes(mode: Mode): Record<string, Shape> {
  const failId = randomUUID();
  const bodyId = randomUUID();
  const failHeaderId = randomUUID();
  const range = [...Array(100).keys()];
  const lang0 = mode === 'celeriac' ? 'ts' : 'py';
  const lang1 = mode === 'python' ? 'py' : 'ts';
  return {
    'chain of 5': { spec: { chain: [0, 1, 2, 3, 4].map((i) => on(mode, i, 'add', i === 0 ? [1, 1] : [1])) }, expect: { result: 6 } },
    'link and link_error': {
      spec: {
        chain: [
          { ...on(mode, 0, 'add', [2, 2]), link: [on(mode, 1, 'add', [10])] } as CanvasSpec,
          {
            ...on(mode, 1, 'fail', ['boom'], { task_id: failId }),
            immutable: true,
            link_error: [{ sig: `${lang0}.errback`, options: { queue: lang0 } }, { sig: `${lang1}.errback_new`, options: { queue: lang1 } }],
          } as CanvasSpec,
        ],
      },
      expect: { error: { type: 'ValueError', message: /boom/ } },
      // The old-style errback is sent as a task with the failed id; the new-style one is called
      // in place by the worker that ran the failed task (it has that errback in every mode).
      ledger: [`old:${failId}`, `new:${failId}:ValueError:boom`],
    },
    'group of 100': { spec: { group: range.map((i) => on(mode, i, 'add', [i, i])) }, expect: { result: range.map((i) => 2 * i) } },
    'chord of 100 with a sum body': { spec: { chord: range.map((i) => on(mode, i, 'add', [i, i])), body: on(mode, 1, 'tsum', []) }, expect: { result: 9900 }, chord: true },
    'chord with a failing header task': {
      spec: {
        chord: [on(mode, 0, 'add', [1, 1]), on(mode, 1, 'fail', ['boom'], { task_id: failHeaderId }), on(mode, 2, 'add', [2, 2])],
        body: { ...on(mode, 1, 'tsum', [], { task_id: bodyId }), link_error: [{ sig: `${lang0}.errback`, options: { queue: lang0 } }] } as CanvasSpec,
      },
      // Both result APIs follow parents (Celery's follow_parents): the failed header task's own
      // error is raised. The body's stored ChordError is checked in the Redis-writes test.
      expect: { error: { type: 'ValueError', message: /boom/ } },
      ledger: [`old:${bodyId}`],
      stored: { id: bodyId, status: 'FAILURE', excType: 'ChordError', message: new RegExp(`^Dependency ${failHeaderId} raised ValueError\\('boom'\\)$`) },
      chord: true,
    },
    'chain-in-group-in-chord': {
      spec: {
        chord: [{ chain: [on(mode, 0, 'add', [1, 1]), on(mode, 1, 'add', [10])] }, { chain: [on(mode, 1, 'add', [2, 2]), on(mode, 0, 'add', [20])] }],
        body: on(mode, 0, 'tsum', []),
      },
      expect: { result: 36 },
      chord: true,
    },
    starmap: { spec: { starmap: `${lang0}.add`, it: [[1, 2], [3, 4]] }, options: { queue: lang0 }, expect: { result: [3, 7] } },
    chunks: { spec: { chunks: `${lang1}.add`, it: [[1, 1], [2, 2], [3, 3], [4, 4], [5, 5]], n: 2 }, options: { queue: lang1 }, expect: { result: [[2, 4], [6, 8], [10]] } },
  };
}

interface PyRun {
  id: string;
  result: unknown;
  exc_type: string | null;
  exc_message: string | null;
  apply_error?: boolean;
}

async function readLedger(): Promise<string[]> {
  const r = redisClient(DB);
  try {
    return await r.lrange('canvas-ledger', 0, -1);
  } finally {
    r.disconnect();
  }
}

/** Poll the stored meta document until it has the expected status (Redis results). */
async function checkStored(stored: NonNullable<Shape['stored']>): Promise<void> {
  const r = redisClient(DB);
  try {
    const deadline = Date.now() + 10_000;
    let meta: { status?: string; result?: { exc_type?: string; exc_message?: string[] } } = {};
    while (Date.now() < deadline) {
      const raw = await r.get(`celery-task-meta-${stored.id}`);
      meta = raw ? JSON.parse(raw) : {};
      if (meta.status === stored.status) break;
      await new Promise((res) => setTimeout(res, 50));
    }
    expect(meta.status).toBe(stored.status);
    expect(meta.result?.exc_type).toBe(stored.excType);
    expect(meta.result?.exc_message?.[0]).toMatch(stored.message);
  } finally {
    r.disconnect();
  }
}

async function waitLedger(expected: string[]): Promise<string[]> {
  const deadline = Date.now() + 10_000;
  let seen = await readLedger();
  while (Date.now() < deadline && !expected.every((e) => seen.includes(e))) {
    await new Promise((r) => setTimeout(r, 50));
    seen = await readLedger();
  }
  return seen;
}

function checkOutcome(shape: Shape, got: { result?: unknown; errType?: string | null; errMessage?: string | null }): void {
  if (shape.expect.error) {
    expect(got.errType).toBe(shape.expect.error.type);
    expect(got.errMessage).toMatch(shape.expect.error.message);
  } else {
    expect(got.errType ?? null).toBeNull();
    expect(got.result).toEqual(shape.expect.result);
  }
}

function matrix(config: 'redis' | 'rpc'): void {
  let env: Record<string, string>;
  let workers: ProcessHandle[] = [];
  let app: Celeriac;

  beforeAll(async () => {
    await flushDb(DB);
    const brokerUrl = config === 'redis' ? testRedisUrl(DB) : await freshVhost('celeriac-canvas');
    const backendUrl = config === 'redis' ? testRedisUrl(DB) : 'rpc://';
    env = { BROKER_URL: brokerUrl, RESULT_BACKEND: backendUrl, LEDGER_URL: testRedisUrl(DB) };
    workers = await Promise.all([
      startPythonWorker({ brokerUrl, backendUrl, queues: ['py'], pool: 'threads', concurrency: 4, extraEnv: { LEDGER_URL: testRedisUrl(DB) } }),
      startCeleriacWorker({ brokerUrl, backendUrl, queues: ['ts'], concurrency: 8, app: 'tests/fixtures/canvasTasks.ts', env: { CELERIAC_TEST_LEDGER_URL: testRedisUrl(DB) } }),
    ]);
    app = new Celeriac({ brokerUrl, resultBackend: backendUrl });
  }, 90_000);

  afterAll(async () => {
    await app?.close();
    await Promise.all(workers.map((w) => w.stop()));
  });

  describe.each(MODES)('%s workers', (mode) => {
    it('Python producer: every shape', async () => {
      const all = shapes(mode);
      const names = Object.keys(all);
      const commands = names.map((n) => ({ op: 'canvas_run', spec: all[n]!.spec, options: all[n]!.options ?? {}, timeout: 20 }));
      const out = await pyClient<{ results: { out: PyRun }[] }>({ op: 'batch', commands }, { env, timeoutMs: 120_000 });
      const expected: string[] = [];
      names.forEach((n, i) => {
        const shape = all[n]!;
        const run = out.results[i]!.out;
        if (config === 'rpc' && shape.chord) {
          // Celery refuses chords on rpc:// before sending anything; so does Celeriac (below).
          expect({ applyError: run.apply_error, type: run.exc_type }).toEqual({ applyError: true, type: 'NotImplementedError' });
          return;
        }
        checkOutcome(shape, { result: run.result, errType: run.exc_type, errMessage: run.exc_message });
        expected.push(...(shape.ledger ?? []));
      });
      for (const shape of Object.values(all)) if (shape.stored && config === 'redis') await checkStored(shape.stored);
      expect(await waitLedger(expected)).toEqual(expect.arrayContaining(expected));
    }, 150_000);

    it('TypeScript producer: every shape', async () => {
      const all = shapes(mode);
      const expected: string[] = [];
      for (const [name, shape] of Object.entries(all)) {
        const sig: Signature = buildCanvas(shape.spec, app);
        if (config === 'rpc' && shape.chord) {
          await expect(sig.applyAsync([], {}, shape.options ?? {})).rejects.toThrow(/rpc:\/\/ result backend cannot run chords/);
          continue;
        }
        const res = await sig.applyAsync([], {}, shape.options ?? {});
        let got: { result?: unknown; errType?: string | null; errMessage?: string | null };
        try {
          got = { result: await res.get({ timeout: 20 }) };
        } catch (err) {
          got = { errType: (err as Error).name, errMessage: (err as Error).message };
        }
        try {
          checkOutcome(shape, got);
        } catch (err) {
          throw new Error(`${name}: ${(err as Error).message}`, { cause: err });
        }
        expected.push(...(shape.ledger ?? []));
        if (shape.stored && config === 'redis') await checkStored(shape.stored);
      }
      expect(await waitLedger(expected)).toEqual(expect.arrayContaining(expected));
    }, 150_000);
  });
}

describe('canvas on Redis results', () => matrix('redis'));
describe('canvas on rpc:// over RabbitMQ', () => matrix('rpc'));
