// A mixed fleet: one Python Celery worker and one Celeriac worker on the same broker answer the
// same remote control broadcasts (no destination) from Python's app.control, and the Celeriac
// replies have the shapes of the Python ones. Redis (broker db 24, results db 25) and RabbitMQ
// (vhost mixed-fleet, results db 26).
import os from 'node:os';
import { testRedisUrl } from '../helpers/env';
import { startCeleriacWorker } from '../helpers/celeriacWorker';
import { startPythonWorker } from '../helpers/pyworker';
import type { ProcessHandle } from '../helpers/processes';
import { flushDb } from '../helpers/redis';
import { freshVhost } from '../helpers/rabbit';
import { pyControl } from '../helpers/control';

const BROKERS: { broker: string; env: () => Promise<Record<string, string>> }[] = [
  {
    broker: 'Redis',
    env: async () => {
      await flushDb(24);
      await flushDb(25);
      return { BROKER_URL: testRedisUrl(24), RESULT_BACKEND: testRedisUrl(25) };
    },
  },
  {
    broker: 'RabbitMQ',
    env: async () => {
      await flushDb(26);
      return { BROKER_URL: await freshVhost('mixed-fleet'), RESULT_BACKEND: testRedisUrl(26) };
    },
  },
];

/** A broadcast's replies ([{node: reply}, ...], in arrival order) as one object by node. */
function byNode(replies: unknown): Record<string, unknown> {
  return Object.assign({}, ...(replies as Record<string, unknown>[])) as Record<string, unknown>;
}

describe.each(BROKERS)('a Python and a Celeriac worker answer the same broadcast ($broker)', ({ broker, env: brokerEnv }) => {
  const tag = `${broker.toLowerCase()}-${process.pid}@${os.hostname()}`;
  const py = `py-fleet-${tag}`;
  const ts = `ts-fleet-${tag}`;
  let env: Record<string, string>;
  const workers: ProcessHandle[] = [];

  beforeAll(async () => {
    env = await brokerEnv();
    const [pyWorker, tsWorker] = await Promise.all([
      startPythonWorker({ brokerUrl: env.BROKER_URL!, backendUrl: env.RESULT_BACKEND, hostname: py }),
      // twins.ts gives the Celeriac worker py.add too, so both know one task name.
      startCeleriacWorker({ brokerUrl: env.BROKER_URL!, backendUrl: env.RESULT_BACKEND, hostname: ts, app: 'tests/interop/twins.ts' }),
    ]);
    workers.push(pyWorker, tsWorker);
  });

  afterAll(async () => {
    await Promise.all(workers.map((w) => w.stop().catch(() => undefined)));
  });

  it('inspect ping, control rate_limit and inspect active_queues get one reply from each, alike', async () => {
    const [ping, limited, unknownHere, invalid, disabled, queues] = await pyControl(
      env,
      [
        ['inspect', 'ping', [], {}],
        ['control', 'rate_limit', ['py.add', '10/m'], {}],
        ['control', 'rate_limit', ['demo.add', '5/s'], {}],
        ['control', 'rate_limit', ['py.add', 'fast'], {}],
        ['control', 'rate_limit', ['py.add', null], {}],
        ['inspect', 'active_queues', [], {}],
      ],
      // No destination: every node answers; each call collects replies for the whole timeout.
      { waitFor: [py, ts], timeout: 1 },
    );
    expect(ping).toEqual({ [py]: { ok: 'pong' }, [ts]: { ok: 'pong' } });
    expect(byNode(limited)).toEqual({ [py]: { ok: 'new rate limit set successfully' }, [ts]: { ok: 'new rate limit set successfully' } });
    // demo.add exists on the Celeriac worker only.
    expect(byNode(unknownHere)).toEqual({ [py]: { error: 'unknown task' }, [ts]: { ok: 'new rate limit set successfully' } });
    const badRate = { error: `Invalid rate limit string: ValueError("could not convert string to float: 'fast'")` };
    expect(byNode(invalid)).toEqual({ [py]: badRate, [ts]: badRate });
    expect(byNode(disabled)).toEqual({ [py]: { ok: 'rate limit disabled successfully' }, [ts]: { ok: 'rate limit disabled successfully' } });

    const active = queues as Record<string, Record<string, unknown>[]>;
    expect(Object.keys(active).sort()).toEqual([py, ts].sort());
    expect(active[py]!.map((q) => q.name)).toEqual(['celery']);
    // The same queue, described as the Python worker describes it.
    expect(active[ts]).toEqual(active[py]);
  });
});
