/**
 * Workflows (workers/workflows) against the real sca-rhythm 0.6.15, on Redis and the run's
 * FerretDB with the mongodb result backend, in both Python venvs: .venv-interop (sca-rhythm
 * --no-deps next to Celery 5.7) and .venv-sca (Celery 5.2.7, as Bioloop runs it).
 *   - Python's Workflow runs a workflow whose steps all run on Celeriac, and one alternating
 *     Python WorkflowTask and Celeriac steps; the TS Workflow drives Python WorkflowTask workers.
 *   - pause during a long step (progress visible to Python), resume from Python or TS;
 *     a failing step, then resume; two concurrent TS resumes send the step once.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { MongoClient } from 'mongodb';
import { INTEROP_DIR, pythonBin, scaPythonBin, testMongoUrl, testRedisUrl, testTmpDir } from '../helpers/env';
import { startProcess, type ProcessHandle } from '../helpers/processes';
import { startCeleriacWorker } from '../helpers/celeriacWorker';
import { flushDb } from '../helpers/redis';
import { Celeriac } from '../../workers';
import { Workflow, type EmbellishedWorkflow, type WorkflowDocument } from '../../workers/workflows';

jest.setTimeout(240_000);

const PY_QUEUE = 'py';

function pyRun<T>(python: string, env: Record<string, string>, command: object): Promise<T> {
  return new Promise((resolve, reject) => {
    const child = spawn(python, [path.join(INTEROP_DIR, 'pywf_client.py')], {
      cwd: INTEROP_DIR,
      env: { ...process.env, ...env, PYTHONPATH: INTEROP_DIR, PYTHONDONTWRITEBYTECODE: '1' },
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      const last = out.trim().split('\n').at(-1) ?? '';
      if (code !== 0) return reject(new Error(`pywf_client ${JSON.stringify(command)} exited ${code}\n${out}\n${err}`));
      resolve(JSON.parse(last) as T);
    });
    child.stdin.end(JSON.stringify(command));
  });
}

async function until<T>(what: string, probe: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 90_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: T | undefined;
  while (Date.now() < deadline) {
    last = await probe();
    if (ok(last)) return last;
    await new Promise((r) => setTimeout(r, 300));
  }
  throw new Error(`${what}: not reached in ${timeoutMs} ms; last: ${JSON.stringify(last)}`);
}

describe.each([
  ['.venv-interop (Celery 5.7)', 'interop', () => pythonBin()],
  ['.venv-sca (Celery 5.2.7)', 'sca', () => scaPythonBin()],
])('sca-rhythm in %s', (_label, tag, python) => {
  const redisDb = tag === 'sca' ? 75 : 74;
  const mongoUrl = testMongoUrl(`workflows_${tag}`);
  const brokerUrl = testRedisUrl(redisDb);
  const env = { BROKER_URL: brokerUrl, RESULT_BACKEND: mongoUrl };
  const dir = testTmpDir(`workflows-${tag}`);
  const procs: ProcessHandle[] = [];
  let app: Celeriac;
  let mongo: MongoClient;

  const py = <T>(command: object): Promise<T> => pyRun<T>(python(), env, command);
  const tsView = async (id: string): Promise<EmbellishedWorkflow> => (await Workflow.load(app, id)).view({ prevTaskRuns: true });
  const doc = (id: string): Promise<WorkflowDocument | null> => mongo.db().collection<WorkflowDocument>('workflow_meta').findOne({ _id: id });
  const ended = (id: string, status = 'SUCCESS'): Promise<EmbellishedWorkflow> => until(`workflow ${id} ${status}`, () => tsView(id), (v) => v.status === status);

  beforeAll(async () => {
    await flushDb(redisDb);
    mongo = await MongoClient.connect(mongoUrl);
    await mongo.db().dropDatabase();
    const celeryBin = path.join(path.dirname(python()), 'celery');
    const pyWorker = startProcess(celeryBin, ['-A', 'pywf', 'worker', '--loglevel', 'INFO', '--pool', 'prefork', '--concurrency', '2', '-Q', PY_QUEUE,
      '--hostname', `pywf-${tag}-${process.pid}@%h`, '--without-mingle', '--without-gossip', '--without-heartbeat'], {
      cwd: INTEROP_DIR,
      env: { ...env, PYTHONPATH: INTEROP_DIR, PYTHONUNBUFFERED: '1', PYTHONDONTWRITEBYTECODE: '1' },
      readyPattern: /\bready\.\s*$/m,
      timeoutMs: 60_000,
    });
    procs.push(pyWorker);
    const [ts] = await Promise.all([
      startCeleriacWorker({ brokerUrl, backendUrl: mongoUrl, concurrency: 2, app: 'tests/interop/workflow_tasks.ts', env: { CELERIAC_RESULT_EXTENDED: 'true' } }),
      pyWorker.waitReady(),
    ]);
    procs.push(ts);
    app = new Celeriac({ brokerUrl, resultBackend: mongoUrl, resultExtended: true });
  });

  afterAll(async () => {
    await app?.close();
    await mongo?.close();
    await Promise.all(procs.map((p) => p.stop()));
  });

  test('Python Workflow, every step on Celeriac: SUCCESS with the documents sca-rhythm expects', async () => {
    const steps = ['a', 'b', 'c'].map((name) => ({ name, task: 'wf.step' }));
    const { id } = await py<{ id: string }>({ op: 'create_start', steps, name: 'all-celeriac', app_id: 'test', args: ['x'] });
    await ended(id);
    const view = await py<EmbellishedWorkflow & { _status: string }>({ op: 'view', id });
    expect(view).toMatchObject({ id, name: 'all-celeriac', app_id: 'test', status: 'SUCCESS', _status: 'SUCCESS', steps_done: 3, total_steps: 3, resume_lock: null });
    expect(view.steps.map((s) => [s.name, s.status, s.last_task_run?.result])).toEqual([['a', 'SUCCESS', ['x>a']], ['b', 'SUCCESS', ['x>a>b']], ['c', 'SUCCESS', ['x>a>b>c']]]);
    const stored = await doc(id);
    for (const step of stored!.steps) {
      expect(step.task_runs).toHaveLength(1);
      expect(step.task_runs![0]!.date_start).toBeInstanceOf(Date);
    }
    // The step task got sca-rhythm's kwargs and priority (position, clamped to 0-9).
    const last = view.steps[2]!.last_task_run!;
    expect(last).toMatchObject({ name: 'wf.step', args: ['x>a>b'], kwargs: { workflow_id: id, step: 'c', app_id: 'test' } });
  });

  test('Python Workflow alternating Python WorkflowTask and Celeriac steps', async () => {
    const steps = [
      { name: 's1', task: 'wf.step' },
      { name: 's2', task: 'pywf.step', queue: PY_QUEUE },
      { name: 's3', task: 'wf.step' },
      { name: 's4', task: 'pywf.step', queue: PY_QUEUE },
    ];
    const { id } = await py<{ id: string }>({ op: 'create_start', steps, name: 'alternating', app_id: 'test', args: ['y'] });
    const view = await ended(id);
    expect(view.steps.map((s) => s.last_task_run?.worker)).toEqual([expect.stringMatching(/^celeriac/), expect.stringMatching(/^pywf/), expect.stringMatching(/^celeriac/), expect.stringMatching(/^pywf/)]);
    expect(view.steps[3]!.last_task_run?.result).toEqual(['y>s1>s2>s3>s4']);
    expect((await doc(id))?._status).toBe('SUCCESS');
  });

  test('the TS Workflow drives Python WorkflowTask workers; Python sees the same view', async () => {
    const wf = await Workflow.create(app, { name: 'ts-driven', app_id: 'test', steps: ['p1', 'p2', 'p3'].map((name) => ({ name, task: 'pywf.step', queue: PY_QUEUE })) });
    expect(await wf.status()).toBe('PENDING');
    await wf.start(['z']);
    const ours = await ended(wf.id);
    const theirs = await py<EmbellishedWorkflow & { _status: string }>({ op: 'view', id: wf.id });
    expect(theirs).toMatchObject({ status: 'SUCCESS', _status: 'SUCCESS', steps_done: 3, total_steps: 3 });
    expect(theirs.steps.map((s) => [s.name, s.status])).toEqual(ours.steps.map((s) => [s.name, s.status]));
    expect(ours.steps[2]!.last_task_run?.result).toEqual(['z>p1>p2>p3']);
  });

  test('pause during a long Celeriac step (progress visible to Python), resume from Python', async () => {
    const release = path.join(dir, `release-${Date.now()}`);
    const wf = await Workflow.create(app, { name: 'pause-ts', app_id: 'test', steps: [
      { name: 'first', task: 'pywf.step', queue: PY_QUEUE },
      { name: 'long', task: 'wf.slow', kwargs: { release } },
      { name: 'last', task: 'wf.step' },
    ] });
    await wf.start(['p']);
    const running = await until('long step reports progress', async () => {
      const d = await doc(wf.id);
      const run = d?.steps[1]?.task_runs?.[0];
      return run ? py<{ state: string; info: Record<string, unknown> | null }>({ op: 'info', task_id: run.task_id }) : null;
    }, (v) => v?.state === 'STARTED' && typeof v.info?.fraction_done === 'number').catch((err: Error) => {
      throw new Error(`${err.message}\n${procs.map((p) => p.output().slice(-4000)).join('\n----\n')}`);
    });
    expect(running!.info).toMatchObject({ name: 'slow', total: 300, units: 'ticks', done: expect.any(Number), time_remaining_sec: expect.any(Number) });
    expect(Object.keys(running!.info!).sort()).toEqual(['avg_rate', 'done', 'fraction_done', 'name', 'time_remaining_sec', 'total', 'units', 'wt_avg_rate']);

    const paused = await wf.pause();
    expect(paused).toMatchObject({ paused: true, revoked_step: { name: 'long', task: 'wf.slow' } });
    await ended(wf.id, 'REVOKED');
    expect((await doc(wf.id))?._status).toBe('REVOKED');

    fs.writeFileSync(release, '');
    expect(await py({ op: 'resume', id: wf.id })).toEqual({ resumed: true, restarted_step: { name: 'long', task: 'wf.slow' } });
    const view = await ended(wf.id);
    expect(view.steps[1]!.prev_task_runs).toHaveLength(1);
    expect(view.steps[1]!.prev_task_runs![0]).toMatchObject({ status: 'REVOKED' });
    expect(view.steps[2]!.last_task_run?.result).toEqual(['p>first>long>last']);
  });

  test('pause during a long Python step, resume from TS', async () => {
    const release = path.join(dir, `release-py-${Date.now()}`);
    const wf = await Workflow.create(app, { name: 'pause-py', app_id: 'test', steps: [
      { name: 'first', task: 'wf.step' },
      { name: 'long', task: 'pywf.slow', queue: PY_QUEUE, kwargs: { release } },
    ] });
    await wf.start(['q']);
    await until('python long step started', () => doc(wf.id), (d) => d?._status === 'STARTED' && (d.steps[1]?.task_runs?.length ?? 0) === 1).catch((err: Error) => {
      throw new Error(`${err.message}\n${procs.map((p) => p.output().slice(-3000)).join('\n----\n')}`);
    });
    await until('python long step running', () => wf.view(), (v) => v.steps[1]!.status === 'STARTED');
    expect(await py({ op: 'pause', id: wf.id })).toMatchObject({ paused: true, revoked_step: { name: 'long' } });
    await ended(wf.id, 'REVOKED');
    fs.writeFileSync(release, '');
    expect(await wf.resume()).toEqual({ resumed: true, restarted_step: { name: 'long', task: 'pywf.slow' } });
    const view = await ended(wf.id);
    expect(view.steps[1]!.last_task_run?.result).toEqual(['q>first>long']);
  });

  test('a failing step marks the workflow FAILURE; resume re-sends it once, even when two resumes race', async () => {
    const marker = path.join(dir, `fail-${Date.now()}`);
    fs.writeFileSync(marker, '');
    const wf = await Workflow.create(app, { name: 'flaky', app_id: 'test', steps: [
      { name: 'one', task: 'wf.step' },
      { name: 'two', task: tag === 'sca' ? 'pywf.flaky' : 'wf.flaky', queue: tag === 'sca' ? PY_QUEUE : undefined, kwargs: { fail_if_exists: marker } },
      { name: 'three', task: 'wf.step' },
    ] });
    await wf.start(['f']);
    const failed = await ended(wf.id, 'FAILURE');
    expect(failed.steps[1]!.last_task_run).toMatchObject({ status: 'FAILURE' });
    expect((await doc(wf.id))?._status).toBe('FAILURE');
    fs.unlinkSync(marker);

    // Two callers (two apps, as two API processes) resume at once: one send.
    const other = new Celeriac({ brokerUrl, resultBackend: mongoUrl });
    try {
      const [a, b] = await Promise.all([(await Workflow.load(app, wf.id)).resume(), (await Workflow.load(other, wf.id)).resume()]);
      expect([a.resumed, b.resumed].sort()).toEqual([false, true]);
    } finally {
      await other.close();
    }
    const view = await ended(wf.id);
    expect(view.steps[2]!.last_task_run?.result).toEqual(['f>one>two>three']);
    const stored = await doc(wf.id);
    expect(stored!.steps[1]!.task_runs).toHaveLength(2);
    expect(stored!.resume_lock).toBeNull();
    // Already running again: a third resume does nothing.
    expect(await wf.resume()).toEqual({ resumed: false });
  });
});
