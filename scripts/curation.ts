/**
 * The curation pipeline's commands (cBottle's create_index / initialize_zarr / enqueue_* /
 * monitor / purge_tasks): `celeriac create-index`, `init-zarr`, `enqueue-regrid`,
 * `enqueue-curate`, `queues [--watch]`, `purge <queue>`. Settings: the `curation` config section.
 */
import { createInterface } from 'node:readline/promises';
import type { Command } from 'commander';
import { appFromConfig, commonOverrides, loadOrExit, loggerFor, maskUrl, type CommonFlags, type Config, type QueueCounts, type Transport } from '../workers';
import {
  CURATE_TASK,
  REGRID_TASK,
  curationSettings,
  initStore,
  planCurate,
  planRegrid,
  readIndex,
  selectRows,
  updateIndex,
  writeIndex,
  type CurationSettings,
  type Plan,
} from '../workers/curation';

interface EnqueueFlags extends CommonFlags {
  index?: string;
  from?: string;
  to?: string;
  variables?: string;
  queue?: string;
  dryRun?: boolean;
}

function load(flags: CommonFlags): { config: Config; settings: CurationSettings } {
  const config = loadOrExit(commonOverrides(flags));
  return { config, settings: curationSettings(config) };
}

/** Errors end the command with one line and status 1 (a traceback helps nobody here). */
function action<A extends unknown[]>(name: string, fn: (...args: A) => Promise<void>): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      await fn(...args);
    } catch (error) {
      process.stderr.write(`${name} failed: ${(error as Error).message}\n`);
      process.exitCode = 1;
    }
  };
}

function withBroker(cmd: Command): Command {
  return cmd.option('-b, --broker <url>', 'broker URL').option('-l, --loglevel <level>', 'log level', 'warning');
}

async function enqueue(kind: 'regrid' | 'curate', flags: EnqueueFlags): Promise<void> {
  const { config, settings } = load(flags);
  const rows = selectRows(await readIndex(flags.index ?? settings.index), { from: flags.from, to: flags.to, variables: flags.variables?.split(',').filter(Boolean) }, settings);
  const plan: Plan = kind === 'regrid' ? planRegrid(rows, settings) : planCurate(rows, settings);
  if (!flags.dryRun && plan.send.length > 0) {
    const app = appFromConfig({ ...config, celery: { ...config.celery, result_backend: '' } }, loggerFor(config, `enqueue-${kind}`, 'stderr'));
    try {
      for (const file of plan.send) await app.sendTask(kind === 'regrid' ? REGRID_TASK : CURATE_TASK, [file], {}, { queue: flags.queue });
    } finally {
      await app.close();
    }
  }
  for (const b of plan.blocked) process.stderr.write(`not sent: ${b.file}: ${b.reason}\n`);
  if (plan.unaligned.length > 0) process.stderr.write(`warning: ${plan.unaligned.length} file(s) share a store time chunk with another file; such files must not be curated at the same time (first: ${plan.unaligned[0]})\n`);
  process.stdout.write(`${flags.dryRun ? 'would send' : 'sent'} ${plan.send.length}, skipped ${plan.skipped} done, ${plan.blocked.length} not ready, of ${rows.length} selected\n`);
}

function enqueueCommand(program: Command, kind: 'regrid' | 'curate', description: string): void {
  withBroker(program.command(`enqueue-${kind}`).description(description))
    .option('--index <csv>', 'the index (default: curation.index)')
    .option('--from <date>', 'first start_date (ISO date or year)')
    .option('--to <date>', 'last start_date (ISO date or year, inclusive)')
    .option('--variables <names>', 'comma-separated (default: the configured variables)')
    .option('-Q, --queue <queue>', 'queue to send to')
    .option('--dry-run', 'count only, send nothing')
    .action(action(`enqueue-${kind}`, (flags: EnqueueFlags) => enqueue(kind, flags)));
}

async function countsOf(transport: Transport, queue: string): Promise<QueueCounts> {
  if (transport.queueCounts) return transport.queueCounts(queue);
  if (!transport.queueDepth) throw new Error(`the ${transport.kind} broker cannot count queue messages`);
  return { ready: await transport.queueDepth(queue), unacked: { scope: 'broker', reason: `the ${transport.kind} broker does not count unacked messages` } };
}

/**
 * One table of `celeriac queues`: `queue ready unacked` per line. A count that fails shows its
 * error on its queue's line (the others still print, --watch keeps going); what holds for every
 * queue (say, broker_api not set) goes to stderr once per run, remembered in `said`.
 */
async function depths(transport: Transport, queues: string[], said: Set<string>): Promise<{ table: string; failed: boolean }> {
  if (!transport.queueCounts && !transport.queueDepth) throw new Error(`the ${transport.kind} broker cannot count queue messages`);
  let failed = false;
  const lines = await Promise.all(
    queues.map(async (q) => {
      let counts: QueueCounts;
      try {
        counts = await countsOf(transport, q);
      } catch (error) {
        failed = true;
        return `${q}\terror: ${maskUrl((error as Error).message)}`;
      }
      const { ready, unacked } = counts;
      if (typeof unacked === 'number') return `${q}\t${ready}\t${unacked}`;
      if (unacked.scope === 'queue') {
        failed = true;
        return `${q}\t${ready}\terror: ${unacked.reason}`;
      }
      if (!said.has(unacked.reason)) process.stderr.write(`note: ${unacked.reason}\n`);
      said.add(unacked.reason);
      return `${q}\t${ready}\t-`;
    }),
  );
  return { table: ['queue\tready\tunacked', ...lines].join('\n'), failed };
}

async function withTransport(flags: CommonFlags, name: string, fn: (transport: Transport, config: Config) => Promise<void>): Promise<void> {
  const config = loadOrExit(commonOverrides(flags));
  const app = appFromConfig({ ...config, celery: { ...config.celery, result_backend: '' } }, loggerFor(config, name, 'stderr'));
  try {
    await fn(await app.transport(), config);
  } finally {
    await app.close();
  }
}

export function addCurationCommands(program: Command): void {
  program
    .command('create-index <folder> [index]')
    .description("index the NetCDF files of a folder (cBottle's index.csv); re-running adds new files and keeps the rest")
    .action(
      action('create-index', async (folder: string, index: string | undefined) => {
        const { settings } = load({});
        const target = index ?? settings.index;
        const update = await updateIndex(folder, await readIndex(target), settings.filePattern);
        await writeIndex(target, update.rows);
        for (const s of update.skipped) process.stderr.write(`not indexed: ${s.file}: ${s.reason}\n`);
        process.stdout.write(`${target}: added ${update.added}, kept ${update.kept}, not indexed ${update.skipped.length}\n`);
      }),
    );

  program
    .command('init-zarr [store]')
    .description('create the store arrays of the configured variables and the time axis; on an existing store only adds new variables')
    .action(
      action('init-zarr', async (store: string | undefined) => {
        const { settings } = load({});
        const result = await initStore(store === undefined ? settings : { ...settings, zarr: store });
        process.stdout.write(`${store ?? settings.zarr}: created ${result.created.join(', ') || 'nothing'}; existing ${result.existing.join(', ') || 'none'}\n`);
      }),
    );

  enqueueCommand(program, 'regrid', 'send one climate.regrid per index row whose regridded file does not exist yet');
  enqueueCommand(program, 'curate', "send one climate.curate per regridded file whose time chunks are not in the store yet");

  withBroker(program.command('queues [queues...]'))
    .description('ready and unacked messages per queue (Redis: ready in all priority lists, as Flower counts; RabbitMQ: unacked from broker_api)')
    .option('-w, --watch [seconds]', 'print again every few seconds until interrupted')
    .action(
      action('queues', async (queues: string[], flags: CommonFlags & { watch?: string | boolean }) =>
        withTransport(flags, 'queues', async (transport, config) => {
          const names = queues.length > 0 ? queues : [config.celery.task_default_queue];
          const said = new Set<string>();
          const first = await depths(transport, names, said);
          process.stdout.write(`${first.table}\n`);
          if (flags.watch === undefined || flags.watch === false) {
            if (first.failed) process.exitCode = 1;
            return;
          }
          const every = flags.watch === true ? 2 : Number(flags.watch);
          if (!(every > 0)) throw new Error(`--watch: not a number of seconds: '${String(flags.watch)}'`);
          for (;;) {
            await new Promise((r) => setTimeout(r, every * 1000));
            process.stdout.write(`${new Date().toISOString()}\n${(await depths(transport, names, said)).table}\n`);
          }
        }),
      ),
    );

  withBroker(program.command('purge <queue>'))
    .description('delete the messages waiting in a queue (asks to type the queue name, unless --yes)')
    .option('-y, --yes', 'do not ask')
    .action(
      action('purge', async (queue: string, flags: CommonFlags & { yes?: boolean }) =>
        withTransport(flags, 'purge', async (transport) => {
          if (!transport.purgeQueue || !transport.queueDepth) throw new Error(`the ${transport.kind} broker cannot purge queues`);
          if (!flags.yes) {
            const n = await transport.queueDepth(queue);
            const rl = createInterface({ input: process.stdin, output: process.stdout });
            const answer = await rl.question(`${n} message(s) in '${queue}' will be deleted. Type the queue name to confirm: `).finally(() => rl.close());
            if (answer.trim() !== queue) {
              process.stdout.write('not purged\n');
              process.exitCode = 2;
              return;
            }
          }
          process.stdout.write(`purged ${await transport.purgeQueue(queue)} message(s) from '${queue}'\n`);
        }),
      ),
    );
}
