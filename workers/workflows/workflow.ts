/**
 * sca-rhythm's Workflow (sca_rhythm/__init__.py, 0.6.15) in TypeScript: the same `workflow_meta`
 * documents, the same task messages (kwargs workflow_id/step/app_id, priority = position clamped
 * to 0-9), the same status rules, so Python's Workflow, Bioloop's API and this class can act on
 * one workflow interchangeably.
 *
 * Where sca-rhythm reads the whole document, changes it and `$set`s all of it back, this class
 * writes only the fields it changes (`$set` of dotted paths, `$push` of a task run): two writers
 * (a step starting while the API pauses) then do not undo each other. Documents look the same.
 *
 * resume() is guarded twice: sca-rhythm's `resume_lock` field, and before sending a unique-key
 * insert into `workflow_resume_locks` keyed by (workflow, step, last task run). That insert is
 * atomic on MongoDB and on FerretDB, where a find-then-update is not: two concurrent resumes send
 * the step once.
 */
import { randomUUID } from 'node:crypto';
import type { Collection, Db } from 'mongodb';
import { ControlClient, MongoBackend, PythonError, type Celeriac } from '../index';
import type {
  EmbellishedWorkflow,
  PauseResult,
  ResumeResult,
  TaskInstance,
  TaskRun,
  WorkflowDocument,
  WorkflowStep,
  WorkflowStepSpec,
} from './types';

export const WORKFLOW_COLLECTION = 'workflow_meta';
export const RESUME_LOCK_COLLECTION = 'workflow_resume_locks';

interface ResumeLockDocument {
  _id: string;
  workflow_id: string;
  step: string;
  created_at: Date;
}

/** sca_rhythm.WFNotFound, so Python sees the same exception type when a step's workflow is gone. */
export class WorkflowNotFound extends PythonError {
  constructor(id: string) {
    super('WFNotFound', `Workflow with id ${id} is not found`, 'sca_rhythm');
  }
}

/** What sca-rhythm's _validate_args asserts (it raises AssertionError with these messages). */
export function validateSteps(steps: unknown, name: unknown, appId: unknown): asserts steps is WorkflowStepSpec[] {
  const fail = (msg: string): never => {
    throw new PythonError('AssertionError', msg);
  };
  if (!Array.isArray(steps) || steps.length === 0) fail('steps is empty');
  (steps as unknown[]).forEach((step, i) => {
    if (typeof step !== 'object' || step === null) fail(`step[${i}] is not an object`);
    const s = step as Record<string, unknown>;
    for (const attr of ['name', 'task']) {
      if (!(attr in s)) fail(`step[${i}] does not have "${attr}" key`);
      if (typeof s[attr] !== 'string') fail(`step[${i}]["${attr}"] is not a string`);
      if ((s[attr] as string).length === 0) fail(`step[${i}]["${attr}"] is an empty string`);
    }
    if (s.queue !== undefined && (typeof s.queue !== 'string' || s.queue.length === 0)) fail(`step[${i}]["queue"] is not a non-empty string`);
    if (s.kwargs !== undefined && s.kwargs !== null && (typeof s.kwargs !== 'object' || Array.isArray(s.kwargs))) fail(`step[${i}]["kwargs"] is not an object`);
    if (s.priority !== undefined && !Number.isInteger(s.priority)) fail(`step[${i}]["priority"] is not an integer`);
  });
  const names = (steps as WorkflowStepSpec[]).map((s) => s.name);
  const dups = [...new Set(names.filter((n, i) => names.indexOf(n) !== i))];
  if (dups.length) fail(`Steps with duplicate names: ${JSON.stringify(dups)}`);
  if (!name) fail('name cannot be empty');
  if (!appId) fail('app_id cannot be empty');
}

/** The mongodb result backend of `app`: workflows live in its database, as in sca-rhythm. */
export async function mongoBackendOf(app: Celeriac): Promise<MongoBackend> {
  const backend = await app.backend();
  if (!(backend instanceof MongoBackend)) {
    throw new Error(`workflows need the mongodb result backend (result_backend = mongodb://host:port/db), as sca-rhythm does; this app has ${backend ? backend.kind : 'none'}`);
  }
  return backend;
}

const SUCCESS = 'SUCCESS';
const FAILURE = 'FAILURE';
const REVOKED = 'REVOKED';
const PENDING = 'PENDING';
const STARTED = 'STARTED';

export class Workflow {
  private constructor(
    private readonly app: Celeriac,
    private readonly backend: MongoBackend,
    private readonly db: Db,
    private doc: WorkflowDocument,
  ) {}

  /** Validate and insert a new workflow (status PENDING); start() sends its first step. */
  static async create(app: Celeriac, spec: { steps: WorkflowStepSpec[]; name: string; app_id: string; description?: string | null }): Promise<Workflow> {
    validateSteps(spec.steps, spec.name, spec.app_id);
    const backend = await mongoBackendOf(app);
    const db = await backend.database();
    const doc: WorkflowDocument = {
      _id: randomUUID(),
      created_at: new Date(),
      // Absent, not null, for keys left undefined (sca-rhythm's step.get('queue') etc. see no key).
      steps: spec.steps.map((s) => Object.fromEntries(Object.entries(s).filter(([, v]) => v !== undefined)) as WorkflowStepSpec),
      name: spec.name,
      app_id: spec.app_id,
      description: spec.description ?? null,
      _status: PENDING,
    };
    await db.collection<WorkflowDocument>(WORKFLOW_COLLECTION).insertOne(doc);
    return new Workflow(app, backend, db, doc);
  }

  /** An existing workflow; WorkflowNotFound (Python's WFNotFound) when there is none. */
  static async load(app: Celeriac, id: string): Promise<Workflow> {
    const backend = await mongoBackendOf(app);
    const db = await backend.database();
    const doc = await db.collection<WorkflowDocument>(WORKFLOW_COLLECTION).findOne({ _id: id });
    if (!doc) throw new WorkflowNotFound(id);
    return new Workflow(app, backend, db, doc);
  }

  get id(): string {
    return this.doc._id;
  }

  /** The document as last read or written. */
  get document(): Readonly<WorkflowDocument> {
    return this.doc;
  }

  private get col(): Collection<WorkflowDocument> {
    return this.db.collection<WorkflowDocument>(WORKFLOW_COLLECTION);
  }

  async refresh(): Promise<this> {
    const doc = await this.col.findOne({ _id: this.doc._id });
    if (!doc) throw new WorkflowNotFound(this.doc._id);
    this.doc = doc;
    return this;
  }

  /** sca-rhythm's wf_send_task: kwargs precedence workflow_id/step/app_id > given > step's own. */
  private async sendStep(step: WorkflowStep, position: number, args: readonly unknown[], kwargs: Record<string, unknown> = {}, taskId?: string): Promise<string> {
    const taskKwargs = { ...(step.kwargs ?? {}), ...kwargs, workflow_id: this.doc._id, step: step.name, app_id: this.doc.app_id };
    const priority = Math.max(0, Math.min(step.priority ?? position, 9));
    const result = await this.app.sendTask(step.task, args, taskKwargs, { queue: step.queue, priority, id: taskId });
    return result.id;
  }

  /** `$set` these fields and updated_at; `keepRun` also puts a step's task run back (see onStepSuccess). */
  private async set(fields: Record<string, unknown>, keepRun?: { stepName: string; run: TaskRun }): Promise<void> {
    const updatedAt = new Date();
    const update: Record<string, unknown> = { $set: { ...fields, updated_at: updatedAt } };
    // $addToSet: a no-op when the run is there (the same task_id and date_start, as we pushed it).
    if (keepRun) update.$addToSet = { [`steps.${this.stepIndex(keepRun.stepName)}.task_runs`]: keepRun.run };
    await this.col.updateOne({ _id: this.doc._id }, update);
    this.doc.updated_at = updatedAt;
  }

  /** Send the first step's task with these arguments. */
  async start(args: readonly unknown[] = [], kwargs: Record<string, unknown> = {}): Promise<string> {
    return this.sendStep(this.doc.steps[0]!, 1, args, kwargs);
  }

  /** The status of a step: that of its last task run in the result backend, else PENDING. */
  async stepStatus(step: WorkflowStep): Promise<string> {
    const last = step.task_runs?.at(-1);
    if (!last) return PENDING;
    return (await this.backend.get(last.task_id))?.status ?? PENDING;
  }

  /** The first step that has not succeeded, with its status; null when all have. */
  async pendingStep(): Promise<{ index: number; status: string } | null> {
    const statuses = await Promise.all(this.doc.steps.map((s) => this.stepStatus(s)));
    const index = statuses.findIndex((s) => s !== SUCCESS);
    return index < 0 ? null : { index, status: statuses[index]! };
  }

  /** sca-rhythm's get_workflow_status. */
  async status(): Promise<string> {
    const pending = await this.pendingStep();
    if (!pending) return SUCCESS;
    if (pending.index === 0 && pending.status === PENDING) return PENDING;
    return [STARTED, 'RETRY', PENDING].includes(pending.status) ? STARTED : pending.status;
  }

  /** Revoke (terminate) the running step's last task; `_status` REVOKED. */
  async pause(opts: { refresh?: boolean } = {}): Promise<PauseResult> {
    if (opts.refresh ?? true) await this.refresh();
    const pending = await this.pendingStep();
    if (pending && pending.status !== SUCCESS && pending.status !== FAILURE) {
      const step = this.doc.steps[pending.index]!;
      const last = step.task_runs?.at(-1);
      if (last) {
        // Celery's app.control.revoke(task_id, terminate=True): a broadcast nobody replies to.
        await new ControlClient(await this.app.transport()).cast('revoke', { task_id: last.task_id, terminate: true, signal: 'SIGTERM' });
        this.doc._status = REVOKED;
        await this.set({ _status: REVOKED });
        return { paused: true, revoked_step: { task_id: last.task_id, task: step.task, name: step.name } };
      }
    }
    return { paused: false };
  }

  /**
   * Re-send the first unfinished step if it FAILED or was REVOKED (or always, with force), with
   * the args of its last run (or `args` when it never ran). Once per failure: see the header.
   */
  async resume(opts: { force?: boolean; args?: unknown[]; refresh?: boolean } = {}): Promise<ResumeResult> {
    if (opts.refresh ?? true) await this.refresh();
    if (this.doc.resume_lock) return { resumed: false };
    const pending = await this.pendingStep();
    if (!pending || !([FAILURE, REVOKED].includes(pending.status) || opts.force)) return { resumed: false };
    const step = this.doc.steps[pending.index]!;
    const lastRun = step.task_runs?.at(-1);
    const instance = lastRun ? await this.taskInstance(lastRun) : null;
    const args = instance && Array.isArray(instance.args) ? (instance.args as unknown[]) : opts.args;
    if (!args) {
      throw new PythonError('AssertionError', instance
        ? `step "${step.name}": its last task ${instance._id} has no stored args (the workers need result_extended = True) and no args are provided`
        : 'no args are provided and there is no last run task');
    }
    if (!(await this.claimResume(step.name, lastRun?.task_id ?? 'never-run'))) return { resumed: false };
    // Locked before the send (sca-rhythm locks after): a step that starts at once clears the lock
    // instead of finding none and leaving ours set for good.
    const lockedAt = new Date();
    await this.set({ resume_lock: lockedAt });
    this.doc.resume_lock = lockedAt;
    try {
      await this.sendStep(step, pending.index + 1, args);
    } catch (err) {
      await this.set({ resume_lock: null });
      throw err;
    }
    return { resumed: true, restarted_step: { name: step.name, task: step.task } };
  }

  /** The unique-key insert that lets one resume of this (step, last run) through. */
  private async claimResume(stepName: string, lastTaskId: string): Promise<boolean> {
    const lock: ResumeLockDocument = { _id: `${this.doc._id}:${stepName}:${lastTaskId}`, workflow_id: this.doc._id, step: stepName, created_at: new Date() };
    try {
      await this.db.collection<ResumeLockDocument>(RESUME_LOCK_COLLECTION).insertOne(lock);
      return true;
    } catch (err) {
      if ((err as { code?: number }).code === 11000) return false;
      throw err;
    }
  }

  // ---- the worker's side (sca-rhythm's WorkflowTask hooks call these) ----

  private stepIndex(name: string): number {
    const index = this.doc.steps.findIndex((s) => s.name === name);
    if (index < 0) throw new PythonError('KeyError', `workflow ${this.doc._id} has no step named ${JSON.stringify(name)}`);
    return index;
  }

  /** Before a step's task runs: record the run (once per task id), STARTED, resume unlocked. Returns the run. */
  async onStepStart(stepName: string, taskId: string): Promise<TaskRun> {
    const index = this.stepIndex(stepName);
    const step = this.doc.steps[index]!;
    const fields: Record<string, unknown> = { _status: STARTED };
    if ('resume_lock' in this.doc) fields.resume_lock = null;
    const update: Record<string, unknown> = { $set: { ...fields, updated_at: new Date() } };
    let run = (step.task_runs ?? []).find((r) => r.task_id === taskId);
    if (!run) {
      run = { date_start: new Date(), task_id: taskId };
      update.$push = { [`steps.${index}.task_runs`]: run };
      (step.task_runs ??= []).push(run);
    }
    await this.col.updateOne({ _id: this.doc._id }, update);
    Object.assign(this.doc, fields);
    return run;
  }

  /**
   * Put this task's run back if a concurrent whole-document write removed it. sca-rhythm's
   * on_step_success sends the next step and only then `$set`s its whole (older) copy of the
   * document: when the next step starts fast (a Celeriac worker does), its recorded run is
   * overwritten. The worker calls this a moment after the start; a step that ends sooner puts its
   * run back in its final write instead (onStepSuccess, onStepFailure: `$addToSet`, no read).
   */
  async ensureTaskRun(stepName: string, taskId: string, dateStart: Date): Promise<boolean> {
    await this.refresh();
    const index = this.stepIndex(stepName);
    if ((this.doc.steps[index]!.task_runs ?? []).some((r) => r.task_id === taskId)) return false;
    const run: TaskRun = { date_start: dateStart, task_id: taskId };
    await this.col.updateOne({ _id: this.doc._id }, { $push: { [`steps.${index}.task_runs`]: run } as never });
    (this.doc.steps[index]!.task_runs ??= []).push(run);
    return true;
  }

  /**
   * After a step succeeded: send the next step with retval[0], or mark the workflow SUCCESS.
   * Returns the id of the next step's task (`nextTaskId` when given; undefined after the last step).
   *
   * Before the send, the document is written (sca-rhythm writes after): on FerretDB an update is a
   * read-modify-write of the whole document, so a write of ours racing the next step's start could
   * drop the run that start records. `run`, this step's recorded run, is put back in that write
   * (`$addToSet`, no read) in case a Python worker's late whole-document write erased it (see
   * ensureTaskRun).
   *
   * `recordedAfterLastWrite`: this step's run was recorded after every write of the previous step
   * (the worker handed the workflow from one step to the next, see workflowTask), so nothing can
   * have erased it: a non-final step then only sends, and the next step's start writes updated_at.
   */
  async onStepSuccess(retval: unknown, stepName: string, opts: { run?: TaskRun; nextTaskId?: string; recordedAfterLastWrite?: boolean } = {}): Promise<string | undefined> {
    const { run, nextTaskId } = opts;
    const keep = run && { stepName, run };
    const next = this.stepIndex(stepName) + 1;
    if (next >= this.doc.steps.length) {
      this.doc._status = SUCCESS;
      await this.set({ _status: SUCCESS }, keep);
      return undefined;
    }
    if (!(Array.isArray(retval) || typeof retval === 'string') || retval.length === 0) {
      await this.set({}, keep);
      throw new PythonError('TypeError', `step "${stepName}" returned ${JSON.stringify(retval)}: a workflow step must return a non-empty list whose first item is the next step's argument`);
    }
    if (!opts.recordedAfterLastWrite) await this.set({}, keep);
    return this.sendStep(this.doc.steps[next]!, next + 1, [retval[0]], {}, nextTaskId);
  }

  /** After a step failed: `_status` FAILURE (and this step's run re-asserted, as on success). */
  async onStepFailure(keepRun?: { stepName: string; run: TaskRun }): Promise<void> {
    this.doc._status = FAILURE;
    await this.set({ _status: FAILURE }, keepRun);
  }

  // ---- the view ----

  /** sca-rhythm's get_task_instance: the celery_taskmeta document, result JSON-decoded, date_start added. */
  async taskInstance(run: Partial<TaskRun> & { task_id: string }): Promise<TaskInstance | null> {
    const col = await this.backend.taskCollection();
    const doc = (await col.findOne({ _id: run.task_id })) as Record<string, unknown> | null;
    if (!doc) return null;
    const instance = { ...doc, date_start: run.date_start ?? null } as TaskInstance;
    if (typeof instance.result === 'string') {
      try {
        instance.result = JSON.parse(instance.result);
      } catch {
        // sca-rhythm prints and keeps the string
      }
    }
    return instance;
  }

  /** sca-rhythm's get_embellished_workflow: status, steps done, each step's status and task runs. */
  async view(opts: { lastTaskRun?: boolean; prevTaskRuns?: boolean; refresh?: boolean } = {}): Promise<EmbellishedWorkflow> {
    if (opts.refresh ?? true) await this.refresh();
    const [status, pending] = await Promise.all([this.status(), this.pendingStep()]);
    const steps = await Promise.all(this.doc.steps.map(async (step) => {
      const runs = step.task_runs ?? [];
      return {
        name: step.name,
        task: step.task,
        status: await this.stepStatus(step),
        ...((opts.lastTaskRun ?? true) ? { last_task_run: runs.length ? await this.taskInstance(runs.at(-1)!) : null } : {}),
        ...(opts.prevTaskRuns ? { prev_task_runs: await Promise.all(runs.slice(0, -1).map((r) => this.taskInstance(r))) } : {}),
      };
    }));
    return {
      id: this.doc._id,
      name: this.doc.name ?? null,
      app_id: this.doc.app_id ?? null,
      description: this.doc.description ?? null,
      created_at: this.doc.created_at ?? null,
      updated_at: this.doc.updated_at ?? null,
      status,
      steps_done: pending ? pending.index : steps.length,
      total_steps: steps.length,
      steps,
      resume_lock: this.doc.resume_lock ?? null,
    };
  }
}
