/**
 * The run's one RabbitMQ node (started by tests/setup/globalSetup.ts, see rabbitServer.ts).
 * Test files isolate themselves by vhost: each file takes its own vhost name(s) and calls
 * freshVhost() in beforeAll/beforeEach (files run serially).
 *
 *   testAmqpUrl(vhost = '/'): string        amqp://guest:guest@127.0.0.1:<port>/<vhost URL-encoded>
 *                                           (kombu/Celery and amqplib read the same form)
 *   freshVhost(name: string): Promise<string>
 *       deletes the vhost if it exists, creates it, grants guest ".*" ".*" ".*" and returns
 *       testAmqpUrl(name). ~0.7 s (three rabbitmqctl calls).
 *   rabbitctl(args: string[], timeoutMs = 60000): Promise<string>
 *       `rabbitmqctl -n <node> ...args` with the node's env (HOME with the cookie, the run's epmd
 *       port); resolves with stdout, rejects with stderr/stdout when the exit code is not 0.
 *       Every call boots an Erlang VM: ~0.25 s each.
 *   listQueues(vhost): Promise<QueueInfo[]>
 *       `list_queues -p vhost name messages consumers arguments durable auto_delete exclusive
 *       messages_ready messages_unacknowledged`; arguments as an object ({} when none).
 *   queueArguments(vhost): Promise<Record<queue, args>>   the x-arguments of each queue
 *   listExchanges(vhost): Promise<ExchangeInfo[]>    name (default exchange is ''), type, durable,
 *                                                    auto_delete, internal, arguments
 *   listBindings(vhost): Promise<BindingInfo[]>      source, destination, destination_kind,
 *                                                    routing_key, arguments
 *   stopBroker(): Promise<void>
 *       `rabbitmqctl stop_app`: the rabbit application stops, every client connection is closed
 *       by the broker (clients see 320 CONNECTION_FORCED "broker forced connection closure with
 *       reason 'shutdown'") and the AMQP port refuses connections (ECONNREFUSED) until
 *       startBroker(). The Erlang VM, its node name, ports and data dir stay as they are.
 *   startBroker(): Promise<void>
 *       `rabbitmqctl start_app`, then waits for the AMQP port: the same node on the same port, same data dir.
 *       Durable queues and persistent messages survive; non-durable queues are gone. ~0.7 s for a
 *       stop+start (a full VM stop/start measured ~2.2 s and needs re-spawning the node).
 *   brokerStopped(): boolean
 *
 * A file that stops the broker and fails before starting it again does not break the next
 * file: an afterAll registered here starts it again.
 */
import net from 'node:net';
import { RabbitConfig, runRabbitmqctl } from '../setup/rabbitServer';
import { testAmqpUrl, testRabbit } from './env';

export { testAmqpUrl };

export interface QueueInfo {
  name: string;
  messages: number;
  messages_ready: number;
  messages_unacknowledged: number;
  consumers: number;
  /** x-arguments the queue was declared with, e.g. { 'x-max-priority': 10 }. */
  arguments: Record<string, unknown>;
  durable: boolean;
  auto_delete: boolean;
  exclusive: boolean;
}

export interface ExchangeInfo {
  name: string;
  type: string;
  durable: boolean;
  auto_delete: boolean;
  internal: boolean;
  arguments: Record<string, unknown>;
}

export interface BindingInfo {
  source_name: string;
  destination_name: string;
  destination_kind: string;
  routing_key: string;
  arguments: Record<string, unknown>;
}

function config(): RabbitConfig {
  return testRabbit();
}

export async function rabbitctl(args: string[], timeoutMs = 60_000): Promise<string> {
  const res = await runRabbitmqctl(config(), args, timeoutMs);
  if (res.code !== 0) {
    const out = (res.stderr.trim() || res.stdout.trim()).slice(0, 4000);
    throw new Error(`rabbitmqctl ${args.join(' ')} failed (exit code ${res.code}):\n${out}`);
  }
  return res.stdout;
}

export async function freshVhost(name: string): Promise<string> {
  if (!name || name === '/') throw new Error(`freshVhost needs a name of its own, got ${JSON.stringify(name)}`);
  const del = await runRabbitmqctl(config(), ['delete_vhost', name]);
  if (del.code !== 0 && !/does not exist|no_such_vhost/i.test(del.stderr + del.stdout)) {
    throw new Error(`rabbitmqctl delete_vhost ${name} failed (exit code ${del.code}):\n${del.stderr || del.stdout}`);
  }
  await rabbitctl(['add_vhost', name]);
  await rabbitctl(['set_permissions', '-p', name, 'guest', '.*', '.*', '.*']);
  return testAmqpUrl(name);
}

/**
 * rabbitmqctl's JSON formatter writes a table's arguments as [key, AMQP type, value] triples
 * (e.g. ["x-max-priority","byte",10]; older versions [key, value] pairs, or {} / [] when empty);
 * turns any of these into an object.
 */
function argsObject(raw: unknown): Record<string, unknown> {
  if (Array.isArray(raw)) {
    const out: Record<string, unknown> = {};
    for (const entry of raw) {
      if (!Array.isArray(entry) || typeof entry[0] !== 'string') continue;
      if (entry.length === 2) out[entry[0]] = entry[1];
      else if (entry.length === 3) out[entry[0]] = entry[2];
    }
    return out;
  }
  if (raw && typeof raw === 'object') return { ...(raw as Record<string, unknown>) };
  return {};
}

async function listJson(args: string[]): Promise<Record<string, unknown>[]> {
  const out = await rabbitctl([...args, '--formatter', 'json', '--quiet']);
  const text = out.trim();
  if (!text) return [];
  try {
    const parsed: unknown = JSON.parse(text);
    if (!Array.isArray(parsed)) throw new Error('not an array');
    return parsed as Record<string, unknown>[];
  } catch (err) {
    throw new Error(`rabbitmqctl ${args.join(' ')}: cannot parse JSON (${(err as Error).message}):\n${text}`, {
      cause: err,
    });
  }
}

const num = (v: unknown): number => (typeof v === 'number' ? v : Number(v ?? 0));
const bool = (v: unknown): boolean => v === true || v === 'true';
const str = (v: unknown): string => (typeof v === 'string' ? v : String(v ?? ''));

export async function listQueues(vhost: string): Promise<QueueInfo[]> {
  const rows = await listJson(['list_queues', '-p', vhost, 'name', 'messages', 'consumers', 'arguments',
    'durable', 'auto_delete', 'exclusive', 'messages_ready', 'messages_unacknowledged']);
  return rows.map((r) => ({
    name: str(r.name),
    messages: num(r.messages),
    messages_ready: num(r.messages_ready),
    messages_unacknowledged: num(r.messages_unacknowledged),
    consumers: num(r.consumers),
    arguments: argsObject(r.arguments),
    durable: bool(r.durable),
    auto_delete: bool(r.auto_delete),
    exclusive: bool(r.exclusive),
  }));
}

export async function listExchanges(vhost: string): Promise<ExchangeInfo[]> {
  const rows = await listJson(['list_exchanges', '-p', vhost, 'name', 'type', 'durable', 'auto_delete',
    'internal', 'arguments']);
  return rows.map((r) => ({
    name: str(r.name),
    type: str(r.type),
    durable: bool(r.durable),
    auto_delete: bool(r.auto_delete),
    internal: bool(r.internal),
    arguments: argsObject(r.arguments),
  }));
}

export async function listBindings(vhost: string): Promise<BindingInfo[]> {
  const rows = await listJson(['list_bindings', '-p', vhost, 'source_name', 'destination_name',
    'destination_kind', 'routing_key', 'arguments']);
  return rows.map((r) => ({
    source_name: str(r.source_name),
    destination_name: str(r.destination_name),
    destination_kind: str(r.destination_kind),
    routing_key: str(r.routing_key),
    arguments: argsObject(r.arguments),
  }));
}

let stopped = false;

export function brokerStopped(): boolean {
  return stopped;
}

export async function stopBroker(): Promise<void> {
  stopped = true;
  await rabbitctl(['stop_app']);
}

/** Resolves once 127.0.0.1:port accepts a TCP connection; rejects after timeoutMs. */
export async function waitForPort(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const sock = net.connect({ host: '127.0.0.1', port });
      const done = (v: boolean): void => {
        sock.destroy();
        resolve(v);
      };
      sock.setTimeout(500, () => done(false));
      sock.on('error', () => done(false));
      sock.on('connect', () => done(true));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`AMQP port ${port} not accepting connections after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export async function startBroker(): Promise<void> {
  // start_app returns once the rabbit application (listeners included) has started; the port
  // check only guards against that changing.
  await rabbitctl(['start_app']);
  await waitForPort(config().port, 30_000);
  stopped = false;
}

// A file that stopped the broker and then failed must not leave it down for the next file.
if (typeof afterAll === 'function') {
  afterAll(async () => {
    if (stopped) await startBroker();
  });
}

/** Queue name -> its x-arguments, e.g. { celery: { 'x-max-priority': 10 } }. */
export async function queueArguments(vhost: string): Promise<Record<string, Record<string, unknown>>> {
  return Object.fromEntries((await listQueues(vhost)).map((q) => [q.name, q.arguments]));
}
