// Celery's remote control (`celery inspect` / `celery control`, app.control) answered by a
// Celeriac worker, asked by real Python Celery 5.7: on Redis (PUB/SUB pidbox, dbs 62-63) and on
// RabbitMQ (the celery.pidbox fanout exchange, vhost control-amqp).
import { execFile } from 'node:child_process';
import os from 'node:os';
import { celeryBin, INTEROP_DIR, testRedisUrl } from '../helpers/env';
import { pyClient, runPyJson } from '../helpers/python';
import { startCeleriacWorker } from '../helpers/celeriacWorker';
import type { ProcessHandle } from '../helpers/processes';
import { flushDb } from '../helpers/redis';
import { freshVhost } from '../helpers/rabbit';

const BROKER_DB = 62;
const BACKEND_DB = 63;

/**
 * Runs app.control.inspect(destination=[DEST], timeout=2).<method>(*args, **kwargs) for each of
 * CALLS (JSON [[method, kwargs, args?], ...]) and prints {method: reply}. With WAIT_PING it first
 * pings until the node answers (its pidbox subscription comes up just after `ready.`).
 */
const INSPECT = `
import json, os, time
from pyapp import app
dest = os.environ["DEST"]
if os.environ.get("WAIT_PING"):
    deadline = time.time() + 20
    while time.time() < deadline:
        if app.control.inspect(destination=[dest], timeout=0.5).ping():
            break
out = {}
for call in json.loads(os.environ["CALLS"]):
    method, kwargs, args = call[0], call[1], call[2] if len(call) > 2 else []
    insp = app.control.inspect(destination=[dest], timeout=2)
    out[method] = getattr(insp, method)(*args, **kwargs)
print(json.dumps(out, default=repr))
`;

type Replies = Record<string, Record<string, unknown> | null>;

function inspect(env: Record<string, string>, dest: string, calls: ([string, Record<string, unknown>] | [string, Record<string, unknown>, unknown[]])[], waitPing = false): Promise<Replies> {
  return runPyJson<Replies>(INSPECT, {
    env: { ...env, DEST: dest, CALLS: JSON.stringify(calls), ...(waitPing ? { WAIT_PING: '1' } : {}) },
    timeoutMs: 40_000,
  });
}

/** The venv's `celery` command, from tests/interop. */
function celery(env: Record<string, string>, args: string[]): Promise<{ stdout: string; stderr: string; code: number }> {
  return new Promise((resolve) => {
    execFile(
      celeryBin(),
      ['-A', 'pyapp', ...args],
      { cwd: INTEROP_DIR, env: { ...process.env, PYTHONPATH: INTEROP_DIR, PYTHONDONTWRITEBYTECODE: '1', ...env }, timeout: 30_000 },
      (err, stdout, stderr) => resolve({ stdout, stderr, code: err ? Number((err as { code?: number }).code ?? 1) : 0 }),
    );
  });
}

interface Info {
  id: string;
  name: string;
  args: unknown;
  hostname: string;
  time_start: number | null;
  acknowledged: boolean;
  worker_pid: number | null;
}

async function waitFor(what: string, fn: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** The process's exit, or null when it is still running after `ms`. */
async function exitWithin(handle: ProcessHandle, ms: number): Promise<Awaited<ProcessHandle['exited']> | null> {
  let timer: NodeJS.Timeout | undefined;
  const gaveUp = new Promise<null>((r) => (timer = setTimeout(() => r(null), ms)));
  try {
    return await Promise.race([handle.exited, gaveUp]);
  } finally {
    clearTimeout(timer);
  }
}

describe('remote control on Redis', () => {
  const hostname = `ctl-redis-${process.pid}@${os.hostname()}`;
  let env: Record<string, string>;
  let worker: ProcessHandle;

  beforeAll(async () => {
    await flushDb(BROKER_DB);
    await flushDb(BACKEND_DB);
    env = { BROKER_URL: testRedisUrl(BROKER_DB), RESULT_BACKEND: testRedisUrl(BACKEND_DB) };
    worker = await startCeleriacWorker({ brokerUrl: env.BROKER_URL!, backendUrl: env.RESULT_BACKEND, hostname, concurrency: 2 });
  });

  afterAll(async () => {
    await worker?.stop().catch(() => undefined);
  });

  it('inspect ping / registered / stats / active_queues / clock / revoked', async () => {
    const r = await inspect(
      env,
      hostname,
      [
        ['ping', {}],
        ['registered', {}],
        ['stats', {}],
        ['active_queues', {}],
        ['clock', {}],
        ['revoked', {}],
        ['conf', {}],
        ['report', {}],
      ],
      true,
    );
    expect(r.ping).toEqual({ [hostname]: { ok: 'pong' } });
    expect(r.registered![hostname]).toEqual(expect.arrayContaining(['demo.add', 'demo.sleep']));
    const stats = r.stats![hostname] as Record<string, Record<string, unknown>>;
    expect(stats.pool).toMatchObject({ 'max-concurrency': 2 });
    expect(stats.broker).toMatchObject({ transport: 'redis', hostname: '127.0.0.1' });
    expect(typeof stats.pid).toBe('number');
    expect(typeof stats.uptime).toBe('number');
    expect(stats.rusage).toHaveProperty('maxrss');
    const queues = r.active_queues![hostname] as { name: string; exchange: { name: string; type: string } }[];
    expect(queues).toEqual([expect.objectContaining({ name: 'celery', routing_key: 'celery', exchange: expect.objectContaining({ name: 'celery', type: 'direct' }) })]);
    expect(r.clock![hostname]).toEqual({ clock: expect.any(Number) });
    expect(r.revoked![hostname]).toEqual([]);
    expect(r.conf![hostname]).toBeInstanceOf(Object);
    expect((r.report![hostname] as { ok: string }).ok).toContain('celeriac');
  });

  it('`celery inspect ping` and `celery inspect registered` from the command line', async () => {
    const ping = await celery(env, ['inspect', 'ping', '-d', hostname, '--json', '--timeout', '3']);
    expect(ping.code).toBe(0);
    expect(JSON.parse(ping.stdout.trim().split('\n').pop()!)).toEqual({ [hostname]: { ok: 'pong' } });
    const reg = await celery(env, ['inspect', 'registered', '-d', hostname, '--timeout', '3']);
    expect(reg.code).toBe(0);
    expect(reg.stdout).toContain('demo.add');
  });

  it('active / scheduled / reserved / query_task show the tasks held; revoke discards a countdown task as REVOKED', async () => {
    const sent = await pyClient<{ results: { out: { id: string } }[] }>(
      {
        op: 'batch',
        commands: [
          { op: 'send', task: 'demo.sleep', args: [6] },
          { op: 'send', task: 'demo.add', args: [1, 2], options: { countdown: 30 } },
        ],
      },
      { env },
    );
    const [sleepId, laterId] = sent.results.map((x) => x.out.id) as [string, string];
    await worker.waitForOutput(`demo.sleep[${sleepId}] received`);
    let r: Replies = {};
    await waitFor('active and scheduled', async () => {
      r = await inspect(env, hostname, [
        ['active', {}],
        ['scheduled', {}],
        ['reserved', {}],
        ['query_task', {}, [sleepId, laterId]],
      ]);
      return (r.active?.[hostname] as Info[] | undefined)?.length === 1 && (r.scheduled?.[hostname] as unknown[] | undefined)?.length === 1;
    });
    const [active] = r.active![hostname] as Info[];
    expect(active).toMatchObject({ id: sleepId, name: 'demo.sleep', args: [6], hostname, acknowledged: true });
    expect(typeof active!.time_start).toBe('number');
    expect(typeof active!.worker_pid).toBe('number');
    const [scheduled] = r.scheduled![hostname] as { eta: string; priority: number; request: Info }[];
    expect(scheduled!.request).toMatchObject({ id: laterId, name: 'demo.add', args: [1, 2] });
    expect(Date.parse(scheduled!.eta)).toBeGreaterThan(Date.now());
    expect(r.reserved![hostname]).toEqual([]);
    expect(r.query_task![hostname]).toMatchObject({ [sleepId]: ['active', { id: sleepId }], [laterId]: ['scheduled', { id: laterId }] });

    // `celery control revoke <id>`: the countdown task is discarded and stored as REVOKED.
    const rev = await celery(env, ['control', 'revoke', laterId, '-d', hostname, '--timeout', '3']);
    expect(rev.code).toBe(0);
    expect(rev.stdout).toContain('flagged as revoked');
    await waitFor('REVOKED', async () => (await pyClient<{ state: string }>({ op: 'state', id: laterId }, { env })).state === 'REVOKED');
    const after = await inspect(env, hostname, [['scheduled', {}], ['revoked', {}]]);
    expect(after.scheduled![hostname]).toEqual([]);
    expect(after.revoked![hostname]).toContain(laterId);

    // revoke(terminate=True) aborts the running task's signal: REVOKED too.
    const term = await runPyJson<unknown>(
      `import json, os\nfrom pyapp import app\nprint(json.dumps(app.control.revoke(os.environ["ID"], terminate=True, reply=True, destination=[os.environ["DEST"]], timeout=2)))`,
      { env: { ...env, ID: sleepId, DEST: hostname } },
    );
    expect(term).toEqual([{ [hostname]: { ok: `terminate: ${sleepId}` } }]);
    await waitFor('terminated REVOKED', async () => (await pyClient<{ state: string }>({ op: 'state', id: sleepId }, { env })).state === 'REVOKED');
    expect(worker.output()).not.toContain(`demo.add[${laterId}] succeeded`);
  });

  it('a destination of another node is ignored; `celery control shutdown` stops the worker with exit code 0', async () => {
    const other = await inspect(env, 'nobody@nowhere', [['ping', {}]]);
    expect(other.ping).toBeNull();
    const res = await celery(env, ['control', 'shutdown', '-d', hostname, '--timeout', '2']);
    expect(res.code).toBe(0);
    const exit = await exitWithin(worker, 20_000);
    expect(exit).toEqual({ code: 0, signal: null });
  });
});

describe('remote control on RabbitMQ', () => {
  const hostname = `ctl-amqp-${process.pid}@${os.hostname()}`;
  let env: Record<string, string>;
  let worker: ProcessHandle;

  beforeAll(async () => {
    const url = await freshVhost('control-amqp');
    env = { BROKER_URL: url, RESULT_BACKEND: testRedisUrl(BACKEND_DB) };
    await flushDb(BACKEND_DB);
    worker = await startCeleriacWorker({ brokerUrl: url, backendUrl: env.RESULT_BACKEND, hostname, concurrency: 2 });
  });

  afterAll(async () => {
    await worker?.stop().catch(() => undefined);
  });

  it('inspect ping / registered / stats / active, revoke and shutdown', async () => {
    const r = await inspect(env, hostname, [['ping', {}], ['registered', {}], ['stats', {}]], true);
    expect(r.ping).toEqual({ [hostname]: { ok: 'pong' } });
    expect(r.registered![hostname]).toEqual(expect.arrayContaining(['demo.add']));
    expect((r.stats![hostname] as Record<string, Record<string, unknown>>).broker).toMatchObject({ transport: 'amqp' });

    const sent = await pyClient<{ results: { out: { id: string } }[] }>(
      {
        op: 'batch',
        commands: [
          { op: 'send', task: 'demo.sleep', args: [5] },
          { op: 'send', task: 'demo.add', args: [2, 2], options: { countdown: 30 } },
        ],
      },
      { env },
    );
    const [sleepId, laterId] = sent.results.map((x) => x.out.id) as [string, string];
    await worker.waitForOutput(`demo.add[${laterId}] received`);
    await waitFor('active', async () => {
      const a = await inspect(env, hostname, [['active', {}]]);
      return ((a.active?.[hostname] as Info[] | undefined) ?? []).some((i) => i.id === sleepId);
    });
    const rev = await celery(env, ['control', 'revoke', laterId, '-d', hostname, '--timeout', '3']);
    expect(rev.code).toBe(0);
    await waitFor('REVOKED', async () => (await pyClient<{ state: string }>({ op: 'state', id: laterId }, { env })).state === 'REVOKED');

    const res = await celery(env, ['control', 'shutdown', '-d', hostname, '--timeout', '2']);
    expect(res.code).toBe(0);
    const exit = await exitWithin(worker, 30_000);
    expect(exit).toEqual({ code: 0, signal: null });
  });
});
