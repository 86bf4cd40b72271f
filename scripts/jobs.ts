/**
 * `celeriac jobs list [--limit N] [--status S] [--json]` and `celeriac jobs show <uuid> [--json]`:
 * the climate job log (MongoDB) from the shell.
 */
import type { Command } from 'commander';
import { loadOrExit } from '../workers';
import { openJobContext, type JobContext } from '../workers/jobs/context';
import type { JobDocument, JobStatus } from '../workers/jobs/log';

const STATUSES: readonly JobStatus[] = ['Waiting_To_Start', 'In_Progress', 'Processing_Complete'];

async function withLog<T>(fn: (ctx: JobContext) => Promise<T>): Promise<T> {
  const ctx = await openJobContext(loadOrExit({}), { maxAttempts: 1 });
  try {
    return await fn(ctx);
  } finally {
    await ctx.close();
  }
}

export function jobRow(j: JobDocument): string {
  const state = j.is_errored ? 'ERROR' : j.status;
  const r = j.request;
  return [j.uuid, j.created_at.toISOString(), state.padEnd(19), String(j.progress).padStart(4), `dt=${r.datatype}`, `op=${r.operationtype}`, `${r.begintime}-${r.endtime}`, j.worker ?? '-'].join('  ');
}

export function jobDetails(j: JobDocument): string {
  const lines = [
    `uuid:       ${j.uuid}`,
    `created:    ${j.created_at.toISOString()}`,
    `status:     ${j.status}${j.is_errored ? ' (errored)' : ''}`,
    `progress:   ${j.progress}`,
    `worker:     ${j.worker ?? '-'}`,
    `request:    datatype ${j.request.datatype}, operationtype ${j.request.operationtype}, ${j.request.begintime} to ${j.request.endtime}${j.request.from_ui ? ', from UI' : ''}`,
    `geometry:   ${JSON.stringify(j.request.geometry)}`,
    ...j.attempts.map((a) => `attempt ${a.attempt}:  ${a.worker} from ${a.started_at.toISOString()}${a.finished_at ? ` to ${a.finished_at.toISOString()}` : ' (did not finish)'}`),
    ...Object.entries(j.results).map(([k, v]) => `${k.padEnd(11)} ${String(v)}`),
    ...j.errors.map((e) => `error:      ${e}`),
    ...j.warnings.map((w) => `warning:    ${w}`),
  ];
  return `${lines.join('\n')}\n`;
}

export function addJobsCommand(program: Command): void {
  const jobs = program.command('jobs').description('The climate job log (MongoDB: mongo.url)');
  jobs
    .command('list')
    .description('Newest jobs first')
    .option('--limit <n>', 'how many', '20')
    .option('--status <status>', `only ${STATUSES.join(', ')}`)
    .option('--json', 'one JSON document per line')
    .action(async (flags: { limit: string; status?: string; json?: boolean }) => {
      const limit = Number(flags.limit);
      if (!(Number.isInteger(limit) && limit > 0)) throw new Error(`--limit must be a whole number > 0, got ${flags.limit}`);
      if (flags.status !== undefined && !STATUSES.includes(flags.status as JobStatus)) throw new Error(`--status must be one of ${STATUSES.join(', ')}`);
      const rows = await withLog((ctx) => ctx.log.list(limit, flags.status as JobStatus | undefined));
      process.stdout.write(rows.map((j) => (flags.json ? JSON.stringify(j) : jobRow(j))).join('\n') + (rows.length ? '\n' : ''));
    });
  jobs
    .command('show <uuid>')
    .description('One job: request, status, attempts, results, errors, warnings')
    .option('--json', 'the log document as JSON')
    .action(async (uuid: string, flags: { json?: boolean }) => {
      const job = await withLog((ctx) => ctx.log.get(uuid.toLowerCase()));
      if (!job) throw new Error(`no job ${uuid}`);
      process.stdout.write(flags.json ? `${JSON.stringify(job, null, 2)}\n` : jobDetails(job));
    });
}
