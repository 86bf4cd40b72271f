// Celery parity of remote inspection (issue 18), asked by real Python Celery's app.control of a
// Celeriac worker (-A tests/fixtures/parityTasks.ts) beside a Python worker for comparison, on
// Redis (db 86, results db 87) and on RabbitMQ (vhost parity-inspect, results db 88):
//  - registered with task-info items answers 'name [attr=value ...]' as Celery does;
//  - scheduled echoes the producer's eta exactly (microseconds kept);
//  - conf answers Celery's setting names, with Celery's defaults for what Celeriac does not set.
import os from 'node:os';
import { pyClient, runPyJson } from '../helpers/python';
import { startCeleriacWorker } from '../helpers/celeriacWorker';
import { startPythonWorker } from '../helpers/pyworker';
import type { ProcessHandle } from '../helpers/processes';
import { brokerSetups } from '../helpers/brokers';
import { pyControl, waitFor } from '../helpers/control';

const BROKERS = brokerSetups({ redis: [86, 87], rabbit: { vhost: 'parity-inspect', resultsDb: 88 } });

/** conf() of both workers, compared in Python (Celery's table holds a float inf JSON cannot carry). */
const CONF = `
import json, os
from pyapp import app
ours, theirs = os.environ["OURS"], os.environ["THEIRS"]
i = app.control.inspect(destination=[ours, theirs], timeout=3)
plain, full = i.conf(), i.conf(with_defaults=True)
mine = plain[ours]
print(json.dumps({
    "missing": sorted(set(full[theirs]) - set(mine)),
    "celery_keys": {k: mine.get(k) for k in ("enable_utc", "timezone", "worker_hijack_root_logger", "broker_heartbeat",
                                              "task_default_queue", "deprecated_settings", "include", "worker_concurrency")},
    "with_defaults_missing": sorted(set(full[theirs]) - set(full[ours])),
}, default=repr))
`;

describe.each(BROKERS)('Celery parity of inspect ($broker)', ({ broker, env: brokerEnv }) => {
  const ours = `parity-inspect-${broker.toLowerCase()}-${process.pid}@${os.hostname()}`;
  const theirs = `py-inspect-${broker.toLowerCase()}-${process.pid}@${os.hostname()}`;
  let env: Record<string, string>;
  let workers: ProcessHandle[] = [];
  const inspect = async (method: string): Promise<unknown> => {
    const [reply] = (await pyControl(env, [['inspect', method, [], {}]], { destination: [ours] })) as Record<string, unknown>[];
    return reply?.[ours];
  };

  beforeAll(async () => {
    env = await brokerEnv();
    workers = await Promise.all([
      startCeleriacWorker({ brokerUrl: env.BROKER_URL!, backendUrl: env.RESULT_BACKEND, hostname: ours, app: 'tests/fixtures/parityTasks.ts' }),
      startPythonWorker({ brokerUrl: env.BROKER_URL!, backendUrl: env.RESULT_BACKEND, hostname: theirs, queues: ['py'] }),
    ]);
    await pyControl(env, [['inspect', 'ping', [], {}]], { waitFor: [ours, theirs] });
  }, 90_000);

  afterAll(async () => {
    await Promise.all(workers.map((w) => w.stop()));
  });

  it('registered with task-info items: "name [attr=value ...]", as a Python worker answers', async () => {
    const items = ['max_retries', 'serializer', 'acks_late', 'trail', 'default_retry_delay', 'ignore_result', 'track_started', 'name', 'time_limit', '_private'];
    // One Python process asks both workers; the rate_limit command changes what registered shows
    // afterwards, as it sets the Celery task's attribute.
    const replies = (await pyControl(
      env,
      [
        ['inspect', 'registered', ['rate_limit'], {}],
        ['inspect', 'registered', [], {}],
        ['inspect', 'registered', items, {}],
        ['control', 'rate_limit', ['parity.sleep', '5/s'], {}],
        ['inspect', 'registered', ['rate_limit'], {}],
      ],
      { destination: [ours, theirs] },
    )) as Record<string, string[]>[];
    const [withItem, withDefaults, withItems, , afterCommand] = replies.map((r) => r[ours]);
    expect(withItem).toEqual(expect.arrayContaining(['parity.limited [rate_limit=10/m]', 'parity.sleep']));
    // Celery's default items (exchange, routing_key, rate_limit) when none is given.
    expect(withDefaults).toEqual(expect.arrayContaining(['parity.limited [rate_limit=10/m]', 'parity.sleep']));
    const python = replies[2]![theirs]!.find((t) => t.startsWith('py.sleep '))!;
    expect(python).toContain('max_retries=3');
    expect(withItems!.find((t) => t.startsWith('parity.sleep '))).toBe(python.replace(/py\.sleep/g, 'parity.sleep'));
    expect(afterCommand).toContain('parity.sleep [rate_limit=5/s]');
  }, 60_000);

  it("scheduled echoes the producer's eta exactly, microseconds kept", async () => {
    const eta = new Date(Date.now() + 120_000).toISOString().replace(/\.(\d{3})Z$/, '.$1789+00:00');
    const sent = await pyClient<{ id: string }>({ op: 'send', task: 'parity.sleep', args: [0], options: { eta } }, { env });
    let scheduled: { eta: string; request: { id: string } }[] = [];
    await waitFor('the task in scheduled', async () => {
      scheduled = (await inspect('scheduled')) as typeof scheduled;
      return scheduled.some((s) => s.request.id === sent.id);
    });
    expect(scheduled.find((s) => s.request.id === sent.id)!.eta).toBe(eta);
    await pyControl(env, [['control', 'revoke', [sent.id], {}]], { destination: [ours] });
  }, 60_000);

  it("conf answers Celery's setting names and defaults, every key a Python worker has", async () => {
    const r = await runPyJson<{ missing: string[]; with_defaults_missing: string[]; celery_keys: Record<string, unknown> }>(CONF, {
      env: { ...env, OURS: ours, THEIRS: theirs },
    });
    expect(r.missing).toEqual([]);
    expect(r.with_defaults_missing).toEqual([]);
    expect(r.celery_keys).toMatchObject({
      enable_utc: true,
      timezone: null,
      worker_hijack_root_logger: true,
      broker_heartbeat: 120,
      task_default_queue: 'celery',
      deprecated_settings: null,
      include: ['./workers/tasks/demo', 'tests/fixtures/parityTasks.ts', 'celery.app.builtins'],
      worker_concurrency: 2,
    });
  }, 60_000);
});
