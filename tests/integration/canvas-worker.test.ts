/**
 * The Celeriac worker's side of the canvas beyond the matrix: replace() (by a chain, by a group,
 * inside a chain), `children` and group ids in stored results, built-in tasks, and chords on a
 * backend without chord counters (file://), joined by celery.chord_unlock.
 */
import { Celeriac } from '../../workers/app/app';
import { signature, chain, chord } from '../../workers/canvas';
import { startPythonWorker } from '../helpers/pyworker';
import { startCeleriacWorker } from '../helpers/celeriacWorker';
import { pyClient } from '../helpers/python';
import { testRedisUrl, testTmpDir } from '../helpers/env';
import { flushDb, redisClient } from '../helpers/redis';
import type { ProcessHandle } from '../helpers/processes';

const DB = 59;

interface PyRun {
  result: unknown;
  exc_type: string | null;
  exc_message: string | null;
}

describe('canvas on Celeriac workers', () => {
  let workers: ProcessHandle[] = [];

  afterEach(async () => {
    await Promise.all(workers.map((w) => w.stop()));
    workers = [];
  });

  it('replace(), children, group ids and built-in tasks (Redis results)', async () => {
    await flushDb(DB);
    const url = testRedisUrl(DB);
    const env = { BROKER_URL: url, RESULT_BACKEND: url };
    workers = [await startCeleriacWorker({ brokerUrl: url, backendUrl: url, queues: ['ts', 'celery'], app: 'tests/fixtures/canvasTasks.ts' })];
    const ts = (name: string, args: unknown[] = [], immutable = false) => ({ sig: name, args, immutable, options: { queue: 'ts' } });
    const commands = [
      { op: 'canvas_run', spec: ts('ts.replace_with_chain', [5]) },
      { op: 'canvas_run', spec: ts('ts.replace_with_group', [1]) },
      { op: 'canvas_run', spec: { chain: [ts('ts.replace_with_chain', [5]), ts('ts.add', [100])] } },
      { op: 'canvas_run', spec: ts('celery.ping') },
      { op: 'canvas_run', spec: { starmap: 'ts.add', it: [[1, 2]] }, options: { queue: 'ts' } },
    ];
    const out = await pyClient<{ results: { out: PyRun }[] }>({ op: 'batch', commands: commands.map((c) => ({ ...c, timeout: 5 })) }, { env });
    if (process.env.DEBUG_CANVAS) console.log(JSON.stringify(out.results.map((r) => r.out)), workers[0]!.output());
    expect(out.results.map((r) => r.out.result)).toEqual([16, [2, 3], 116, 'pong', [3]]);

    const app = new Celeriac({ brokerUrl: url, resultBackend: url });
    try {
      const first = signature('ts.add', [1, 1], {}, { queue: 'ts' });
      const second = signature('ts.add', [1], {}, { queue: 'ts' });
      const res = await chain(first, second).bind(app).applyAsync();
      expect(await res.get({ timeout: 10 })).toBe(3);
      // The first step's meta lists the second step as its child, as a Python worker stores it.
      const r = redisClient(DB);
      const firstMeta = JSON.parse((await r.get(`celery-task-meta-${res.parent!.id}`))!);
      expect(firstMeta.children).toEqual([[[res.id, null], null]]);
      const g = await chord([signature('ts.add', [1, 1], {}, { queue: 'ts' }), signature('ts.add', [2, 2], {}, { queue: 'ts' })], signature('ts.tsum', [], {}, { queue: 'ts' })).bind(app).applyAsync();
      expect(await g.get({ timeout: 10 })).toBe(6);
      const header = g.parent as unknown as { id: string; results: { id: string }[] };
      const memberMeta = JSON.parse((await r.get(`celery-task-meta-${header.results[1]!.id}`))!);
      expect(memberMeta.group_id).toBe(header.id);
      // The chord's keys are gone once the body was sent; the claim key says 'done'.
      expect(await r.exists(`celery-taskset-meta-${header.id}.j`, `celery-taskset-meta-${header.id}.s`)).toBe(0);
      expect(await r.get(`celery-taskset-meta-${header.id}.c`)).toBe('done');
      r.disconnect();
    } finally {
      await app.close();
    }
  }, 60_000);

  it('chord on file:// results: celery.chord_unlock joins the header (Python and Celeriac workers)', async () => {
    await flushDb(DB);
    const broker = testRedisUrl(DB);
    const results = `file://${testTmpDir('canvas-file-results')}`;
    workers = await Promise.all([
      startCeleriacWorker({ brokerUrl: broker, backendUrl: results, queues: ['ts'], app: 'tests/fixtures/canvasTasks.ts' }),
      startPythonWorker({ brokerUrl: broker, backendUrl: results, queues: ['py'], pool: 'threads', concurrency: 2 }),
    ]);
    const on = (lang: string, name: string, args: unknown[] = []) => ({ sig: `${lang}.${name}`, args, options: { queue: lang } });
    const commands = [
      // Body on Celeriac: chord_unlock goes to its queue and Celeriac polls the header.
      { op: 'canvas_run', spec: { chord: [on('py', 'add', [1, 1]), on('ts', 'add', [2, 2])], body: on('ts', 'tsum') } },
      // Body on Python, header on Celeriac: Python's chord_unlock reads Celeriac's results.
      { op: 'canvas_run', spec: { chord: [on('ts', 'add', [3, 3]), on('ts', 'add', [4, 4])], body: on('py', 'tsum') } },
      { op: 'canvas_run', spec: { chord: [on('ts', 'add', [1, 1]), on('ts', 'fail', ['boom'])], body: on('ts', 'tsum') } },
    ];
    const out = await pyClient<{ results: { out: PyRun }[] }>({ op: 'batch', commands }, { env: { BROKER_URL: broker, RESULT_BACKEND: results }, timeoutMs: 60_000 });
    expect(out.results.map((r) => r.out.result).slice(0, 2)).toEqual([6, 14]);
    expect(out.results[2]!.out.exc_type).toBe('ValueError');

    const app = new Celeriac({ brokerUrl: broker, resultBackend: results });
    try {
      const res = await chord([signature('ts.add', [5, 5], {}, { queue: 'ts' }), signature('py.add', [6, 6], {}, { queue: 'py' })], signature('ts.tsum', [], {}, { queue: 'ts' })).bind(app).applyAsync();
      expect(await res.get({ timeout: 20 })).toBe(22);
      const failing = await chord([signature('ts.fail', ['boom'], {}, { queue: 'ts' })], signature('ts.tsum', [], {}, { queue: 'ts' })).bind(app).applyAsync();
      const body = await failing.get({ timeout: 20, propagate: false });
      expect((body as Error).name).toBe('ChordError');
      expect((body as Error).message).toMatch(/^Dependency .+ raised ValueError\('boom'\)$/);
    } finally {
      await app.close();
    }
  }, 90_000);
});
