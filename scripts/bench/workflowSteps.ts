/**
 * The step-to-step part of `--suite workflows`: how long a workflow waits between two steps, on
 * Celeriac (TS `Workflow` + `workflowTask`) against sca-rhythm 0.6.15 (`Workflow` +
 * `WorkflowTask`) on Python Celery prefork, same private redis-server (broker), same FerretDB
 * (mongodb:// result backend, where both keep `workflow_meta`), same run.
 *
 * Each workflow has STEPS no-op steps (wf.step / pywf.step from tests/interop: they return
 * [value + '>' + step]), created and started by the TS Workflow for both contenders (the steps'
 * workers make every transition). Workflows run one at a time, alternating contenders (Celeriac, Python,
 * Celeriac, ...), so neither queues behind the other and load drift hits both alike; the first
 * `warmup` of each are not counted. A transition's overhead is the next step's recorded start
 * (`task_runs[0].date_start` in workflow_meta, written by before_start on the worker that runs it)
 * minus the previous step's `date_done` in celery_taskmeta (its SUCCESS stored; on_success then
 * sends the next step). Both are BSON dates: millisecond resolution.
 */
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { MongoClient, type Db } from 'mongodb';
import { Celeriac } from '../../workers';
import { Workflow } from '../../workers/workflows';
import { ROOT, cleanEnv, freePort, log, logWorkerOutput, percentile, sleep, start, stop, type Proc } from './common';
import { PrivateRedis } from './privateRedis';
import { renderTable } from './peers';

export interface WorkflowBenchOptions {
  python: string;
  tempDir: string;
  /** Counted workflows per contender. */
  workflows: number;
  warmup: number;
  steps: number;
}

const INTEROP = join(ROOT, 'tests', 'interop');
const MONGO_SERVER = join(ROOT, '.cache', 'mongo-server', 'mongo-server');
const QUEUE = { celeriac: 'wfbench-celeriac', python: 'wfbench-python' } as const;
type ContenderId = keyof typeof QUEUE;

async function waitFor(p: Proc, ready: RegExp, what: string, timeoutMs = 90_000): Promise<void> {
  const t0 = performance.now();
  while (!ready.test(p.output())) {
    if (p.exited) throw new Error(`${what} exited:\n${p.output().slice(-3000)}`);
    if (performance.now() - t0 > timeoutMs) throw new Error(`${what} not ready after ${timeoutMs / 1000} s:\n${p.output().slice(-3000)}`);
    await sleep(50);
  }
}

async function startMongoServer(dir: string): Promise<{ proc: Proc; url: string }> {
  const port = await freePort();
  const proc = start('mongo-server', MONGO_SERVER, ['-port', String(port), '-dir', join(dir, 'mongo')]);
  await waitFor(proc, /^ready /m, `mongo-server (${MONGO_SERVER}; \`bash scripts/mongo-server/build.sh\` builds it)`, 30_000);
  return { proc, url: `mongodb://127.0.0.1:${port}/wfbench` };
}

function startWorkers(python: string, brokerUrl: string, mongoUrl: string): Proc[] {
  const env = { ...cleanEnv(), BROKER_URL: brokerUrl, RESULT_BACKEND: mongoUrl };
  const celeriac = start('celeriac', process.execPath, [
    '-r', 'tsx/cjs', join(ROOT, 'scripts', 'celeriac.ts'), 'worker', '-b', brokerUrl, '--result-backend', mongoUrl, '-A', 'tests/interop/workflow_tasks.ts',
    '-Q', QUEUE.celeriac, '-c', '2', '-l', 'info', '-n', 'wfbench-celeriac@%h', '--without-heartbeat',
  ], { env: { ...env, APP_ENV: 'development', CELERIAC_RESULT_EXTENDED: 'true' } });
  const prefork = start('celery', join(python, '..', 'celery'), [
    '-A', 'pywf', 'worker', '-P', 'prefork', '-c', '2', '-Q', QUEUE.python, '-l', 'info', '-n', 'wfbench-python@%h',
    '--without-mingle', '--without-gossip', '--without-heartbeat',
  ], { cwd: INTEROP, env: { ...env, PYTHONPATH: INTEROP, PYTHONUNBUFFERED: '1', PYTHONDONTWRITEBYTECODE: '1' } });
  return [celeriac, prefork];
}

async function untilDone(db: Db, id: string, timeoutMs = 120_000): Promise<void> {
  const t0 = performance.now();
  for (;;) {
    const doc = await db.collection<{ _id: string; _status?: string }>('workflow_meta').findOne({ _id: id }, { projection: { _status: 1 } });
    if (doc?._status === 'SUCCESS') return;
    if (doc?._status === 'FAILURE' || doc?._status === 'REVOKED') throw new Error(`workflow ${id}: ${doc._status}`);
    if (performance.now() - t0 > timeoutMs) throw new Error(`workflow ${id}: not done after ${timeoutMs / 1000} s (status ${doc?._status ?? 'no document'})`);
    await sleep(100);
  }
}

/** Celery's mongodb backend stores a BSON date; a string is Python's isoformat() of a UTC instant. */
const ms = (d: Date | string): number => (d instanceof Date ? d.getTime() : Date.parse(/[zZ]|[+-]\d\d:?\d\d$/.test(d) ? d : `${d}Z`));

/**
 * The transition overheads (ms) of one finished workflow, and how many transitions could not be
 * measured: a step whose recorded run is missing (sca-rhythm's on_step_success writes its whole,
 * older copy of the document after sending the next step, which can erase the run the next step
 * just recorded; see Workflow.ensureTaskRun) has no date_start.
 */
async function transitions(db: Db, id: string): Promise<{ overheads: number[]; lost: number }> {
  const wf = await db.collection<{ _id: string; steps: { task_runs?: { task_id: string; date_start: Date }[] }[] }>('workflow_meta').findOne({ _id: id });
  const runs = (wf?.steps ?? []).map((s) => (s.task_runs?.length === 1 ? s.task_runs[0]! : null));
  const ids = runs.flatMap((r) => (r ? [r.task_id] : []));
  const metas = await db.collection<{ _id: string; date_done: Date | string | null }>('celery_taskmeta').find({ _id: { $in: ids } }).toArray();
  const done = new Map(metas.map((m) => [m._id, m.date_done]));
  const overheads: number[] = [];
  let lost = 0;
  for (let i = 1; i < runs.length; i++) {
    const [prev, next] = [runs[i - 1], runs[i]];
    const end = prev ? done.get(prev.task_id) : null;
    if (next && end) overheads.push(ms(next.date_start) - ms(end));
    else lost += 1;
  }
  return { overheads, lost };
}

/** Median ms of `fn` over n calls. */
async function medianMs(n: number, fn: (i: number) => Promise<unknown>): Promise<string> {
  const xs: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await fn(i);
    xs.push(performance.now() - t0);
  }
  return stats(xs).p50.toFixed(1);
}

/** One line: the FerretDB operations of a transition, timed from the bench (20 each, medians). */
async function ferretCosts(db: Db, workflowId: string): Promise<string> {
  type Meta = { _id: string; status: string };
  const metas = db.collection<Meta>('celery_taskmeta');
  const workflows = db.collection<{ _id: string; updated_at?: Date }>('workflow_meta');
  const [nMeta, nWorkflows] = await Promise.all([metas.countDocuments(), workflows.countDocuments()]);
  const scratch = (kind: string, i: number): Meta => ({ _id: `wfbench-scratch-${kind}-${i}`, status: 'SUCCESS' });
  const find = await medianMs(20, () => workflows.findOne({ _id: workflowId }));
  const insert = await medianMs(20, (i) => metas.insertOne(scratch('insert', i)));
  const replace = await medianMs(20, (i) => metas.replaceOne({ _id: scratch('replace', i)._id }, scratch('replace', i), { upsert: true }));
  const update = await medianMs(20, () => workflows.updateOne({ _id: workflowId }, { $set: { updated_at: new Date() } }));
  return `FerretDB now (celery_taskmeta ${nMeta} documents, workflow_meta ${nWorkflows}), median of 20 from the bench: findOne by _id ${find} ms; ` +
    `insertOne ${insert} ms (Celeriac's first write of a result); replaceOne upsert by _id ${replace} ms (Celery's result write); ` +
    `updateOne of a workflow ${update} ms (a run recorded, a step finished)`;
}

function stats(xs: number[]): { n: number; p10: number; p50: number; p90: number; max: number } {
  const s = [...xs].sort((a, b) => a - b);
  return { n: s.length, p10: percentile(s, 10), p50: percentile(s, 50), p90: percentile(s, 90), max: s.at(-1) ?? NaN };
}

export async function runWorkflowStepsBench(opts: WorkflowBenchOptions): Promise<string> {
  const redis = await PrivateRedis.start(join(opts.tempDir, 'redis'));
  const procs: Proc[] = [];
  let mongo: MongoClient | undefined;
  let app: Celeriac | undefined;
  try {
    const server = await startMongoServer(opts.tempDir);
    procs.push(server.proc);
    const brokerUrl = redis.url(0);
    const workers = startWorkers(opts.python, brokerUrl, server.url);
    procs.push(...workers);
    await Promise.all([waitFor(workers[0]!, /ready\./, 'Celeriac worker'), waitFor(workers[1]!, /\bready\.\s*$/m, 'Celery prefork worker')]);
    mongo = await MongoClient.connect(server.url);
    const db = mongo.db();
    app = new Celeriac({ brokerUrl, resultBackend: server.url, resultExtended: true });
    // Both contenders' workflows are created and started here with the TS Workflow (the same
    // workflow_meta document sca-rhythm writes; tests/integration/workflows.test.ts drives Python
    // WorkflowTask workers with it): every transition is then made by the workers alone, and no
    // Python client process starts up on the 2 cores while a Python workflow runs.
    const runOne = async (id: ContenderId, value: string): Promise<string> => {
      const task = id === 'celeriac' ? 'wf.step' : 'pywf.step';
      const steps = Array.from({ length: opts.steps }, (_, i) => ({ name: `s${i + 1}`, task, queue: QUEUE[id] }));
      const wf = await Workflow.create(app!, { name: 'wfbench', app_id: 'wfbench', steps });
      await wf.start([value]);
      return wf.id;
    };
    const samples: Record<ContenderId, number[]> = { celeriac: [], python: [] };
    const lost: Record<ContenderId, number> = { celeriac: 0, python: 0 };
    const total = opts.warmup + opts.workflows;
    const loadAtStart = loadavg()[0]!.toFixed(1);
    let lastWorkflowId = '';
    log(`workflows: ${total} x ${opts.steps}-step workflow per contender (${opts.warmup} warm-up), one at a time, alternating`);
    for (let i = 0; i < total; i++) {
      for (const id of ['celeriac', 'python'] as const) {
        const wfId = await runOne(id, `${id}${i}`);
        lastWorkflowId = wfId;
        await untilDone(db, wfId);
        if (i < opts.warmup) continue;
        const t = await transitions(db, wfId);
        samples[id].push(...t.overheads);
        lost[id] += t.lost;
      }
    }
    // Context for the reading: what the writes on a transition's path cost on this FerretDB, now,
    // at the collections' final sizes (FerretDB 1.24 runs updates and replaces as collection scans).
    const ferret = await ferretCosts(db, lastWorkflowId);
    const c = stats(samples.celeriac);
    const p = stats(samples.python);
    const row = (label: string, s: ReturnType<typeof stats>, unmeasured: number): string[] => [label, String(s.n), String(unmeasured), String(s.p10), String(s.p50), String(s.p90), String(s.max)];
    const ratio = (a: number, b: number): string => (b > 0 ? (a / b).toFixed(2) : 'n/a');
    const met = c.p50 <= p.p50 / 2;
    return [
      `\nstep-to-step overhead, ${opts.steps}-step workflows of no-op steps, ${opts.workflows} per contender (+${opts.warmup} warm-up), one at a time, alternating;` +
        ` next step's task_runs.date_start minus the previous step's date_done (ms, BSON dates: 1 ms resolution), both workers -c 2, same redis-server and FerretDB; ` +
        `load average ${loadAtStart} at the start, ${loadavg()[0]!.toFixed(1)} at the end`,
      ...renderTable(['contender', 'transitions', 'run record lost', 'p10 ms', 'median ms', 'p90 ms', 'max ms'], [
        row('Celeriac (Workflow + workflowTask)', c, lost.celeriac),
        row('sca-rhythm 0.6.15 on Celery prefork', p, lost.python),
      ], new Set([0])),
      ferret,
      `Celeriac / Python: median ${ratio(c.p50, p.p50)}, p90 ${ratio(c.p90, p.p90)} (target: median at most 0.5: ${met ? 'MET' : 'NOT MET'})`,
      '',
    ].join('\n');
  } finally {
    await app?.close().catch(() => undefined);
    await mongo?.close().catch(() => undefined);
    for (const p of procs.reverse()) {
      await stop(p, 10_000);
      if (p.name !== 'mongo-server') logWorkerOutput(p);
    }
    await redis.stop();
  }
}
