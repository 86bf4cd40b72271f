/**
 * The remote control commands of celery/worker/control.py, answering with the shapes Celery's own
 * worker builds, so Python's app.control.inspect() and `celery inspect` parse them unchanged.
 */
import os from 'node:os';
import type { Worker } from '../worker/worker';
import type { TaskRequest } from '../protocol/message';
import type { Delivery } from '../transports/transport';
import type { LamportClock } from '../events/clock';
import { declarationFor } from '../worker/queues';
import { buildMeta, serializeException } from '../backends/meta';
import { celeryConf } from './celeryConf';
import { registered } from './registered';
import { TaskRevokedError } from '../app/errors';
import { SOFTWARE_INFO } from '../events/heartbeat';
import { TUNING_COMMANDS } from './tuning';
import { CONSUMER_COMMANDS } from './consumers';
import { maskUrl } from '../log/mask';

export interface ControlLogger {
  info(msg: string): void;
  warn(msg: string): void;
  error(msg: string): void;
}

/** Celery's task events switch (the dispatcher's 'task' group). */
export interface EventsSwitch {
  /** True when task events were off and are on now. */
  enable(): boolean;
  /** True when task events were on and are off now. */
  disable(): boolean;
  /** Send a worker-heartbeat now. */
  heartbeat(): void;
}

export interface ControlContext {
  worker: Worker;
  hostname: string;
  /** The worker's Lamport clock (shared with its events, as Celery's app.clock). */
  clock: LamportClock;
  log: ControlLogger;
  /** The worker's settings under Celery's names, `include` = its task modules (secrets masked by the caller). */
  conf?: () => Record<string, unknown>;
  events?: EventsSwitch | null;
  /** Warm shutdown of the worker (called after the reply went out). */
  shutdown?: () => void;
  /** The broker node connected to now, of a failover list (set per command by RemoteControl). */
  connectedBrokerUrl?: string;
}

export type ControlHandler = (ctx: ControlContext, args: Record<string, unknown>) => unknown;

const ok = (value: unknown): { ok: unknown } => ({ ok: value });
const nok = (value: unknown): { error: unknown } => ({ error: value });

/** kombu's maybe_list: a single value becomes a one-item list, null/undefined an empty one. */
function maybeList(v: unknown): string[] {
  if (v === undefined || v === null) return [];
  return Array.isArray(v) ? v.map(String) : [String(v)];
}

function truthy(v: unknown): boolean {
  if (typeof v === 'string') return ['1', 'true', 'yes', 'on', 'y', 't'].includes(v.toLowerCase());
  return Boolean(v);
}

/** Python's datetime.isoformat() of an aware UTC datetime: microseconds and +00:00. */
export function pyIsoformat(d: Date): string {
  return d.toISOString().replace(/\.(\d{3})Z$/, '.$1000+00:00');
}

/** Python's repr of a set of strings: {'a', 'b'} (set() when empty). */
function pySetRepr(ids: readonly string[]): string {
  return ids.length ? `{${ids.map((i) => `'${i}'`).join(', ')}}` : 'set()';
}

type HeldState = 'active' | 'reserved' | 'scheduled';
interface Held {
  state: HeldState;
  request: TaskRequest;
  delivery: Delivery;
  acked: boolean;
  timeStart: number | null;
}

/** Celery's Request.info(safe). */
export function requestInfo(ctx: ControlContext, h: Held, safe = false): Record<string, unknown> {
  const r = h.request;
  return {
    id: r.id,
    name: r.task,
    args: safe ? r.argsrepr : r.args,
    kwargs: safe ? r.kwargsrepr : r.kwargs,
    type: r.task,
    hostname: ctx.hostname,
    time_start: h.timeStart,
    acknowledged: h.acked,
    delivery_info: {
      exchange: h.delivery.exchange,
      routing_key: h.delivery.routingKey,
      priority: Number(h.delivery.message.properties.priority ?? 0),
      redelivered: h.delivery.redelivered,
    },
    worker_pid: h.state === 'active' ? process.pid : null,
  };
}

function held(ctx: ControlContext, state?: HeldState): Held[] {
  const all = ctx.worker.controlRequests();
  return state ? all.filter((h) => h.state === state) : all;
}

function brokerInfo(ctx: ControlContext): Record<string, unknown> {
  // A failover list: kombu reports the node it is connected to, and every URL as `alternates`
  // (masked here); a single URL has no alternates.
  const urls = ctx.worker.app.options.brokerUrl.split(';').map((u) => u.trim()).filter((u) => u !== '');
  const alternates = urls.length > 1 ? urls : [];
  const raw = ctx.connectedBrokerUrl ?? urls[0] ?? '';
  let url: URL | null;
  try {
    url = new URL(raw);
  } catch {
    url = null;
  }
  const transport = url ? url.protocol.replace(/:$/, '').replace(/^rediss$/, 'redis').replace(/^amqps$/, 'amqp') : 'unknown';
  const vhost = url ? decodeURIComponent(url.pathname.replace(/^\//, '')) : '';
  return {
    hostname: url?.hostname || null,
    userid: url?.username ? decodeURIComponent(url.username) : null,
    virtual_host: transport === 'amqp' ? vhost || '/' : vhost || '0',
    port: url?.port ? Number(url.port) : null,
    insist: false,
    // Only the TLS schemes: a bare /s:$/ also matched 'redis:' and showed ssl: true for plain Redis in Flower.
    ssl: url ? /^(rediss|amqps):$/.test(url.protocol) : false,
    transport,
    connect_timeout: 4,
    transport_options: ctx.worker.app.options.brokerTransportOptions,
    login_method: null,
    uri_prefix: null,
    heartbeat: transport === 'amqp' ? 120.0 : 0,
    failover_strategy: ctx.worker.app.options.brokerFailoverStrategy ?? 'round-robin',
    alternates: alternates.map(maskUrl),
  };
}

/** resource.getrusage(RUSAGE_SELF) as Celery's Worker.rusage() reports it. */
function rusage(): Record<string, number> {
  const u = process.resourceUsage();
  return {
    utime: u.userCPUTime / 1e6,
    stime: u.systemCPUTime / 1e6,
    maxrss: u.maxRSS,
    ixrss: u.sharedMemorySize,
    idrss: u.unsharedDataSize,
    isrss: u.unsharedStackSize,
    minflt: u.minorPageFault,
    majflt: u.majorPageFault,
    nswap: u.swappedOut,
    inblock: u.fsRead,
    oublock: u.fsWrite,
    msgsnd: u.ipcSent,
    msgrcv: u.ipcReceived,
    nsignals: u.signalsCount,
    nvcsw: u.voluntaryContextSwitches,
    nivcsw: u.involuntaryContextSwitches,
  };
}

/** Celery's revoke: flag the ids; tasks not held here get REVOKED stored unless they already have a state. */
async function revoke(ctx: ControlContext, args: Record<string, unknown>): Promise<unknown> {
  const ids = [...new Set(maybeList(args.task_id))];
  const terminate = truthy(args.terminate);
  const heldIds = new Set(held(ctx).map((h) => h.request.id));
  const terminated = ctx.worker.revoke(ids, terminate);
  const backend = await ctx.worker.app.backend().catch(() => null);
  if (backend) {
    for (const id of ids) {
      if (heldIds.has(id)) continue; // the worker stores REVOKED for the ones it holds
      try {
        const meta = await backend.get(id);
        const state = meta?.status ?? 'PENDING';
        if (!['PENDING', 'RECEIVED', 'RETRY', 'REJECTED'].includes(state)) continue;
        await backend.store(buildMeta(id, 'REVOKED', serializeException(new TaskRevokedError('revoked')), { traceback: null }));
      } catch (err) {
        ctx.log.warn(`Failed to mark task ${id} as revoked in backend: ${(err as Error).message}`);
      }
    }
  }
  if (terminate) {
    for (const id of terminated) ctx.log.info(`Terminating ${id} (SIGTERM)`);
    return ok(terminated.length ? `terminate: ${terminated.join(', ')}` : 'terminate: tasks unknown');
  }
  ctx.log.info(`Tasks flagged as revoked: ${ids.join(', ')}`);
  return ok(`tasks ${pySetRepr(ids)} flagged as revoked`);
}

/** inspect stats' `pool`, in the shape of Celery's prefork/threads pools (Flower shows it). */
function poolInfo(worker: ControlContext['worker']): Record<string, unknown> {
  const pool = worker.pool.stats();
  return {
    implementation: pool.implementation,
    'max-concurrency': worker.options.concurrency,
    processes: pool.processes,
    'max-tasks-per-child': pool.maxTasksPerChild ?? 'N/A',
    'put-guarded-by-semaphore': false,
    timeouts: [0, 0],
  };
}

export const COMMANDS: Readonly<Record<string, ControlHandler>> = {
  ping: () => ok('pong'),

  clock: (ctx) => ({ clock: ctx.clock.value }),

  hello: (ctx, args) => {
    if (args.from_node === ctx.hostname) return null;
    ctx.log.info(`sync with ${String(args.from_node)}`);
    const merged = maybeList(args.revoked);
    if (merged.length) ctx.worker.revoke(merged);
    return { revoked: [...ctx.worker.revokedTaskIds], clock: ctx.clock.forward() };
  },

  stats: (ctx) => {
    const { worker } = ctx;
    return {
      total: Object.fromEntries(worker.taskTotals),
      pid: process.pid,
      clock: String(ctx.clock.value),
      uptime: worker.uptimeSeconds,
      pool: poolInfo(worker),
      ...(worker.autoscaler ? { autoscaler: worker.autoscaler.info() } : {}),
      uuid: worker.uuid,
      broker: brokerInfo(ctx),
      prefetch_count: worker.currentPrefetch,
      rusage: rusage(),
    };
  },

  active: (ctx, args) => held(ctx, 'active').map((h) => requestInfo(ctx, h, truthy(args.safe))),
  dump_active: (ctx, args) => COMMANDS.active!(ctx, args),

  reserved: (ctx) => held(ctx, 'reserved').map((h) => requestInfo(ctx, h)),
  dump_reserved: (ctx, args) => COMMANDS.reserved!(ctx, args),

  scheduled: (ctx) =>
    held(ctx, 'scheduled').map((h) => ({
      eta: h.request.etaIso,
      priority: 6, // Celery's consumer puts ETA tasks on its timer with priority 6
      request: requestInfo(ctx, h),
    })),
  dump_schedule: (ctx, args) => COMMANDS.scheduled!(ctx, args),

  revoked: (ctx) => [...ctx.worker.revokedTaskIds],
  dump_revoked: (ctx, args) => COMMANDS.revoked!(ctx, args),

  registered: (ctx, args) =>
    registered(
      [...ctx.worker.app.tasks.values()].map((def) => ({ name: def.name, options: ctx.worker.effectiveTaskOptions(def) })),
      args.taskinfoitems,
      truthy(args.builtins),
    ),
  dump_tasks: (ctx, args) => COMMANDS.registered!(ctx, args),

  query_task: (ctx, args) => {
    const ids = new Set(maybeList(args.ids));
    const out: Record<string, [string, Record<string, unknown>]> = {};
    for (const h of held(ctx)) if (ids.has(h.request.id)) out[h.request.id] = [h.state, requestInfo(ctx, h)];
    return out;
  },

  active_queues: (ctx) =>
    ctx.worker.options.queues.map((name) => {
      const q = declarationFor(name, ctx.worker.options.queuePolicy ?? { definitions: null, maxPriority: null, missingQueueType: 'classic' });
      const args = q.arguments && Object.keys(q.arguments).length ? q.arguments : null;
      return {
        name: q.name,
        exchange: {
          name: q.exchange,
          type: q.exchangeType,
          arguments: null,
          durable: q.durable ?? true,
          passive: false,
          auto_delete: false,
          delivery_mode: null,
          no_declare: false,
        },
        routing_key: q.routingKey,
        queue_arguments: args,
        binding_arguments: null,
        consumer_arguments: null,
        durable: q.durable ?? true,
        exclusive: false,
        auto_delete: q.autoDelete ?? false,
        no_ack: false,
        alias: null,
        bindings: [],
        no_declare: null,
        expires: null,
        message_ttl: null,
        max_length: null,
        max_length_bytes: null,
        max_priority: typeof args?.['x-max-priority'] === 'number' ? args['x-max-priority'] : null,
      };
    }),

  conf: (ctx) => celeryConf(ctx.conf?.() ?? {}),
  dump_conf: (ctx, args) => COMMANDS.conf!(ctx, args),

  report: () =>
    ok(
      `software -> ${SOFTWARE_INFO.sw_ident}:${SOFTWARE_INFO.sw_ver} node:${process.version}\n` +
        `platform -> system:${SOFTWARE_INFO.sw_sys} arch:${os.arch()} release:${os.release()}\n`,
    ),

  revoke,

  enable_events: (ctx) => {
    if (!ctx.events) return nok('event dispatcher unavailable');
    if (ctx.events.enable()) {
      ctx.log.info('Events of group {task} enabled by remote.');
      return ok('task events enabled');
    }
    return ok('task events already enabled');
  },

  disable_events: (ctx) => {
    if (!ctx.events) return nok('event dispatcher unavailable');
    if (ctx.events.disable()) {
      ctx.log.info('Events of group {task} disabled by remote.');
      return ok('task events disabled');
    }
    return ok('task events already disabled');
  },

  heartbeat: (ctx) => {
    ctx.events?.heartbeat();
    return null;
  },

  shutdown: (ctx, args) => {
    ctx.log.warn(typeof args.msg === 'string' ? args.msg : 'Got shutdown from remote');
    return ok('shutdown');
  },

  ...TUNING_COMMANDS,
  ...CONSUMER_COMMANDS,
};
