/**
 * Differential: the same canvas built and applied by Python Celery and by Celeriac's TS producer
 * gives the same messages (headers, body with its embedded callbacks/chain/chord, reply_to,
 * queue) and the same result tree, once random ids are numbered by first appearance.
 */
import { Celeriac } from '../../workers/app/app';
import { FileBackend } from '../../workers/backends/file';
import { chordBackendFor } from '../../workers/canvas/chordBackends';
import { pyClient } from '../helpers/python';
import { testTmpDir } from '../helpers/env';
import { RecordingHost, buildCanvas, normalizeIds, type CanvasSpec, type RecordedMessage } from '../helpers/canvasSpec';

const add = (...args: unknown[]): CanvasSpec => ({ sig: 'py.add', args });

const CASES: Record<string, { spec: CanvasSpec; args?: unknown[]; options?: Record<string, unknown> }> = {
  'chain of 5': { spec: { chain: [add(1, 1), add(1), add(1), add(1), add(1)] } },
  'chain with partial args and options': { spec: { chain: [add(1), add(2), { sig: 'py.echo', immutable: true, args: ['x'] }] }, args: [10], options: { queue: 'q1', priority: 3 } },
  'link and link_error': { spec: { sig: 'py.add', args: [1, 2], link: [add(10), { sig: 'py.echo', args: ['done'], immutable: true }], link_error: [{ sig: 'py.errback' }] } },
  'chain with link_error': { spec: { chain: [add(1, 1), add(2)], link_error: [{ sig: 'py.errback' }], link: [{ sig: 'py.echo' }] } },
  'group of 4': { spec: { group: [add(1, 1), add(2, 2), add(3, 3), add(4, 4)] } },
  'group with partial args': { spec: { group: [add(1), add(2)] }, args: [100] },
  'chord with sum body': { spec: { chord: [add(1, 1), add(2, 2), add(3, 3)], body: { sig: 'py.tsum' } } },
  'chord body with link_error': { spec: { chord: [add(1, 1), { sig: 'py.fail', args: ['x'] }], body: { sig: 'py.tsum', link_error: [{ sig: 'py.errback' }] } } },
  'group then task is a chord': { spec: { chain: [{ group: [add(1, 1), add(2, 2)] }, { sig: 'py.tsum' }, add(5)] } },
  'chain-in-group-in-chord': { spec: { chord: [{ chain: [add(1, 1), add(10)] }, { chain: [add(2, 2), add(20)] }, { group: [add(3, 3), add(4, 4)] }], body: { sig: 'py.tsum' } } },
  'chain with a chord in the middle': { spec: { chain: [add(1, 1), { chord: [add(1), add(2)], body: { sig: 'py.tsum' } }, add(3)] } },
  starmap: { spec: { starmap: 'py.add', it: [[1, 2], [3, 4]] } },
  map: { spec: { map: 'py.echo', it: [1, 2, 3] } },
  chunks: { spec: { chunks: 'py.add', it: [[1, 1], [2, 2], [3, 3], [4, 4], [5, 5]], n: 2 } },
};

interface Dump {
  messages: RecordedMessage[];
  result: unknown;
}

/**
 * What must match: headers (not origin, per process; not eta, a time), body, reply/correlation
 * ids, queue. `loose` also drops the repr headers (Celery's saferepr cuts nested tuples at 3
 * levels; ours prints them whole, as lists).
 */
function comparable(messages: RecordedMessage[], loose = false): unknown[] {
  return messages.map((m) => {
    const { origin: _origin, eta: _eta, ...headers } = m.headers;
    if (loose) {
      delete headers.argsrepr;
      delete headers.kwargsrepr;
    }
    return { headers, body: m.body, correlation_id: m.properties.correlation_id, reply_to: m.properties.reply_to, routing_key: m.routing_key };
  });
}

async function pythonDumps(backend: string): Promise<Record<string, Dump>> {
  const names = Object.keys(CASES);
  const commands = names.map((n) => ({ op: 'canvas_dump', spec: CASES[n]!.spec, args: CASES[n]!.args ?? [], options: CASES[n]!.options ?? {} }));
  const out = await pyClient<{ results: { out: Dump }[] }>({ op: 'batch', commands }, { env: { RESULT_BACKEND: backend } });
  return Object.fromEntries(names.map((n, i) => [n, out.results[i]!.out]));
}

describe('canvas messages: Python vs TypeScript producer', () => {
  const app = new Celeriac({ brokerUrl: 'memory://', resultBackend: null });
  let python: Record<string, Dump>;

  beforeAll(async () => {
    // cache+memory:// counts chords in the backend as Redis does: no chord_unlock message.
    python = await pythonDumps('cache+memory://');
  });

  it.each(Object.keys(CASES))('%s', async (name) => {
    const c = CASES[name]!;
    const host = new RecordingHost(app);
    const result = await buildCanvas(c.spec).applyAsync(c.args ?? [], {}, c.options ?? {}, host);
    const ts = normalizeIds({ messages: comparable(host.messages), result: result.asTuple() });
    const py = normalizeIds({ messages: comparable(python[name]!.messages), result: python[name]!.result });
    expect(ts).toEqual(py);
  });

  it('chord on a backend without chord counters sends celery.chord_unlock as Celery does', async () => {
    const dir = testTmpDir('canvas-unlock');
    const spec: CanvasSpec = { chord: [add(1, 1), add(2, 2)], body: { sig: 'py.tsum' } };
    const py = await pyClient<{ results: { out: Dump }[] }>({ op: 'batch', commands: [{ op: 'canvas_dump', spec }] }, { env: { RESULT_BACKEND: `file://${dir}` } });
    const host = new RecordingHost(app, (h) => chordBackendFor(FileBackend.fromUrl(`file://${dir}`), h));
    const result = await buildCanvas(spec).applyAsync([], {}, {}, host);
    const dump = py.results[0]!.out;
    expect(dump.messages.map((m) => m.headers.task)).toEqual(['celery.chord_unlock', 'py.add', 'py.add']);
    expect(normalizeIds({ messages: comparable(host.messages, true), result: result.asTuple() })).toEqual(normalizeIds({ messages: comparable(dump.messages, true), result: dump.result }));
  });
});
