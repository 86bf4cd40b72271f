/**
 * The bench's own RabbitMQ node (Debian's rabbitmq-server 3.10), entirely under a temp dir, on
 * free loopback ports (AMQP, Erlang distribution, and its own epmd), stopped again at the end.
 * Recipe from /work/shared/ENVIRONMENT.md: the /usr/sbin wrapper switches user and writes under
 * /var, so the real script in /usr/lib/rabbitmq/bin runs with every RABBITMQ_* path pointed at
 * `<base>`; HOME=<base>/home holds the Erlang cookie every rabbitmqctl call needs.
 *
 * epmd is started first, as our own child on its own port (ERL_EPMD_PORT), so the node registers
 * with it instead of daemonising a shared one, and it is stopped by its pid. rabbitmqctl's own
 * distribution listener takes an ephemeral port (RABBITMQ_CTL_DIST_PORT_MIN/MAX = 0).
 */
import { execFile } from 'node:child_process';
import { accessSync, constants, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { freePorts, sleep, start, stop, signalGroup, type Proc } from './common';

const BIN = '/usr/lib/rabbitmq/bin';
const SERVER = join(BIN, 'rabbitmq-server');
const CTL = join(BIN, 'rabbitmqctl');
const EPMD = '/usr/bin/epmd';

export interface Rabbit {
  node: string;
  port: number;
  base: string;
  /** The Erlang VM (beam.smp) that is the broker: its CPU is the broker's CPU. */
  beamPid: number;
  version: string;
  startupS: number;
  url(vhost: string): string;
  /** `rabbitmqctl -n node ...args`; rejects unless it exits 0. */
  ctl(args: string[], timeoutMs?: number): Promise<string>;
  /** `rabbitmqctl eval EXPR` on the node; resolves with what it printed. */
  evalErl(expr: string): Promise<string>;
  /** Clean stop of the node, then its process group and its epmd. Safe to call twice. */
  stop(): Promise<void>;
}

/** Stoppers of nodes being started or running, for the bench's cleanup on error or Ctrl-C. */
export const rabbitStoppers = new Set<() => Promise<void>>();

function canConnect(port: number): Promise<boolean> {
  return new Promise((res) => {
    const sock = connect({ host: '127.0.0.1', port });
    const done = (ok: boolean): void => {
      sock.destroy();
      res(ok);
    };
    sock.setTimeout(300, () => done(false));
    sock.on('error', () => done(false));
    sock.on('connect', () => done(true));
  });
}

function tail(text: string, lines = 30): string {
  return text.split('\n').slice(-lines).join('\n');
}

function readTail(file: string): string {
  try {
    return tail(readFileSync(file, 'utf8'));
  } catch {
    return '(none)';
  }
}

export async function startRabbit(dir: string, timeoutMs = 90_000): Promise<Rabbit> {
  for (const f of [SERVER, CTL, EPMD]) {
    try {
      accessSync(f, constants.X_OK);
    } catch {
      throw new Error(`${f} not found: the AMQP bench needs Debian's rabbitmq-server (and erlang-base for epmd)`);
    }
  }
  const started = Date.now();
  const base = join(dir, 'rabbit');
  for (const d of ['home', 'mnesia', 'log']) mkdirSync(join(base, d), { recursive: true });
  writeFileSync(join(base, 'enabled_plugins'), '[].\n');
  writeFileSync(join(base, 'rabbitmq-env.conf'), '');
  const [port, distPort, epmdPort] = await freePorts(3);
  const node = `celeriac-bench-${process.pid}@localhost`;
  const pidFile = join(base, 'rabbit.pid');
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    HOME: join(base, 'home'),
    RABBITMQ_NODENAME: node,
    RABBITMQ_NODE_IP_ADDRESS: '127.0.0.1',
    RABBITMQ_NODE_PORT: String(port),
    RABBITMQ_DIST_PORT: String(distPort),
    RABBITMQ_MNESIA_BASE: join(base, 'mnesia'),
    RABBITMQ_LOG_BASE: join(base, 'log'),
    RABBITMQ_PID_FILE: pidFile,
    RABBITMQ_ENABLED_PLUGINS_FILE: join(base, 'enabled_plugins'),
    // No such files: the node runs with the built-in defaults.
    RABBITMQ_CONFIG_FILE: join(base, 'rabbitmq'),
    RABBITMQ_ADVANCED_CONFIG_FILE: join(base, 'advanced.config'),
    RABBITMQ_CONF_ENV_FILE: join(base, 'rabbitmq-env.conf'),
    RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS: '-kernel inet_dist_use_interface {127,0,0,1}',
    RABBITMQ_CTL_ERL_ARGS: '-kernel inet_dist_use_interface {127,0,0,1}',
    RABBITMQ_CTL_DIST_PORT_MIN: '0',
    RABBITMQ_CTL_DIST_PORT_MAX: '0',
    ERL_EPMD_ADDRESS: '127.0.0.1',
    ERL_EPMD_PORT: String(epmdPort),
  };

  const ctl = (args: string[], ctlTimeoutMs = 60_000): Promise<string> =>
    new Promise((res, rej) => {
      execFile(CTL, ['-n', node, ...args], { env, timeout: ctlTimeoutMs, maxBuffer: 16 << 20, encoding: 'utf8' }, (err, stdout, stderr) => {
        if (err) rej(new Error(`rabbitmqctl ${args[0]} failed: ${err.message}\n${tail(stderr || stdout, 20)}`));
        else res(stdout);
      });
    });

  let epmd: Proc | null = null;
  let server: Proc | null = null;
  let stopped: Promise<void> | null = null;
  const stopAll = (): Promise<void> =>
    (stopped ??= (async () => {
      if (server && !server.exited) {
        // `rabbitmqctl stop <pidfile>` returns once the VM has exited; whatever is left goes.
        await ctl(['stop', pidFile], 30_000).catch(() => undefined);
        await stop(server, 5_000);
      }
      if (server) signalGroup(server, 'SIGKILL');
      if (epmd) await stop(epmd, 2_000);
      rabbitStoppers.delete(stopAll);
    })());
  rabbitStoppers.add(stopAll);

  try {
    epmd = start('epmd', EPMD, ['-port', String(epmdPort), '-address', '127.0.0.1'], { env });
    const epmdDeadline = Date.now() + 10_000;
    while (!(await canConnect(epmdPort))) {
      if (epmd.exited || Date.now() > epmdDeadline) throw new Error(`epmd on port ${epmdPort} did not start:\n${epmd.output()}`);
      await sleep(25);
    }
    server = start('rabbitmq-server', SERVER, [], { cwd: base, env });
    const deadline = started + timeoutMs;
    while (!(await canConnect(port))) {
      if (server.exited) throw new Error(`rabbitmq-server exited:\n${tail(server.output())}\nlog:\n${readTail(join(base, 'log', `${node}.log`))}`);
      if (Date.now() > deadline) throw new Error(`rabbitmq-server: no AMQP port after ${timeoutMs / 1000} s:\n${tail(server.output())}`);
      await sleep(100);
    }
    await ctl(['await_startup', '--timeout', String(Math.max(5, Math.ceil((deadline - Date.now()) / 1000)))], timeoutMs);
    const beamPid = Number(readFileSync(pidFile, 'utf8').trim());
    if (!Number.isInteger(beamPid) || beamPid <= 0) throw new Error(`rabbitmq-server wrote no pid to ${pidFile}`);
    const version = (await ctl(['eval', 'rabbit_misc:version().'])).trim().replace(/^"|"$/g, '');
    const startupS = (Date.now() - started) / 1000;
    return {
      node,
      port,
      base,
      beamPid,
      version,
      startupS,
      url: (vhost) => `amqp://guest:guest@127.0.0.1:${port}/${encodeURIComponent(vhost)}`,
      ctl,
      evalErl: (expr) => ctl(['eval', expr]),
      stop: stopAll,
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
}
