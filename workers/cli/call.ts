/** `celeriac call <task> [args...]`: send a task from the shell, like `celery call`. */
import type { Command } from 'commander';
import { appFromConfig } from '../app/fromConfig';
import { commonOverrides, loadOrExit, loggerFor, type CommonFlags } from './options';

interface CallFlags extends CommonFlags {
  args?: string;
  kwargs?: string;
  queue?: string;
  countdown?: string;
  eta?: string;
  expires?: string;
  priority?: string;
  serializer?: string;
  wait?: boolean;
  timeout?: string;
}

/** Positional args: JSON when they parse as JSON (2, "x", [1]), plain strings otherwise. */
function parseArg(raw: string): unknown {
  try {
    return JSON.parse(raw);
  } catch {
    return raw;
  }
}

function parseJsonFlag(raw: string | undefined, flag: string): unknown {
  if (raw === undefined) return undefined;
  try {
    return JSON.parse(raw);
  } catch (err) {
    throw new Error(`${flag} must be JSON: ${(err as Error).message}`, { cause: err });
  }
}

async function runCall(name: string, positional: string[], flags: CallFlags): Promise<void> {
  const config = loadOrExit(commonOverrides(flags));
  const app = appFromConfig(config, loggerFor(config, 'call', 'stderr'));
  const args = (parseJsonFlag(flags.args, '--args') as unknown[] | undefined) ?? positional.map(parseArg);
  const kwargs = (parseJsonFlag(flags.kwargs, '--kwargs') as Record<string, unknown> | undefined) ?? {};
  const num = (v: string | undefined): number | undefined => (v === undefined ? undefined : Number(v));
  const result = await app.sendTask(name, args, kwargs, {
    queue: flags.queue,
    countdown: num(flags.countdown),
    eta: flags.eta ?? null,
    expires: flags.expires === undefined ? null : /^\d+(\.\d+)?$/.test(flags.expires) ? Number(flags.expires) : flags.expires,
    priority: num(flags.priority),
    serializer: flags.serializer as 'json' | 'msgpack' | 'yaml' | undefined,
  });
  process.stdout.write(`${result.id}\n`);
  if (flags.wait) {
    const value = await result.get({ timeout: num(flags.timeout) ?? 30 });
    process.stdout.write(`${JSON.stringify(value)}\n`);
  }
  await app.close();
}

export function addCallCommand(program: Command): void {
  program
    .command('call <task> [args...]')
    .description('send a task by name and print its id (like `celery call`)')
    .option('-a, --args <json>', 'positional arguments as a JSON list')
    .option('-k, --kwargs <json>', 'keyword arguments as a JSON object')
    .option('-Q, --queue <queue>', 'queue to send to')
    .option('--countdown <seconds>', 'run no sooner than this many seconds from now')
    .option('--eta <iso>', 'run no sooner than this time (ISO 8601)')
    .option('--expires <seconds|iso>', 'discard the task if not started by then')
    .option('--priority <n>', 'message priority (0-9)')
    .option('--serializer <name>', 'json, msgpack or yaml')
    .option('--wait', 'wait for the result and print it as JSON')
    .option('--timeout <seconds>', 'with --wait: give up after this long', '30')
    .option('-b, --broker <url>', 'broker URL')
    .option('--result-backend <url>', 'result backend URL')
    .option('-l, --loglevel <level>', 'log level', 'warning')
    .action(async (task: string, args: string[], flags: CallFlags) => {
      try {
        await runCall(task, args, flags);
      } catch (err) {
        process.stderr.write(`call failed: ${(err as Error).name}: ${(err as Error).message}\n`);
        process.exit(1);
      }
    });
}
