// `celeriac worker --rq` against real Python rq 2.12 (JSONSerializer) on the run's redis-server:
// Python enqueues, Celeriac runs, Python reads everything back through rq's own API. Redis db 121.
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { testRedisUrl, testTmpDir } from '../helpers/env';
import { type ProcessHandle } from '../helpers/processes';
import { rqOps, startRqWorker } from '../helpers/rq';
import { runPython } from '../helpers/python';
import { flushDb, redisClient, type Redis } from '../helpers/redis';
import { celeriacCli } from '../helpers/celeriacWorker';
import type { WorkerRow } from '../../workers';

jest.setTimeout(180_000);

const DB = 121;
const url = testRedisUrl(DB);
const Q = 'job_queue_0';
const NAME = 'celeriac-rq-0';
let worker: ProcessHandle;
let tmp: string;
let redis: Redis;
let metricsPort: number;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

interface JobView {
  status: string;
  return_value: unknown;
  exc_string: string | null;
  exc_info: string | null;
  result_types: string[];
  worker_name: string;
  retries_left: number | null;
  ttl: number;
  results_ttl: number;
}
interface Registries {
  queued: string[];
  started: string[];
  finished: string[];
  failed: string[];
  deferred: string[];
  scheduled: string[];
}
interface WorkerView {
  name: string;
  state: string;
  queues: string[];
  pid: number;
  current_job: string | null;
  successful: number;
  failed: number;
  working_time: number;
  ttl: number;
  birth: boolean;
  last_heartbeat: boolean;
}

const enqueue = (func: string, args: unknown[], extra: Record<string, unknown> = {}): { op: string } & Record<string, unknown> => ({ op: 'enqueue', queue: Q, func, args, ...extra });
const waitFor = (id: string, statuses: string[]): { op: string } & Record<string, unknown> => ({ op: 'wait', id, statuses });

beforeAll(async () => {
  await flushDb(DB);
  tmp = testTmpDir('rq-worker');
  redis = redisClient(DB);
  metricsPort = await freePort();
  worker = await startRqWorker({ url, queues: [Q], name: NAME, extraArgs: ['--metrics-port', String(metricsPort)] });
});

afterAll(async () => {
  await worker?.stop();
  await redis?.quit();
});

test('a JSON job runs: return_value, finished registry, results stream, result_ttl', async () => {
  const [id] = await rqOps<[string]>(url, [enqueue('rqtasks.add', [2, 3], { result_ttl: 300 })]);
  const [, job, regs] = await rqOps<[string, JobView, Registries]>(url, [waitFor(id, ['finished']), { op: 'job', id }, { op: 'registries', queue: Q }]);
  expect(job.return_value).toBe(5);
  expect(job.result_types).toEqual(['SUCCESSFUL']);
  expect(job.worker_name).toBe(NAME);
  expect(job.ttl).toBeGreaterThan(0);
  expect(job.ttl).toBeLessThanOrEqual(300);
  expect(job.results_ttl).toBeLessThanOrEqual(300);
  expect(regs.finished).toContain(id);
  expect(regs.started).toEqual([]);
  expect(regs.queued).toEqual([]);
});

test('a failure lands in FailedJobRegistry with the exception text; Retry(max) re-runs it', async () => {
  const counter = path.join(tmp, 'flaky');
  const [failing, flaky, exhausted] = await rqOps<string[]>(url, [
    enqueue('rqtasks.fail', ['boom'], { failure_ttl: 1000 }),
    enqueue('rqtasks.flaky', [counter, 3], { retry: { max: 3 } }),
    enqueue('rqtasks.fail', ['again'], { retry: { max: 1 } }),
  ]);
  const out = await rqOps<[string, string, string, JobView, JobView, JobView, Registries]>(url, [
    waitFor(failing!, ['failed']),
    waitFor(flaky!, ['finished']),
    waitFor(exhausted!, ['failed']),
    { op: 'job', id: failing },
    { op: 'job', id: flaky },
    { op: 'job', id: exhausted },
    { op: 'registries', queue: Q },
  ]);
  const [, , , failed, retried, gaveUp, regs] = out;
  expect(failed.exc_string).toMatch(/^Traceback \(most recent call last\):\n[\s\S]*TypeError: boom\n$/);
  // rq 2.x keeps the text in the results stream only (the job is saved with include_result=False).
  expect(failed.exc_info).toBeNull();
  expect(failed.result_types).toEqual(['FAILED']);
  expect(failed.ttl).toBeLessThanOrEqual(1000);
  expect(retried.return_value).toBe(3);
  expect(retried.retries_left).toBe(1);
  expect(gaveUp.retries_left).toBe(0);
  expect(gaveUp.exc_string).toMatch(/TypeError: again\n$/);
  expect(regs.failed).toEqual(expect.arrayContaining([failing, exhausted]));
  expect(regs.finished).toContain(flaky);
});

test('Retry with an interval waits in the scheduled registry, then runs again', async () => {
  const counter = path.join(tmp, 'scheduled');
  // One Python process: the status is seen within the 3 s interval and the registries read
  // milliseconds after it ('$0' = the enqueued job's id).
  const [id, status, regs] = await rqOps<[string, string, Registries]>(url, [
    enqueue('rqtasks.flaky', [counter, 2], { retry: { max: 1, interval: 3 } }),
    waitFor('$0', ['scheduled', 'finished']),
    { op: 'registries', queue: Q },
  ]);
  expect(status).toBe('scheduled');
  expect(regs.scheduled).toContain(id);
  const [, job] = await rqOps<[string, JobView]>(url, [waitFor(id, ['finished']), { op: 'job', id }]);
  expect(job.return_value).toBe(2);
  expect(fs.readFileSync(counter, 'utf8')).toBe('2');
});

test('job_timeout fails the job with rq\'s JobTimeoutException', async () => {
  const [id] = await rqOps<[string]>(url, [enqueue('rqtasks.sleep', [60], { timeout: 1 })]);
  const [, job] = await rqOps<[string, JobView]>(url, [waitFor(id, ['failed']), { op: 'job', id }]);
  expect(job.exc_string).toMatch(/rq\.timeouts\.JobTimeoutException: Task exceeded maximum timeout value \(1 seconds\)\n$/);
});

test('dependents: deferred until the parent finishes; a failed parent releases only allow_failure ones', async () => {
  const marks = path.join(tmp, 'deps');
  // One request, so the dependents are deferred before either parent ends ('$N' = op N's job id).
  const [parent, child, badParent, blocked, tolerant] = await rqOps<string[]>(url, [
    enqueue('rqtasks.sleep', [1]),
    enqueue('rqtasks.mark', [marks, 'child'], { depends_on: ['$0'] }),
    enqueue('rqtasks.fail_after', [1, 'parent failed']),
    enqueue('rqtasks.mark', [marks, 'blocked'], { depends_on: ['$2'] }),
    enqueue('rqtasks.mark', [marks, 'tolerant'], { depends_on: ['$2'], allow_failure: true }),
  ]);
  expect(parent).toBeTruthy();
  const out = await rqOps<[string, string, string, JobView, Registries]>(url, [
    waitFor(child!, ['finished']),
    waitFor(tolerant!, ['finished']),
    waitFor(badParent!, ['failed']),
    { op: 'job', id: blocked },
    { op: 'registries', queue: Q },
  ]);
  expect(out[3].status).toBe('deferred');
  expect(out[4].deferred).toEqual([blocked]);
  expect(fs.readFileSync(marks, 'utf8').split('\n').filter(Boolean).sort()).toEqual(['child', 'tolerant']);
});

test('rq suspend idles the worker as `suspended`; at_front jobs run first after rq resume', async () => {
  const order = path.join(tmp, 'order');
  await rqOps(url, [{ op: 'suspend' }]);
  for (let i = 0; i < 100; i++) {
    const [[w]] = await rqOps<[WorkerView[]]>(url, [{ op: 'workers', queue: Q }]);
    if (w?.state === 'suspended') break;
  }
  const [a, b, c] = await rqOps<string[]>(url, [
    enqueue('rqtasks.mark', [order, 'a']),
    enqueue('rqtasks.mark', [order, 'b']),
    enqueue('rqtasks.mark', [order, 'c'], { at_front: true }),
    { op: 'workers', queue: Q },
  ]);
  await rqOps(url, [{ op: 'resume' }, waitFor(a!, ['finished']), waitFor(b!, ['finished']), waitFor(c!, ['finished'])]);
  expect(fs.readFileSync(order, 'utf8')).toBe('c\na\nb\n');
});

test('a pickled job (rq\'s default serializer) is refused into the failed registry, never run', async () => {
  const [id] = await rqOps<[string]>(url, [enqueue('rqtasks.add', [1, 1], { pickle: true })]);
  const [, job] = await rqOps<[string, JobView]>(url, [waitFor(id, ['failed']), { op: 'job', id }]);
  expect(job.exc_string).toMatch(/pickle-serialized .*JSONSerializer/);
  expect(job.return_value).toBeNull();
  expect(worker.output()).toMatch(new RegExp(`job ${id} refused: job data is pickle-serialized`));
});

test('a finished and a failed job leave the same keys and fields as a Python rq worker leaves', async () => {
  const PY = 'py_side';
  const ids = await rqOps<string[]>(url, [
    enqueue('rqtasks.add', [1, 2]),
    enqueue('rqtasks.fail', ['x'], { failure_ttl: 500 }),
    { op: 'enqueue', queue: PY, func: 'rqtasks.add', args: [1, 2] },
    { op: 'enqueue', queue: PY, func: 'rqtasks.fail', args: ['x'], failure_ttl: 500 },
  ]);
  await rqOps(url, [waitFor(ids[0]!, ['finished']), waitFor(ids[1]!, ['failed']), { op: 'work', queues: [PY] }]);
  const shape = async (id: string): Promise<{ job: string[]; result: string[]; keys: string[] }> => {
    const job = Object.keys(await redis.hgetall(`rq:job:${id}`)).sort();
    const [[, entry]] = (await redis.xrange(`rq:results:${id}`, '-', '+')) as [[string, string[]]];
    const keys = (await redis.keys(`*${id}*`)).map((k) => k.replace(id, 'ID')).sort();
    return { job, result: entry.filter((_, i) => i % 2 === 0).sort(), keys };
  };
  expect(await shape(ids[0]!)).toEqual(await shape(ids[2]!));
  expect(await shape(ids[1]!)).toEqual(await shape(ids[3]!));
  expect(await redis.zscore(`rq:finished:${Q}`, ids[0]!)).not.toBeNull();
  expect(await redis.zscore(`rq:failed:${Q}`, ids[1]!)).not.toBeNull();
});

test('Worker.all, `rq info` and --metrics-port show the worker with its state and counts; stop-job stops a running job', async () => {
  const [[w]] = await rqOps<[WorkerView[]]>(url, [{ op: 'workers' }]);
  expect(w).toMatchObject({ name: NAME, queues: [Q], pid: worker.pid, birth: true, last_heartbeat: true });
  expect(['idle', 'busy']).toContain(w!.state);
  expect(w!.successful).toBeGreaterThanOrEqual(8);
  expect(w!.failed).toBeGreaterThanOrEqual(6);
  expect(w!.working_time).toBeGreaterThan(0);
  expect(w!.ttl).toBeGreaterThan(0);
  expect(w!.ttl).toBeLessThanOrEqual(480);
  const info = await runPython(`import sys; from rq.cli import main; sys.argv = ['rq', 'info', '-u', ${JSON.stringify(url)}, '-W']; main()`);
  expect(info.stdout).toMatch(new RegExp(`${NAME}.*(idle|busy)`));
  const listed = await celeriacCli(['workers', 'list', '--json', '-b', url, '--timeout', '0.5']);
  expect(listed.code).toBe(0);
  const rows = JSON.parse(listed.stdout) as WorkerRow[];
  expect(rows.filter((r) => r.kind === 'rq')).toEqual([expect.objectContaining({ hostname: NAME, pid: worker.pid, uuid: null })]);
  expect(rows.find((r) => r.kind === 'rq')!.processed).toBe(w!.successful + w!.failed);

  const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
  expect(metrics).toMatch(new RegExp(`celeriac_tasks_succeeded_total\\{name="rqtasks.add",worker="${NAME}"\\} [1-9]`));
  expect(metrics).toMatch(/celeriac_tasks_failed_total\{name="rqtasks.fail",worker="[^"]+"\} [1-9]/);
  expect(metrics).toMatch(/celeriac_queue_depth\{queue="job_queue_0",worker="[^"]+"\} 0/);

  const [id] = await rqOps<[string]>(url, [enqueue('rqtasks.sleep', [60])]);
  const [, [busy]] = await rqOps<[string, WorkerView[]]>(url, [waitFor(id, ['started']), { op: 'workers' }]);
  expect(busy).toMatchObject({ state: 'busy', current_job: id });
  const [, , job] = await rqOps<[null, string, JobView]>(url, [{ op: 'stop_job', id }, waitFor(id, ['stopped']), { op: 'job', id }]);
  expect(job.exc_string).toBe('Job stopped by user, work-horse terminated.');
});

test('send_shutdown_command stops the worker warm: it leaves rq:workers', async () => {
  await rqOps(url, [{ op: 'shutdown', name: NAME }]);
  const exit = await worker.exited;
  expect(exit.code).toBe(0);
  const [all] = await rqOps<[WorkerView[]]>(url, [{ op: 'workers' }]);
  expect(all).toEqual([]);
});
