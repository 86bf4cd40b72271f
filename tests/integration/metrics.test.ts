// `celeriac worker --metrics-port <port>`: the Prometheus endpoint of a real worker process, fed
// by tasks real Python Celery sends (Redis db 29, broker and results). Counts, runtimes, and the
// depth of the consumed queue while messages wait in it.
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import { testRedisUrl } from '../helpers/env';
import { pyClient } from '../helpers/python';
import { startCeleriacWorker } from '../helpers/celeriacWorker';
import type { ProcessHandle } from '../helpers/processes';
import { flushDb } from '../helpers/redis';
import { runAll, waitFor } from '../helpers/control';

const DB = 29;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

function get(port: number, path: string): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path }, (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body }));
      })
      .on('error', reject);
  });
}

/** A series key: the metric name, then its labels sorted by name (prom-client's order varies by type). */
function key(metric: string, labels: Record<string, string>): string {
  const pairs = Object.entries(labels).sort(([a], [b]) => a.localeCompare(b));
  return `${metric}{${pairs.map(([k, v]) => `${k}="${v}"`).join(',')}}`;
}

/** Prometheus text format -> value of each series, by key(). */
function parse(text: string): Map<string, number> {
  const series = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{([^}]*)\})? (\S+)$/.exec(line);
    if (!m) continue;
    const labels = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((l) => [l[1]!, l[2]!]));
    series.set(key(m[1]!, labels), Number(m[3]));
  }
  return series;
}

describe('the Prometheus /metrics endpoint of a worker', () => {
  const hostname = `metrics-${process.pid}@${os.hostname()}`;
  const env = { BROKER_URL: '', RESULT_BACKEND: '' };
  let port: number;
  let worker: ProcessHandle;

  const scrape = async (): Promise<Map<string, number>> => {
    const res = await get(port, '/metrics');
    expect(res.status).toBe(200);
    return parse(res.body);
  };
  /** One series' value: every series carries worker="<node name>", plus `label` when given. */
  const value = (m: Map<string, number>, metric: string, label?: [string, string]): number | undefined =>
    m.get(key(metric, { worker: hostname, ...(label ? { [label[0]]: label[1] } : {}) }));

  beforeAll(async () => {
    await flushDb(DB);
    env.BROKER_URL = testRedisUrl(DB);
    env.RESULT_BACKEND = testRedisUrl(DB);
    port = await freePort();
    worker = await startCeleriacWorker({
      brokerUrl: env.BROKER_URL,
      backendUrl: env.RESULT_BACKEND,
      hostname,
      concurrency: 1,
      extraArgs: ['--metrics-port', String(port), '--prefetch-multiplier', '1'],
    });
  });

  afterAll(async () => {
    await worker?.stop().catch(() => undefined);
  });

  it('counts received, succeeded, failed and retried tasks by name, with their runtimes', async () => {
    const { outcomes } = await runAll(env, [
      ['demo.add', [1, 1]],
      ['demo.add', [1, 2]],
      ['demo.add', [1, 3]],
      ['demo.fail', ['boom']],
      ['demo.fail', ['bang']],
      ['demo.retry', [2]],
    ]);
    expect(outcomes.map((o) => o.state)).toEqual(['SUCCESS', 'SUCCESS', 'SUCCESS', 'FAILURE', 'FAILURE', 'SUCCESS']);

    const res = await get(port, '/metrics');
    expect(res.type).toMatch(/^text\/plain; version=0\.0\.4/);
    const m = parse(res.body);
    const byName = (metric: string, name: string): number | undefined => value(m, metric, ['name', name]);
    // demo.retry(2) arrives three times: the first run and two retries.
    expect(['demo.add', 'demo.fail', 'demo.retry'].map((n) => byName('celeriac_tasks_received_total', n))).toEqual([3, 2, 3]);
    expect(byName('celeriac_tasks_succeeded_total', 'demo.add')).toBe(3);
    expect(byName('celeriac_tasks_succeeded_total', 'demo.retry')).toBe(1);
    expect(byName('celeriac_tasks_failed_total', 'demo.fail')).toBe(2);
    expect(byName('celeriac_tasks_failed_total', 'demo.add')).toBeUndefined();
    expect(byName('celeriac_tasks_retried_total', 'demo.retry')).toBe(2);
    expect(['demo.add', 'demo.fail', 'demo.retry'].map((n) => byName('celeriac_task_runtime_seconds_count', n))).toEqual([3, 2, 3]);
    expect(m.get(key('celeriac_task_runtime_seconds_bucket', { le: '+Inf', name: 'demo.add', worker: hostname }))).toBe(3);
    expect(byName('celeriac_task_runtime_seconds_sum', 'demo.add')).toBeLessThan(1);
    expect(value(m, 'celeriac_worker_concurrency')).toBe(1);
    expect(value(m, 'celeriac_queue_depth', ['queue', 'celery'])).toBe(0);
    // Node's process metrics come along, under the same prefix.
    expect(value(m, 'celeriac_process_resident_memory_bytes')).toBeGreaterThan(0);
    expect((await get(port, '/elsewhere')).status).toBe(404);
  });

  it('shows the running and reserved tasks, and the messages left waiting in the queue', async () => {
    // One slot, prefetch 1: the sleep runs, one add is reserved, three wait in Redis.
    const sent = await pyClient<{ results: { out: { id: string } }[] }>(
      {
        op: 'batch',
        commands: [
          { op: 'send', task: 'demo.sleep', args: [3] },
          ...[1, 2, 3, 4].map((i) => ({ op: 'send', task: 'demo.add', args: [i, 0] })),
        ],
      },
      { env },
    );
    let m = new Map<string, number>();
    await waitFor('one active, one reserved', async () => {
      m = await scrape();
      return value(m, 'celeriac_tasks_active') === 1 && value(m, 'celeriac_tasks_reserved') === 1;
    });
    expect(value(m, 'celeriac_queue_depth', ['queue', 'celery'])).toBe(3);

    const last = sent.results[4]!.out.id;
    expect(await pyClient<{ state: string }>({ op: 'result', id: last, timeout: 20 }, { env })).toMatchObject({ state: 'SUCCESS' });
    m = await scrape();
    expect(value(m, 'celeriac_queue_depth', ['queue', 'celery'])).toBe(0);
    expect(value(m, 'celeriac_tasks_active')).toBe(0);
    expect(value(m, 'celeriac_tasks_reserved')).toBe(0);
    expect(value(m, 'celeriac_tasks_succeeded_total', ['name', 'demo.sleep'])).toBe(1);
    expect(value(m, 'celeriac_tasks_received_total', ['name', 'demo.add'])).toBe(7);
  });

  it('a port already taken stops the start before anything is consumed', async () => {
    const start = startCeleriacWorker({ brokerUrl: env.BROKER_URL, backendUrl: env.RESULT_BACKEND, hostname: `taken-${hostname}`, extraArgs: ['--metrics-port', String(port)] });
    await expect(start).rejects.toThrow(/exited \(\{"code":1,.*metrics endpoint could not start on port \d+: listen EADDRINUSE/s);
  });
});
