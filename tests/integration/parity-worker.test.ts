// Celery parity of the message path (issue 18), with a real Python Celery producer, on Redis
// (db 80, results db 81) and on RabbitMQ (vhost parity-worker, results db 82):
//  - the timelimit header is [hard, soft]: per-message limits from apply_async reach every pool,
//    and a chord header's members;
//  - self.request.properties carries the message's properties, key for key as a Python worker sees them;
//  - expires is checked again when a task starts, not only when it is received.
import { pyClient, runPyJson } from '../helpers/python';
import { startCeleriacWorker } from '../helpers/celeriacWorker';
import { startPythonWorker } from '../helpers/pyworker';
import type { ProcessHandle } from '../helpers/processes';
import { brokerSetups } from '../helpers/brokers';

interface Sent {
  id: string;
  state: string | null;
  result: unknown;
  exc_type: string | null;
  exc_message: string | null;
}

const BROKERS = brokerSetups({ redis: [80, 81], rabbit: { vhost: 'parity-worker', resultsDb: 82 } });

describe.each(BROKERS)('Celery parity of the message path ($broker)', ({ env: brokerEnv }) => {
  let env: Record<string, string>;
  let worker: ProcessHandle;
  let pyWorker: ProcessHandle;

  const send = (task: string, args: unknown[], options: Record<string, unknown> = {}, timeout = 30): Promise<Sent> =>
    pyClient<Sent>({ op: 'send', task, args, options, wait: true, timeout }, { env, timeoutMs: (timeout + 30) * 1000 });

  beforeAll(async () => {
    env = await brokerEnv();
    // One slot: the expires test keeps it busy. Pinned tasks run in a threads and a processes pool.
    [worker, pyWorker] = await Promise.all([
      startCeleriacWorker({ brokerUrl: env.BROKER_URL!, backendUrl: env.RESULT_BACKEND, concurrency: 1, app: 'tests/fixtures/parityTasks.ts' }),
      startPythonWorker({ brokerUrl: env.BROKER_URL!, backendUrl: env.RESULT_BACKEND, queues: ['py'] }),
    ]);
  }, 90_000);

  afterAll(async () => {
    await Promise.all([worker?.stop(), pyWorker?.stop()]);
  });

  it.each(['parity.soft', 'parity.soft_threads', 'parity.soft_processes'])(
    'apply_async(soft_time_limit=1) is a soft limit the task catches (%s)',
    async (task) => {
      const soft = await send(task, [20], { soft_time_limit: 1 });
      expect(soft).toMatchObject({ state: 'SUCCESS', result: 'caught SoftTimeLimitExceeded' });
      // Both limits: the soft one (the second of the header) fires first.
      const both = await send(task, [20], { time_limit: 10, soft_time_limit: 1 });
      expect(both).toMatchObject({ state: 'SUCCESS', result: 'caught SoftTimeLimitExceeded' });
    },
    90_000,
  );

  it('sig.set(soft_time_limit=1) in a chord header: each member catches it and the body gets their results', async () => {
    const results = await runPyJson<string[]>(
      `
import json
from celery import chord, signature
from pyapp import app
header = [signature(name, (20,), app=app).set(soft_time_limit=1) for name in ("parity.soft", "parity.soft_threads")]
print(json.dumps(chord(header, signature("parity.collect", app=app), app=app).apply_async().get(timeout=40)))
`,
      { env, timeoutMs: 80_000 },
    );
    expect(results).toEqual(['caught SoftTimeLimitExceeded', 'caught SoftTimeLimitExceeded']);
  }, 90_000);

  it('apply_async(time_limit=1) is a hard limit: TimeLimitExceeded', async () => {
    const hard = await send('parity.hang', [], { time_limit: 1 });
    expect(hard).toMatchObject({ state: 'FAILURE', exc_type: 'TimeLimitExceeded' });
  }, 60_000);

  it('request.properties carries the message properties as a Python worker sees them', async () => {
    const [ours, theirs] = await Promise.all([
      send('parity.properties', [], { app_id: '1234' }),
      send('py.properties', [], { app_id: '1234', queue: 'py' }),
    ]);
    const props = ours.result as Record<string, unknown>;
    const pyProps = theirs.result as Record<string, unknown>;
    expect(props.app_id).toBe('1234');
    expect(props.correlation_id).toBe(ours.id);
    expect(Object.keys(props).sort()).toEqual(Object.keys(pyProps).sort());
    for (const key of ['app_id', 'delivery_mode', 'priority', 'content_type', 'content_encoding', 'body_encoding']) {
      expect(props[key]).toEqual(pyProps[key]);
    }
  }, 60_000);

  it('a task that expires while held behind a busy slot is REVOKED when its turn comes', async () => {
    // One producer, in this order: the busy task takes the only slot, the other one is received
    // at once (prefetch), before it expires, but its slot frees only after it has.
    const sent = await pyClient<{ results: { out: { id: string } }[] }>(
      { op: 'batch', commands: [{ op: 'send', task: 'parity.sleep', args: [5] }, { op: 'send', task: 'parity.sleep', args: [0], options: { expires: 2.5 } }] },
      { env },
    );
    const [busy, late] = sent.results.map((r) => r.out.id) as [string, string];
    const get = (id: string): Promise<Sent> => pyClient<Sent>({ op: 'get', id, timeout: 40 }, { env, timeoutMs: 60_000 });
    expect(await get(late)).toMatchObject({ state: 'REVOKED', exc_type: 'TaskRevokedError' });
    expect(await get(busy)).toMatchObject({ state: 'SUCCESS', result: 5 });
    expect(await send('parity.sleep', [0])).toMatchObject({ state: 'SUCCESS', result: 0 });
  }, 90_000);
});
