// Celery parity of the canvas on the worker side (issue 18), the same canvas run once by a
// Celeriac worker (queue celery, -A tests/interop/twins.ts) and once by a Python Celery worker
// (queue py), from a Python producer, on Redis (dbs 83/84) and on RabbitMQ (vhost parity-canvas,
// results db 85):
//  - a chord whose header fails, with an old-style errback on its body: what the body stores
//    (ChordError, children = the errback group), what the errback receives, the .j key kept;
//  - Task.add_to_chord from a header task: a signature, and a group | task, join the chord
//    (Celery's own integration tests test_add_to_chord / test_add_chord_to_chord).
import { pyClient, runPyJson } from '../helpers/python';
import { startCeleriacWorker } from '../helpers/celeriacWorker';
import { startPythonWorker } from '../helpers/pyworker';
import type { ProcessHandle } from '../helpers/processes';
import { brokerSetups } from '../helpers/brokers';

const BROKERS = brokerSetups({ redis: [83, 84], rabbit: { vhost: 'parity-canvas', resultsDb: 85 } });

/** Runs chord([add(1,2), add(3,4), fail('boom')], tsum.on_error(errback)) on `queue`; reports what a caller sees. */
const FAILED_CHORD = `
import json, os, re
from celery import chord, signature
from pyapp import app

q = {"queue": os.environ["QUEUE"]}
header = [signature("py.add", (1, 2), options=q, app=app), signature("py.add", (3, 4), options=q, app=app),
          signature("py.fail", ("boom",), options=q, app=app)]
body = signature("py.tsum", options=q, app=app)
body.on_error(signature("py.errback", options={"queue": "py"}, app=app))
res = chord(header, body, app=app).apply_async()
out = {"body_id": res.id}
# propagate=False: with it, get() raises the header's ValueError before the body is stored.
exc = res.get(timeout=30, propagate=False)
out["exc_type"] = type(exc).__name__
out["exc_message"] = re.sub(r"[0-9a-f-]{36}", "<id>", str(exc))
out["state"] = res.state
children = res.children or []
out["children_kinds"] = [type(c).__name__ for c in children]
out["children"] = app.backend.get_task_meta(res.id).get("children")
errback = children[0].children[0] if children else None
out["errback_result"] = errback and errback.get(timeout=30)
out["errback_parent_id"] = errback and app.backend.get_task_meta(errback.id).get("parent_id")
gid = res.parent.id
out["j_kept"] = bool(app.backend.client.exists(app.backend.get_key_for_group(gid, ".j")))
print(json.dumps(out))
`;

interface FailedChord {
  body_id: string;
  exc_type: string;
  exc_message: string;
  state: string;
  children_kinds: string[];
  errback_result: string;
  errback_parent_id: string | null;
  j_kept: boolean;
  children: unknown;
}

const anonymous = (v: unknown): unknown => JSON.parse(JSON.stringify(v).replace(/[0-9a-f]{8}-[0-9a-f-]{27}/g, '<id>'));

/** group([header.s([1, 2, 3])]) | echo.s() on `queue`; prints the sorted result. */
const ADD_TO_CHORD = `
import json, os
from celery import group, signature
from pyapp import app

q = {"queue": os.environ["QUEUE"]}
c = group([signature(os.environ["HEADER"], ([1, 2, 3],), options=q, app=app)]) | signature("py.echo", options=q, app=app)
print(json.dumps(sorted(c.apply_async().get(timeout=30))))
`;

describe.each(BROKERS)('Celery parity of the worker-side canvas ($broker)', ({ env: brokerEnv }) => {
  let env: Record<string, string>;
  let workers: ProcessHandle[] = [];

  beforeAll(async () => {
    env = await brokerEnv();
    workers = await Promise.all([
      startCeleriacWorker({ brokerUrl: env.BROKER_URL!, backendUrl: env.RESULT_BACKEND, concurrency: 4, app: 'tests/interop/twins.ts' }),
      startPythonWorker({ brokerUrl: env.BROKER_URL!, backendUrl: env.RESULT_BACKEND, queues: ['py'], pool: 'threads', concurrency: 4 }),
    ]);
  }, 90_000);

  afterAll(async () => {
    await Promise.all(workers.map((w) => w.stop()));
  });

  it('a failed chord header: the body stores the ChordError with the errback group as its children, as Celery does', async () => {
    const run = (queue: string): Promise<FailedChord> => runPyJson<FailedChord>(FAILED_CHORD, { env: { ...env, QUEUE: queue }, timeoutMs: 90_000 });
    const [ours, theirs] = await Promise.all([run('celery'), run('py')]);
    expect(theirs).toMatchObject({ exc_type: 'ChordError', state: 'FAILURE', children_kinds: ['GroupResult'], j_kept: true });
    expect(ours).toMatchObject({
      exc_type: theirs.exc_type,
      exc_message: theirs.exc_message,
      state: theirs.state,
      children_kinds: theirs.children_kinds,
      j_kept: theirs.j_kept,
    });
    // The stored children tuple has the same shape: [[[group id, null], [[[errback id, null], null]]]].
    expect(anonymous(ours.children)).toEqual(anonymous(theirs.children));
    // The old-style errback got the body's id, and was sent as the body's child.
    for (const r of [ours, theirs]) {
      expect(r.errback_result).toBe(r.body_id);
      expect(r.errback_parent_id).toBe(r.body_id);
    }
  }, 120_000);

  it.each([
    ['py.add_to_chord', [0, 2, 4, 6]],
    ['py.add_chord_to_chord', [0, 12]],
  ])('%s: what a header task adds to its chord joins it, as on a Python worker', async (header, expected) => {
    const run = (queue: string): Promise<number[]> => runPyJson<number[]>(ADD_TO_CHORD, { env: { ...env, QUEUE: queue, HEADER: header }, timeoutMs: 90_000 });
    const [ours, theirs] = await Promise.all([run('celery'), run('py')]);
    expect(theirs).toEqual(expected);
    expect(ours).toEqual(expected);
  }, 120_000);

  it('add_to_chord outside a chord fails the task with ValueError, as Celery', async () => {
    const r = await pyClient<{ state: string; exc_type: string; exc_message: string }>({ op: 'send', task: 'py.add_to_chord', args: [[1]], wait: true }, { env });
    expect(r).toMatchObject({ state: 'FAILURE', exc_type: 'ValueError', exc_message: 'Current task is not member of any chord' });
  }, 60_000);
});
