// `celeriac worker --rq` killed with -9 leaves its jobs where rq's own StartedJobRegistry.cleanup
// finds them; queues are taken in priority order; -P processes kills a job at job_timeout.
// Real Python rq 2.12 on the run's redis-server, db 122.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { testRedisUrl, testTmpDir } from '../helpers/env';
import { type ProcessHandle } from '../helpers/processes';
import { rqOps, startRqWorker } from '../helpers/rq';
import { flushDb, withRedis } from '../helpers/redis';
import { maintainQueues } from '../../workers/rq';

jest.setTimeout(180_000);

const DB = 122;
const url = testRedisUrl(DB);
let tmp: string;
let second: ProcessHandle | undefined;

interface JobView {
  status: string;
  return_value: unknown;
  exc_string: string | null;
  exc_info: string | null;
}
interface Registries {
  queued: string[];
  started: string[];
  failed: string[];
}

beforeAll(async () => {
  await flushDb(DB);
  tmp = testTmpDir('rq-recovery');
});

afterAll(async () => {
  await second?.stop();
});

test('kill -9 mid-job: rq cleanup fails the abandoned job, requeues the one with retries; a new worker runs it', async () => {
  const Q = 'crash';
  const first = await startRqWorker({ url, queues: [Q], name: 'celeriac-crash-1', concurrency: 2 });
  const [plain, retried] = await rqOps<string[]>(url, [
    { op: 'enqueue', queue: Q, func: 'rqtasks.hang_once', args: [path.join(tmp, 'plain')] },
    { op: 'enqueue', queue: Q, func: 'rqtasks.hang_once', args: [path.join(tmp, 'retried')], retry: { max: 1 } },
  ]);
  await rqOps(url, [{ op: 'wait', id: plain, statuses: ['started'] }, { op: 'wait', id: retried, statuses: ['started'] }]);
  first.kill('SIGKILL');
  await first.exited;

  const [before] = await rqOps<[Registries]>(url, [{ op: 'registries', queue: Q }]);
  expect(before.started.sort()).toEqual([plain, retried].sort());
  // The heartbeat TTL of a job with the default timeout is 90 s: clean up as if it had passed.
  const [, after, abandoned] = await rqOps<[null, Registries, JobView]>(url, [
    { op: 'cleanup', queue: Q, ahead: 200 },
    { op: 'registries', queue: Q },
    { op: 'job', id: plain },
  ]);
  expect(after.started).toEqual([]);
  expect(after.failed).toEqual([plain]);
  expect(after.queued).toEqual([retried]);
  expect(abandoned.status).toBe('failed');
  expect(abandoned.exc_string).toMatch(/Moved to FailedJobRegistry, due to AbandonedJobError/);

  second = await startRqWorker({ url, queues: [Q], name: 'celeriac-crash-2' });
  const [, rerun] = await rqOps<[string, JobView]>(url, [{ op: 'wait', id: retried, statuses: ['finished'] }, { op: 'job', id: retried }]);
  expect(rerun.return_value).toBe('second run');
  await second.stop();
  second = undefined;
});

test('several queues are taken in priority order; -P processes kills a CPU-bound job at job_timeout', async () => {
  const marks = path.join(tmp, 'order');
  const ids = await rqOps<string[]>(url, [
    { op: 'enqueue', queue: 'low', func: 'rqtasks.mark', args: [marks, 'low-1'] },
    { op: 'enqueue', queue: 'low', func: 'rqtasks.mark', args: [marks, 'low-2'] },
    { op: 'enqueue', queue: 'high', func: 'rqtasks.mark', args: [marks, 'high-1'] },
    { op: 'enqueue', queue: 'high', func: 'rqtasks.spin', args: [120], timeout: 2 },
  ]);
  second = await startRqWorker({ url, queues: ['high', 'low'], name: 'celeriac-prio', extraArgs: ['-P', 'processes'] });
  const out = await rqOps<unknown[]>(url, [...ids.map((id) => ({ op: 'wait', id, statuses: ['finished', 'failed'] })), { op: 'job', id: ids[3] }]);
  const spin = out[4] as JobView;
  expect(spin.status).toBe('failed');
  expect(spin.exc_string).toMatch(/JobTimeoutException: Task exceeded maximum timeout value \(2 seconds\)/);
  expect(readFileSync(marks, 'utf8')).toBe('high-1\nlow-1\nlow-2\n');
  // Idle on two queues the worker waits in BLPOP (rq's dequeue over several queues).
  const [, idle] = await rqOps<[string, string]>(url, [
    { op: 'enqueue', queue: 'low', func: 'rqtasks.mark', args: [marks, 'low-3'] },
    { op: 'wait', id: '$0', statuses: ['finished'] },
  ]);
  expect(idle).toBe('finished');
});

test('Celeriac\'s own maintenance does what rq\'s cleanup does: abandoned and stuck-in-intermediate jobs fail', async () => {
  const Q = 'crash2';
  const doomed = await startRqWorker({ url, queues: [Q], name: 'celeriac-crash-3' });
  const [abandonedId, stuckId] = await rqOps<string[]>(url, [
    { op: 'enqueue', queue: Q, func: 'rqtasks.hang_once', args: [path.join(tmp, 'maint')] },
    { op: 'enqueue', queue: 'elsewhere', func: 'rqtasks.add', args: [1, 2] },
  ]);
  await rqOps(url, [{ op: 'wait', id: abandonedId, statuses: ['started'] }]);
  doomed.kill('SIGKILL');
  await doomed.exited;
  const cleaned = await withRedis(DB, async (r) => {
    // A job a worker moved into the intermediate list and died before recording its start.
    await r.lrem('rq:queue:elsewhere', 1, stuckId!);
    await r.hset(`rq:job:${stuckId}`, 'origin', Q);
    await r.rpush(`rq:queue:${Q}:intermediate`, stuckId!);
    const now = await maintainQueues(r, [Q], 'cleaner');
    const later = await maintainQueues(r, [Q], 'cleaner', new Date(Date.now() + 200_000));
    return [now, later];
  });
  expect(cleaned).toEqual([[], expect.arrayContaining([abandonedId, stuckId])]);
  const [regs, abandoned, stuck] = await rqOps<[Registries, JobView, JobView]>(url, [
    { op: 'registries', queue: Q },
    { op: 'job', id: abandonedId },
    { op: 'job', id: stuckId },
  ]);
  expect(regs.started).toEqual([]);
  expect(regs.failed.sort()).toEqual([abandonedId, stuckId].sort());
  expect(abandoned.exc_string).toMatch(/^Moved to FailedJobRegistry, due to AbandonedJobError, at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}\+00:00$/);
  expect(stuck.exc_string).toBe('Job was stuck in intermediate queue.');
});
