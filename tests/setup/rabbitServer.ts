/**
 * Starts the one RabbitMQ node an integration run shares (see globalSetup.ts), entirely inside
 * the run's temp dir and on free loopback ports, and stops it again. Debian's
 * /usr/sbin/rabbitmq-server wrapper switches user and writes under /var, so the real script in
 * /usr/lib/rabbitmq/bin is called with every RABBITMQ_* path pointed at `<base>` (recipe in
 * /work/shared/ENVIRONMENT.md):
 *
 *   <base>/home/.erlang.cookie   created by the node; every rabbitmqctl call needs the same HOME
 *   <base>/mnesia, <base>/log    data dir and logs (<node>.log); <base>/rabbit.pid (the beam's pid)
 *   <base>/stdout.log            the launcher's console output; <base>/epmd.log
 *
 * Each run has its own epmd on its own port (ERL_EPMD_PORT), started here BEFORE the node so the
 * node registers with it instead of daemonising one of its own; its pid is known, so it is
 * stopped by pid (only that one). rabbitmqctl's own distribution listener gets an ephemeral port
 * (RABBITMQ_CTL_DIST_PORT_MIN/MAX = 0) instead of the fixed 35672-35682 range that concurrent
 * runs would otherwise share.
 *
 * The launcher (the rabbitmq-server script in the foreground) and epmd stay in jest's process
 * group: Ctrl-C reaches them (the script turns SIGINT into a clean stop). Every process carries
 * the run marker (CELERIAC_TEST_RUN) in its environment, which is what runState.ts checks before
 * it kills anything of a run that died without teardown.
 *
 * Failures (binary missing, a port lost to a race, a node that does not come up within 60 s)
 * throw an Error carrying the tails of the node's logs: the suite must fail, never skip.
 */
import { ChildProcess, execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { makeTestCertificates } from './certs';
import { freePort, logTail } from './redisServer';

export const RABBITMQ_BIN_DIR = '/usr/lib/rabbitmq/bin';
export const RABBITMQ_SERVER = path.join(RABBITMQ_BIN_DIR, 'rabbitmq-server');
export const RABBITMQCTL = path.join(RABBITMQ_BIN_DIR, 'rabbitmqctl');

/** Everything needed to talk to (or restart) the node; all of it derives from these fields. */
export interface RabbitConfig {
  /** Directory holding home/, mnesia/, log/ and the config stubs. */
  base: string;
  /** Erlang node name, `celeriac-<jest pid>@localhost`. */
  node: string;
  /** AMQP listener port (127.0.0.1 only). */
  port: number;
  /** Erlang distribution port of the node. */
  distPort: number;
  /** Port of the run's own epmd. */
  epmdPort: number;
  /** AMQPS (TLS) listener port, with a test CA's certificate (<base>/tls/ca.pem). */
  tlsPort: number;
  /** HTTP port of the management plugin; absent = plugin off (the shared node: see startRabbit). */
  managementPort?: number;
}

/** What is known while the node is still starting (for the run state). */
export interface SpawnedRabbit extends RabbitConfig {
  launcherPid?: number;
  beamPid?: number;
  epmdPid?: number;
}

export interface StartedRabbit extends RabbitConfig {
  /** The foreground rabbitmq-server script (its exec'd erl is the beam's parent shell). */
  launcherPid: number;
  /** The Erlang VM, from <base>/rabbit.pid. */
  beamPid: number;
  epmdPid: number;
  /** From the first spawn to `await_startup` answering. */
  startupMs: number;
}

/** Name for the node of the run owned by `ownerPid`. */
export function rabbitNodeName(ownerPid: number): string {
  return `celeriac-${ownerPid}@localhost`;
}

export function rabbitPidFile(base: string): string {
  return path.join(base, 'rabbit.pid');
}

export function rabbitLogFile(cfg: Pick<RabbitConfig, 'base' | 'node'>): string {
  return path.join(cfg.base, 'log', `${cfg.node}.log`);
}

/**
 * The environment for rabbitmq-server AND rabbitmqctl: the CLI finds the node through the same
 * epmd port and authenticates with the cookie in the same HOME.
 */
export function rabbitEnv(cfg: RabbitConfig, inherited: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const { base } = cfg;
  return {
    ...inherited,
    HOME: path.join(base, 'home'),
    RABBITMQ_NODENAME: cfg.node,
    RABBITMQ_NODE_IP_ADDRESS: '127.0.0.1',
    RABBITMQ_NODE_PORT: String(cfg.port),
    RABBITMQ_DIST_PORT: String(cfg.distPort),
    RABBITMQ_MNESIA_BASE: path.join(base, 'mnesia'),
    RABBITMQ_LOG_BASE: path.join(base, 'log'),
    RABBITMQ_PID_FILE: rabbitPidFile(base),
    RABBITMQ_ENABLED_PLUGINS_FILE: path.join(base, 'enabled_plugins'),
    // <base>/rabbitmq.conf: the AMQPS listener (see prepareBase).
    RABBITMQ_CONFIG_FILE: path.join(base, 'rabbitmq'),
    RABBITMQ_ADVANCED_CONFIG_FILE: path.join(base, 'advanced.config'),
    RABBITMQ_CONF_ENV_FILE: path.join(base, 'rabbitmq-env.conf'),
    RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS: '-kernel inet_dist_use_interface {127,0,0,1}',
    RABBITMQ_CTL_ERL_ARGS: '-kernel inet_dist_use_interface {127,0,0,1}',
    RABBITMQ_CTL_DIST_PORT_MIN: '0',
    RABBITMQ_CTL_DIST_PORT_MAX: '0',
    ERL_EPMD_ADDRESS: '127.0.0.1',
    ERL_EPMD_PORT: String(cfg.epmdPort),
  };
}

export interface CtlResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `rabbitmqctl -n <node> ...args`; resolves whatever the exit code (rejects on spawn failure). */
export function runRabbitmqctl(cfg: RabbitConfig, args: string[], timeoutMs = 30_000): Promise<CtlResult> {
  return new Promise((resolve, reject) => {
    execFile(
      RABBITMQCTL,
      ['-n', cfg.node, ...args],
      { env: rabbitEnv(cfg), timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024, encoding: 'utf8' },
      (err, stdout, stderr) => {
        if (err && typeof err.code !== 'number' && !err.killed) {
          reject(new Error(`cannot run ${RABBITMQCTL}: ${err.message}`));
          return;
        }
        const code = err ? (typeof err.code === 'number' ? err.code : null) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** Both log tails, for error messages. */
export function rabbitLogTails(cfg: Pick<RabbitConfig, 'base' | 'node'>, lines = 30): string {
  return (
    `node log (${rabbitLogFile(cfg)}):\n${logTail(rabbitLogFile(cfg), lines)}\n` +
    `console (${path.join(cfg.base, 'stdout.log')}):\n${logTail(path.join(cfg.base, 'stdout.log'), lines)}`
  );
}

function requireBinaries(): void {
  for (const file of [RABBITMQ_SERVER, RABBITMQCTL]) {
    try {
      fs.accessSync(file, fs.constants.X_OK);
    } catch {
      throw new Error(
        `${file} not found: rabbitmq-server is not installed. \`npm test\` (scripts/test.sh) installs ` +
          'the Debian package rabbitmq-server; run it instead of calling jest directly on a fresh machine.',
      );
    }
  }
  for (const file of ['/usr/bin/epmd']) {
    if (!fs.existsSync(file)) throw new Error(`${file} not found (Debian package erlang-base).`);
  }
}

/** True once something accepts TCP connections on 127.0.0.1:port. */
function canConnect(port: number, timeoutMs = 300): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ host: '127.0.0.1', port });
    const done = (ok: boolean): void => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(timeoutMs, () => done(false));
    sock.on('error', () => done(false));
    sock.on('connect', () => done(true));
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Tracks a spawned child's exit so polling loops can stop early. */
function watchExit(child: ChildProcess): () => string | undefined {
  let exited: string | undefined;
  child.on('exit', (code, signal) => (exited = `exited (code ${code}, signal ${signal})`));
  child.on('error', (err) => (exited = `failed to spawn: ${err.message}`));
  return () => exited;
}

/** A port was taken between picking it and binding it. */
export class PortRaceError extends Error {}

async function startEpmd(base: string, port: number, env: NodeJS.ProcessEnv): Promise<ChildProcess> {
  const logFile = path.join(base, 'epmd.log');
  const log = fs.openSync(logFile, 'a');
  // Not -daemon: it stays our child, so its pid is the one to stop.
  const child = spawn('/usr/bin/epmd', ['-port', String(port), '-address', '127.0.0.1'], {
    stdio: ['ignore', log, log],
    env,
  });
  fs.closeSync(log);
  child.unref();
  const exited = watchExit(child);
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline && !exited()) {
    if (await canConnect(port)) {
      // Something listens; make sure it is ours (a port lost to a race makes epmd exit at once).
      await sleep(50);
      if (!exited()) return child;
    }
    await sleep(25);
  }
  if (!exited()) child.kill('SIGKILL');
  const log2 = logTail(logFile);
  const why = exited() ?? 'did not listen within 10 s';
  const err = `epmd on 127.0.0.1:${port} ${why}. Log:\n${log2}`;
  // epmd exits at once, silently and with status 0, when its port is taken.
  throw exited() && !exited()?.startsWith('failed to spawn') ? new PortRaceError(err) : new Error(err);
}

/** The test CA tests trust when they connect to the AMQPS listener. */
export function rabbitTlsCa(base: string): string {
  return path.join(base, 'tls', 'ca.pem');
}

function prepareBase(cfg: RabbitConfig): void {
  const { base } = cfg;
  for (const dir of ['home', 'mnesia', 'log']) fs.mkdirSync(path.join(base, dir), { recursive: true });
  fs.writeFileSync(path.join(base, 'enabled_plugins'), cfg.managementPort ? '[rabbitmq_management].\n' : '[].\n');
  fs.writeFileSync(path.join(base, 'rabbitmq-env.conf'), '');
  // An AMQPS listener beside the plain one, for amqps:// tests (clients are not asked for certs).
  const tls = makeTestCertificates(path.join(base, 'tls'));
  fs.writeFileSync(
    path.join(base, 'rabbitmq.conf'),
    [
      `listeners.ssl.default = 127.0.0.1:${cfg.tlsPort}`,
      `ssl_options.cacertfile = ${tls.ca}`,
      `ssl_options.certfile = ${tls.cert}`,
      `ssl_options.keyfile = ${tls.key}`,
      'ssl_options.verify = verify_none',
      'ssl_options.fail_if_no_peer_cert = false',
      // The management API, sampling its counts every second instead of every 5 s (tests wait less).
      ...(cfg.managementPort
        ? [`management.tcp.port = ${cfg.managementPort}`, 'management.tcp.ip = 127.0.0.1', 'collect_statistics_interval = 1000']
        : []),
      '',
    ].join('\n'),
  );
}

function killQuietly(pid: number | undefined): void {
  if (!pid) return;
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    /* gone */
  }
}

function readBeamPid(base: string): number | undefined {
  try {
    const pid = Number(fs.readFileSync(rabbitPidFile(base), 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/**
 * One attempt with the given ports (startRabbit picks free ones and retries a lost race).
 * Rejects with PortRaceError when a port turned out to be taken.
 */
export async function startRabbitOnPorts(
  cfg: RabbitConfig,
  env: NodeJS.ProcessEnv,
  timeoutMs = 60_000,
  onSpawned: (info: SpawnedRabbit) => void = () => undefined,
): Promise<StartedRabbit> {
  const started = Date.now();
  prepareBase(cfg);
  const fullEnv = rabbitEnv(cfg, env);
  const epmd = await startEpmd(cfg.base, cfg.epmdPort, fullEnv);
  const epmdPid = epmd.pid as number;
  onSpawned({ ...cfg, epmdPid });

  const out = fs.openSync(path.join(cfg.base, 'stdout.log'), 'a');
  const launcher = spawn(RABBITMQ_SERVER, [], { stdio: ['ignore', out, out], env: fullEnv, cwd: cfg.base });
  fs.closeSync(out);
  launcher.unref();
  const exited = watchExit(launcher);
  const launcherPid = launcher.pid as number;
  onSpawned({ ...cfg, epmdPid, launcherPid });

  const fail = async (why: string): Promise<never> => {
    // The node may be half up: the launcher traps TERM into a clean stop; SIGKILL what remains.
    const beam = readBeamPid(cfg.base);
    if (!exited()) launcher.kill('SIGTERM');
    await sleep(500);
    killQuietly(beam);
    killQuietly(launcherPid);
    killQuietly(epmdPid);
    const tails = rabbitLogTails(cfg);
    const msg = `rabbitmq-server (node ${cfg.node}, AMQP 127.0.0.1:${cfg.port}) ${why}.\n${tails}`;
    throw /eaddrinuse|address already in use|dist_port_already_used/i.test(tails) ? new PortRaceError(msg) : new Error(msg);
  };

  // The AMQP listener opens near the end of boot; polling it is cheap, while every rabbitmqctl
  // call boots an Erlang VM (~0.3 s of CPU) and would slow the node down on 2 cores.
  const deadline = started + timeoutMs;
  while (!(await canConnect(cfg.port))) {
    if (exited()) return fail(exited() as string);
    if (Date.now() > deadline) return fail(`did not open its AMQP port within ${timeoutMs / 1000} s`);
    await sleep(100);
  }
  let last: CtlResult | undefined;
  for (;;) {
    const left = Math.max(1_000, deadline - Date.now());
    last = await runRabbitmqctl(cfg, ['await_startup', '--timeout', String(Math.ceil(left / 1000))], left + 5_000);
    if (last.code === 0) break;
    if (exited()) return fail(exited() as string);
    if (Date.now() > deadline) {
      return fail(`did not pass \`rabbitmqctl await_startup\` within ${timeoutMs / 1000} s ` +
        `(last: code ${last.code}: ${(last.stderr || last.stdout).trim().slice(0, 2000)})`);
    }
    await sleep(250);
  }
  const beamPid = readBeamPid(cfg.base);
  if (!beamPid) return fail(`is up but did not write ${rabbitPidFile(cfg.base)}`);
  return { ...cfg, launcherPid, beamPid, epmdPid, startupMs: Date.now() - started };
}

export interface StartRabbitOptions {
  /** Directory to create the node's base dir in (the run's temp dir). */
  dir: string;
  /** Env for the processes; must carry the run marker. */
  env: NodeJS.ProcessEnv;
  ownerPid: number;
  timeoutMs?: number;
  /** Told the config and each pid as soon as it exists, so the run state can name them early. */
  onSpawned?: (info: SpawnedRabbit) => void;
  /**
   * The management plugin (HTTP API) on a port of its own. Off for the shared node: it adds ~4-5 s
   * to every run's `rabbitmqctl stop` (measured), so tests that need it start a node of their own.
   */
  management?: boolean;
  /** A node of a test's own: `<nodePrefix>-<ownerPid>@localhost` instead of the run's node name. */
  nodePrefix?: string;
}

async function fiveFreePorts(): Promise<[number, number, number, number, number]> {
  const ports = new Set<number>();
  while (ports.size < 5) ports.add(await freePort());
  const [a, b, c, d, e] = [...ports];
  return [a, b, c, d, e];
}

export async function startRabbit(opts: StartRabbitOptions): Promise<StartedRabbit> {
  requireBinaries();
  let lastError: Error | undefined;
  for (let attempt = 0; attempt < 3; attempt++) {
    const base = path.join(opts.dir, attempt === 0 ? 'rabbit' : `rabbit-${attempt}`);
    const [port, distPort, epmdPort, tlsPort, managementPort] = await fiveFreePorts();
    const node = opts.nodePrefix ? `${opts.nodePrefix}-${opts.ownerPid}@localhost` : rabbitNodeName(opts.ownerPid);
    const cfg: RabbitConfig = { base, node, port, distPort, epmdPort, tlsPort, ...(opts.management ? { managementPort } : {}) };
    try {
      return await startRabbitOnPorts(cfg, opts.env, opts.timeoutMs, opts.onSpawned);
    } catch (err) {
      lastError = err as Error;
      // Only a lost race for a port is worth another try.
      if (!(err instanceof PortRaceError)) break;
    }
  }
  throw lastError ?? new Error('rabbitmq-server did not start');
}

/**
 * Clean stop: `rabbitmqctl stop <pidfile>` returns once the VM has exited. The caller kills
 * whatever is left (runState.cleanupRun) and epmd.
 */
export async function stopRabbit(cfg: RabbitConfig, timeoutMs = 20_000): Promise<CtlResult> {
  return runRabbitmqctl(cfg, ['stop', rabbitPidFile(cfg.base)], timeoutMs);
}
