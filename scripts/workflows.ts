/**
 * `celeriac workflows list | show | pause | resume | start | demo`: sca-rhythm workflows from the
 * shell (the same documents Python's Workflow and Bioloop's API use). `--json` prints machine
 * output; without it, a short table or summary.
 *
 * Workflows live in the mongodb result backend's database. When the configured result_backend
 * is not mongodb://, these commands use `mongo.url` (CELERIAC_MONGO_URL) as the result backend,
 * so `npm run mongo` then `celeriac workflows demo` works with no other setup.
 */
import os from 'node:os';
import type { Command } from 'commander';
import {
  appFromConfig,
  commonOverrides,
  loadOrExit,
  loggerFor,
  Worker,
  type Celeriac,
  type CommonFlags,
} from '../workers';
import type { Config } from '../config/types';
import { listWorkflows, registeredWorkflow, startRegistered, Workflow, type EmbellishedWorkflow, type WorkflowDocument } from '../workers/workflows';
import { register as registerDemo } from '../workers/tasks/workflowDemo';

interface WorkflowFlags extends CommonFlags {
  json?: boolean;
}

function configFor(flags: CommonFlags): Config {
  const config = loadOrExit(commonOverrides(flags));
  if (/^mongodb(\+srv)?:\/\//i.test(config.celery.result_backend)) return config;
  return loadOrExit(commonOverrides({ ...flags, resultBackend: config.mongo.url }));
}

async function withApp<T>(flags: WorkflowFlags, fn: (app: Celeriac, config: Config) => Promise<T>): Promise<void> {
  const config = configFor(flags);
  const app = appFromConfig(config, loggerFor(config, 'workflows', 'stderr'));
  try {
    const out = await fn(app, config);
    if (out !== undefined) process.stdout.write(typeof out === 'string' ? `${out}\n` : `${JSON.stringify(out, null, 2)}\n`);
  } finally {
    await app.close();
  }
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n');
}

function listText(docs: WorkflowDocument[]): string {
  if (docs.length === 0) return 'no workflows';
  return table([['ID', 'NAME', 'STATUS', 'STEPS', 'CREATED', 'UPDATED'], ...docs.map((d) => [
    d._id, d.name, d._status, String(d.steps.length), d.created_at.toISOString(), d.updated_at?.toISOString() ?? '-',
  ])]);
}

function viewText(v: EmbellishedWorkflow): string {
  const head = `${v.name} ${v.id}: ${v.status}, ${v.steps_done}/${v.total_steps} steps done${v.resume_lock ? ' (resume pending)' : ''}`;
  const rows = v.steps.map((s) => {
    const run = s.last_task_run;
    const info = run?.status === 'STARTED' && run.result && typeof run.result === 'object' ? (run.result as { fraction_done?: number | null }) : null;
    const pct = typeof info?.fraction_done === 'number' ? ` ${Math.round(info.fraction_done * 100)}%` : '';
    return [s.name, s.task, `${s.status}${pct}`, run ? String(run._id) : '-'];
  });
  return `${head}\n${table([['STEP', 'TASK', 'STATUS', 'LAST TASK'], ...rows])}`;
}

const json = (flags: WorkflowFlags, value: unknown, text: () => string): unknown => (flags.json ? value : text());

function parseArgs(raw: string | undefined, positional: string[]): unknown[] | undefined {
  if (raw === undefined) return positional.length ? positional : undefined;
  const parsed: unknown = JSON.parse(raw);
  if (!Array.isArray(parsed)) throw new Error('--args must be a JSON list');
  return parsed;
}

/** `demo`: a worker in this process for the demo's queue, the demo workflow, its view until it ends. */
async function runDemo(flags: WorkflowFlags): Promise<void> {
  const config = configFor(flags);
  const app = appFromConfig(config, loggerFor(config, 'workflows', 'stderr'));
  registerDemo(app);
  const spec = registeredWorkflow(config, 'demo');
  const queues = [...new Set(spec.steps.map((s) => s.queue!))];
  const worker = new Worker(app, { hostname: `workflow-demo@${os.hostname()}`, queues, concurrency: 1, prefetchMultiplier: 1, accept: ['json'] });
  try {
    await worker.start();
    const wf = await startRegistered(app, config, 'demo', ['demo']);
    let last = '';
    for (;;) {
      const view = await wf.view();
      const text = flags.json ? JSON.stringify(view) : viewText(view);
      if (text !== last) process.stdout.write(`${text}\n${flags.json ? '' : '\n'}`);
      last = text;
      if (!['PENDING', 'STARTED'].includes(view.status)) break;
      await new Promise((r) => setTimeout(r, 500));
    }
  } finally {
    await worker.shutdown('warm');
    await worker.close(); // closes the app too
  }
}

export function addWorkflowsCommand(program: Command): void {
  const cmd = program.command('workflows').description('sca-rhythm workflows in MongoDB: list, show, pause, resume, start, demo');
  const common = (c: Command): Command =>
    c.option('--json', 'print JSON').option('-b, --broker <url>', 'broker URL').option('--result-backend <url>', 'mongodb:// result backend (default: mongo.url)').option('-l, --loglevel <level>', 'log level', 'warning');
  const run = <A extends unknown[]>(fn: (...a: A) => Promise<void>) => async (...a: A): Promise<void> => {
    try {
      await fn(...a);
    } catch (err) {
      process.stderr.write(`workflows: ${(err as Error).name}: ${(err as Error).message}\n`);
      process.exit(1);
    }
  };

  common(cmd.command('list').description('workflows, newest first'))
    .option('--status <status>', 'only this recorded status (PENDING, STARTED, REVOKED, FAILURE, SUCCESS)')
    .option('--name <name>', 'only workflows of this name')
    .option('--limit <n>', 'at most this many', '50')
    .action(run(async (flags: WorkflowFlags & { status?: string; name?: string; limit: string }) =>
      withApp(flags, async (app) => {
        const docs = await listWorkflows(app, { status: flags.status?.toUpperCase(), name: flags.name, limit: Number(flags.limit) });
        return json(flags, docs, () => listText(docs));
      })));

  common(cmd.command('show <id>').description("a workflow's embellished view (status, steps, last task runs)"))
    .option('--prev', 'include previous task runs of each step')
    .action(run(async (id: string, flags: WorkflowFlags & { prev?: boolean }) =>
      withApp(flags, async (app) => {
        const view = await (await Workflow.load(app, id)).view({ prevTaskRuns: Boolean(flags.prev) });
        return json(flags, view, () => viewText(view));
      })));

  common(cmd.command('pause <id>').description('revoke (terminate) the running step'))
    .action(run(async (id: string, flags: WorkflowFlags) =>
      withApp(flags, async (app) => {
        const out = await (await Workflow.load(app, id)).pause();
        return json(flags, out, () => (out.paused ? `paused: revoked ${out.revoked_step!.name} (${out.revoked_step!.task_id})` : 'not paused: no running step'));
      })));

  common(cmd.command('resume <id> [args...]').description('re-send the failed or revoked step with its last args'))
    .option('--force', 'resume even if the step did not fail')
    .option('--args <json>', "args for a step that never ran, as a JSON list")
    .action(run(async (id: string, positional: string[], flags: WorkflowFlags & { force?: boolean; args?: string }) =>
      withApp(flags, async (app) => {
        const out = await (await Workflow.load(app, id)).resume({ force: Boolean(flags.force), args: parseArgs(flags.args, positional) });
        return json(flags, out, () => (out.resumed ? `resumed: ${out.restarted_step!.name} (${out.restarted_step!.task})` : 'not resumed: nothing failed or revoked, or a resume is pending'));
      })));

  common(cmd.command('start <name> [args...]').description('create and start a workflow of the registry (workflows.registry) with these args'))
    .option('--args <json>', 'args as a JSON list (instead of strings)')
    .action(run(async (name: string, positional: string[], flags: WorkflowFlags & { args?: string }) =>
      withApp(flags, async (app, config) => {
        const wf = await startRegistered(app, config, name, parseArgs(flags.args, positional) ?? []);
        return json(flags, { id: wf.id, name }, () => wf.id);
      })));

  common(cmd.command('demo').description('run the demo workflow here (a worker in this process) and show its view until it ends'))
    .action(run(runDemo));
}
