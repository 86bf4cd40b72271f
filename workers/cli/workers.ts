/**
 * `celeriac workers list | stop`: the ClimateSERV-style fleet commands, over remote control, so they
 * reach every worker on the broker (Celeriac and Python alike). A Celeriac worker has a uuid per
 * run (in `inspect stats` and its heartbeats); Python workers show none and are stopped by name.
 */
import type { Command } from 'commander';
import type { Config } from '../../config';
import { appFromConfig } from '../app/fromConfig';
import { ControlClient, type Replies } from '../control/client';
import { commonOverrides, loadOrExit, loggerFor, type CommonFlags } from './options';

interface WorkersFlags extends CommonFlags {
  timeout?: string;
  json?: boolean;
  uuid?: string;
  hostname?: string;
  all?: boolean;
  wait?: boolean;
  waitTimeout?: string;
}

export interface WorkerRow {
  /** 'celery' for workers that answer remote control; a fleet source names its own (e.g. 'rq'). */
  kind: string;
  hostname: string;
  uuid: string | null;
  pid: number | null;
  pool: number | null;
  active: number;
  processed: number;
  uptime: number | null;
}

interface StatsReply {
  uuid?: string;
  pid?: number;
  uptime?: number;
  total?: Record<string, number>;
  pool?: { 'max-concurrency'?: number };
}

/** One row per worker that answered `stats` (and `active` for its running count). */
export function rowsFrom(stats: Replies, active: Replies): WorkerRow[] {
  return Object.entries(stats)
    .map(([hostname, raw]) => {
      const s = (raw ?? {}) as StatsReply;
      const running = active[hostname];
      return {
        kind: 'celery',
        hostname,
        uuid: s.uuid ?? null,
        pid: s.pid ?? null,
        pool: s.pool?.['max-concurrency'] ?? null,
        active: Array.isArray(running) ? running.length : 0,
        processed: Object.values(s.total ?? {}).reduce((a, b) => a + b, 0),
        uptime: s.uptime ?? null,
      };
    })
    .sort((a, b) => a.hostname.localeCompare(b.hostname));
}

/**
 * Workers that do not answer Celery's remote control but keep records a list can read (rq's
 * `rq:workers`): the composition root adds them, so the runtime needs no knowledge of them.
 */
export interface FleetSource {
  kind: string;
  list(config: Config): Promise<WorkerRow[]>;
}

function table(rows: WorkerRow[]): string {
  const head = ['KIND', 'HOSTNAME', 'UUID', 'PID', 'POOL', 'ACTIVE', 'PROCESSED', 'UPTIME'];
  const cells = rows.map((r) => [r.kind, r.hostname, r.uuid ?? '-', String(r.pid ?? '-'), String(r.pool ?? '-'), String(r.active), String(r.processed), r.uptime === null ? '-' : `${r.uptime}s`]);
  const widths = head.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  return [head, ...cells].map((row) => row.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n');
}

async function withClient<T>(flags: WorkersFlags, fn: (client: ControlClient, timeout: number, config: Config) => Promise<T>): Promise<T> {
  const config = loadOrExit(commonOverrides(flags));
  const app = appFromConfig(config, loggerFor(config, 'workers', 'stderr'));
  try {
    return await fn(new ControlClient(await app.transport()), Number(flags.timeout ?? 1), config);
  } finally {
    await app.close();
  }
}

async function list(client: ControlClient, timeout: number): Promise<WorkerRow[]> {
  const [stats, active] = await Promise.all([client.call('stats', {}, { timeout }), client.call('active', {}, { timeout })]);
  return rowsFrom(stats, active);
}

/** Remote-control replies plus each fleet source's records; a source that fails is named on stderr. */
async function listAll(flags: WorkersFlags, sources: readonly FleetSource[]): Promise<WorkerRow[]> {
  return withClient(flags, async (client, timeout, config) => {
    const lists = await Promise.all([
      list(client, timeout),
      ...sources.map((source) =>
        source.list(config).catch((err: Error) => {
          process.stderr.write(`workers: could not list ${source.kind} workers: ${err.message}\n`);
          return [];
        }),
      ),
    ]);
    return lists.flat();
  });
}

async function runList(flags: WorkersFlags, sources: readonly FleetSource[]): Promise<void> {
  const rows = await listAll(flags, sources);
  process.stdout.write(flags.json ? `${JSON.stringify(rows)}\n` : `${rows.length ? table(rows) : 'no workers answered'}\n`);
}

/**
 * Warm shutdown of the chosen workers: each finishes its running tasks first, then exits. Python
 * workers never reply to `shutdown` (Celery raises WorkerShutdown first), so targets are found
 * with `stats` beforehand, and we watch them leave (`ping`) rather than count replies.
 */
async function runStop(flags: WorkersFlags): Promise<void> {
  const chosen = [flags.uuid, flags.hostname, flags.all].filter(Boolean).length;
  if (chosen !== 1) throw new Error('say which workers to stop: exactly one of --uuid, --hostname or --all');
  const waitSeconds = Number(flags.waitTimeout ?? 60);
  const left = await withClient(flags, async (client, timeout) => {
    const targets = (await list(client, timeout))
      .filter((r) => flags.all || r.uuid === flags.uuid || r.hostname === flags.hostname)
      .map((r) => r.hostname);
    if (!targets.length) {
      throw new Error(flags.uuid ? `no worker with uuid ${flags.uuid} answered` : flags.hostname ? `no worker ${flags.hostname} answered` : 'no worker answered');
    }
    await client.call('shutdown', {}, { timeout: 0.2, destination: targets });
    for (const hostname of targets) process.stdout.write(`${hostname}: warm shutdown requested\n`);
    if (!flags.wait) return [];
    let running = targets;
    const deadline = Date.now() + waitSeconds * 1000;
    while (running.length && Date.now() < deadline) {
      const answered = await client.call('ping', {}, { timeout, destination: running, limit: running.length });
      for (const hostname of running.filter((h) => !(h in answered))) process.stdout.write(`${hostname}: stopped\n`);
      running = running.filter((h) => h in answered);
    }
    return running;
  });
  if (left.length) throw new Error(`still running after ${waitSeconds}s: ${left.join(', ')}`);
}

export function addWorkersCommand(program: Command, sources: readonly FleetSource[] = []): void {
  const workers = program.command('workers').description('list or stop the workers on the broker (remote control)');
  const common = (cmd: Command): Command =>
    cmd
      .option('-b, --broker <url>', 'broker URL')
      .option('--timeout <seconds>', 'how long to wait for replies', '1')
      .option('-l, --loglevel <level>', 'log level', 'warning');
  const fail = (err: Error): never => {
    process.stderr.write(`workers: ${err.message}\n`);
    process.exit(1);
  };
  common(workers.command('list').description('hostname, uuid, pid, pool size, active, processed and uptime of each worker'))
    .option('--json', 'print JSON instead of a table')
    .action((flags: WorkersFlags) => runList(flags, sources).catch(fail));
  common(workers.command('stop').description('warm shutdown: running tasks finish first, nothing is lost'))
    .option('--uuid <uuid>', 'the worker with this uuid')
    .option('--hostname <name@host>', 'the worker with this node name')
    .option('--all', 'every worker on the broker')
    .option('--no-wait', 'return once the shutdown is sent, without watching the workers leave')
    .option('--wait-timeout <seconds>', 'how long to watch them finish their tasks and leave', '60')
    .action((flags: WorkersFlags) => runStop(flags).catch(fail));
}
