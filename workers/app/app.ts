/**
 * The Celeriac app: the task registry and the connections both the worker and the producer use.
 * Like a Celery app, it is configured once and shared: `app.task(...)` in task modules, `app.sendTask`
 * from any TypeScript code.
 */
import type { Transport } from '../transports/transport';
import type { ResultBackend } from '../backends/backend';
import { createTransport } from '../transports';
import { createBackend } from '../backends';
import { buildTaskMessage, type TaskMessageOptions } from '../protocol/message';
import type { SerializerName } from '../protocol/serializers';
import { AsyncResult } from '../producer/asyncResult';
import type { ArgsTail, KnownTask, TaskArgs, TaskDefinition, TaskFn, TaskMap, TaskOptions, TaskResult } from './task';
import { Signature, type HostProvider } from '../canvas/signature';
import { producerHost } from '../canvas/host';
import { registerBuiltins } from '../canvas/builtins';
import type { CanvasHost, SigOptions } from '../canvas/types';

export interface AppLogger {
  /** pino's level check: lets the hot path skip building lines nobody will see. */
  isLevelEnabled?(level: string): boolean;
  info(msg: string): void;
  warn(msg: string): void;
  error(msg: string): void;
  debug(msg: string): void;
}

export const silentLogger: AppLogger = { info() {}, warn() {}, error() {}, debug() {} };

export interface AppOptions {
  /** One broker URL, or a failover list separated by ';' (amqp://h1//;amqp://h2//). */
  brokerUrl: string;
  /** Celery's broker_failover_strategy: which URL of a failover list comes next. */
  brokerFailoverStrategy?: 'round-robin' | 'shuffle';
  /** Flower's broker_api: RabbitMQ's management API, for unacked counts (Transport.queueCounts). */
  brokerApi?: string | null;
  /** null/'' disables results (Celery's DisabledBackend). */
  resultBackend: string | null;
  brokerTransportOptions: Record<string, unknown>;
  resultBackendTransportOptions: Record<string, unknown>;
  /** Celery's broker_use_ssl / redis_backend_use_ssl (null = the URL's own parameters only). */
  brokerUseSsl: Record<string, unknown> | null;
  redisBackendUseSsl: Record<string, unknown> | null;
  /** Celery's mongodb_backend_settings (mongodb:// results). */
  mongodbBackendSettings: Record<string, unknown> | null;
  /** Seconds; 0 = never expire. */
  resultExpires: number;
  resultExtended: boolean;
  defaultQueue: string;
  /** task name (or glob like 'reports.*') -> { queue }. */
  taskRoutes: Record<string, { queue?: string; priority?: number }>;
  taskSerializer: SerializerName;
  /** Config-wide defaults for every task (task_acks_late, task_track_started, ...). */
  taskDefaults: TaskOptions;
  logger: AppLogger;
}

export interface SendOptions extends Omit<TaskMessageOptions, 'embed'> {
  queue?: string;
  /** Publish to a named exchange instead of the default one. */
  exchange?: string;
  routingKey?: string;
  embed?: TaskMessageOptions['embed'];
}

export const DEFAULT_APP_OPTIONS: AppOptions = {
  brokerUrl: 'filesystem://',
  resultBackend: 'file://./data/results',
  brokerTransportOptions: {},
  resultBackendTransportOptions: {},
  brokerUseSsl: null,
  redisBackendUseSsl: null,
  mongodbBackendSettings: null,
  resultExpires: 86400,
  resultExtended: false,
  defaultQueue: 'celery',
  taskRoutes: {},
  taskSerializer: 'json',
  taskDefaults: {},
  logger: silentLogger,
};

/** A typed handle on a registered task: `add.delay(2, 3)`. N is its name, for TaskMapOf. */
export interface TaskHandle<A extends unknown[], R, N extends string = string> extends TaskDefinition<A, R> {
  readonly name: N;
  delay(...args: A): Promise<AsyncResult<Awaited<R>>>;
  applyAsync(args?: A, kwargs?: Record<string, unknown>, options?: SendOptions): Promise<AsyncResult<Awaited<R>>>;
  /** A signature with (some of) the arguments: `add.s(2)` gets the previous result as first argument in a chain. */
  s(...args: ArgsTail<A>): Signature<Awaited<R>>;
  /** An immutable signature: ignores the previous result in a chain or callback. */
  si(...args: A): Signature<Awaited<R>>;
  signature(args?: unknown[], kwargs?: Record<string, unknown>, options?: SigOptions): Signature<Awaited<R>>;
}

/**
 * The TaskMap of an object of task handles, for producers elsewhere: a task module exports
 * `type Tasks = TaskMapOf<ReturnType<typeof register>>` and a producer imports only that type.
 */
export type TaskMapOf<H> = {
  [K in keyof H as H[K] extends TaskHandle<infer _A, infer _R, infer N> ? N : never]: H[K] extends TaskHandle<infer A, infer R, string> ? (...args: A) => R : never;
};

/** A name that is not one of T's known tasks (those must go through the typed overloads). */
type UnknownTask<T extends TaskMap, N extends string> = N extends KnownTask<T> ? never : N;

function globToRegExp(glob: string): RegExp {
  return new RegExp(`^${glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`);
}

/**
 * T (optional) types the tasks this app calls by name: `new Celeriac<Tasks>(...)`, see TaskMap.
 * Names T does not know are sent as before, their result typed by the caller (`sendTask<number>`).
 */
export class Celeriac<T extends TaskMap = Record<never, never>> implements HostProvider {
  readonly options: AppOptions;
  readonly tasks = new Map<string, TaskDefinition>();
  private transportPromise: Promise<Transport> | null = null;
  private backendPromise: Promise<ResultBackend | null> | null = null;
  private hostPromise: Promise<CanvasHost> | null = null;
  private readonly taskOptionsCache = new WeakMap<TaskDefinition, { defaults: TaskOptions; options: Readonly<TaskOptions> }>();

  constructor(options: Partial<AppOptions> = {}) {
    this.options = { ...DEFAULT_APP_OPTIONS, ...options };
    registerBuiltins(this);
  }

  get log(): AppLogger {
    return this.options.logger;
  }

  task<A extends unknown[], R, N extends string = string>(name: N, fn: TaskFn<A, R>, options: TaskOptions = {}): TaskHandle<A, R, N> {
    if (!name) throw new Error('a task needs a name');
    const def: TaskDefinition<A, R> = { name, fn, options: Object.freeze({ ...options }) };
    this.tasks.set(name, def as unknown as TaskDefinition);
    return {
      ...def,
      name,
      delay: (...args: A) => this.sendByName<Awaited<R>>(name, args, {}, { queue: options.queue }),
      applyAsync: (args?: A, kwargs?: Record<string, unknown>, opts: SendOptions = {}) =>
        this.sendByName<Awaited<R>>(name, args ?? [], kwargs ?? {}, { queue: options.queue, ...opts }),
      s: (...args: ArgsTail<A>) => this.signatureByName<Awaited<R>>(name, args),
      si: (...args: A) => this.signatureByName<Awaited<R>>(name, args).set({}, true),
      signature: (args?: unknown[], kwargs?: Record<string, unknown>, opts?: SigOptions) => this.signatureByName<Awaited<R>>(name, args, kwargs, opts),
    };
  }

  /** A signature bound to this app (its applyAsync publishes through this app's broker). */
  signature<N extends KnownTask<T>>(name: N, args?: ArgsTail<TaskArgs<T[N]>>, kwargs?: Record<string, unknown>, options?: SigOptions): Signature<TaskResult<T[N]>>;
  signature<R = unknown, N extends string = string>(name: UnknownTask<T, N>, args?: readonly unknown[], kwargs?: Record<string, unknown>, options?: SigOptions): Signature<R>;
  signature<R = unknown>(name: string, args?: readonly unknown[], kwargs?: Record<string, unknown>, options?: SigOptions): Signature<R> {
    return this.signatureByName<R>(name, args, kwargs, options);
  }

  private signatureByName<R>(name: string, args: readonly unknown[] = [], kwargs: Record<string, unknown> = {}, options: SigOptions = {}): Signature<R> {
    return new Signature<R>(name, args, kwargs, { ...options }).bind(this);
  }

  /** How canvases are applied from this process (reply queue for rpc://, chord support of the backend). */
  canvasHost(): Promise<CanvasHost> {
    this.hostPromise ??= producerHost(this).catch((err: unknown) => {
      this.hostPromise = null;
      throw err;
    });
    return this.hostPromise;
  }

  /**
   * The effective options of a task: its own over the config-wide task defaults. Merged once per
   * task (and again if the defaults object is replaced), frozen and shared: the worker reads them
   * for every message (#16). Copy before changing.
   */
  taskOptions(def: TaskDefinition): Readonly<TaskOptions> {
    const defaults = this.options.taskDefaults;
    const cached = this.taskOptionsCache.get(def);
    if (cached && cached.defaults === defaults) return cached.options;
    const options = Object.freeze({ ...defaults, ...def.options });
    this.taskOptionsCache.set(def, { defaults, options });
    return options;
  }

  /** The broker connection, connected on first use and shared. */
  transport(): Promise<Transport> {
    this.transportPromise ??= (async () => {
      const t = createTransport(this.options.brokerUrl, this.options.brokerTransportOptions, this.log, {
        ssl: this.options.brokerUseSsl,
        failoverStrategy: this.options.brokerFailoverStrategy,
        brokerApi: this.options.brokerApi,
      });
      await t.connect().catch(async (err: unknown) => {
        await t.close().catch(() => undefined); // stop its reconnect attempts: the caller decides
        throw err;
      });
      return t;
    })();
    return this.transportPromise;
  }

  /** The result backend, or null when results are disabled. */
  backend(): Promise<ResultBackend | null> {
    this.backendPromise ??= (async () => {
      const url = this.options.resultBackend;
      if (!url) return null;
      const b = createBackend(url, {
        brokerUrl: this.options.brokerUrl,
        brokerFailoverStrategy: this.options.brokerFailoverStrategy,
        brokerSsl: this.options.brokerUseSsl,
        confirmPublish: this.options.brokerTransportOptions.confirm_publish === true,
        ssl: this.options.redisBackendUseSsl,
        mongodbSettings: this.options.mongodbBackendSettings,
        expires: this.options.resultExpires,
        transportOptions: this.options.resultBackendTransportOptions,
        logger: this.log,
      });
      await b.connect().catch(async (err: unknown) => {
        await b.close().catch(() => undefined);
        throw err;
      });
      return b;
    })();
    return this.backendPromise;
  }

  /** The queue a task goes to: explicit option, then task_routes, then the default queue. */
  routeFor(name: string, explicit?: string): { queue: string; priority?: number } {
    if (explicit) return { queue: explicit };
    for (const [pattern, route] of Object.entries(this.options.taskRoutes)) {
      if (pattern === name || (pattern.includes('*') && globToRegExp(pattern).test(name))) {
        return { queue: route.queue ?? this.options.defaultQueue, priority: route.priority };
      }
    }
    return { queue: this.options.defaultQueue };
  }

  /** Send a task by name (Celery's send_task); works for Celeriac and Python workers alike. */
  sendTask<N extends KnownTask<T>>(name: N, args: TaskArgs<T[N]>, kwargs?: Record<string, unknown>, options?: SendOptions): Promise<AsyncResult<TaskResult<T[N]>>>;
  sendTask<R = unknown, N extends string = string>(name: UnknownTask<T, N>, args?: readonly unknown[], kwargs?: Record<string, unknown>, options?: SendOptions): Promise<AsyncResult<R>>;
  sendTask<R = unknown>(name: string, args?: readonly unknown[], kwargs?: Record<string, unknown>, options?: SendOptions): Promise<AsyncResult<R>> {
    return this.sendByName<R>(name, args, kwargs, options);
  }

  private async sendByName<R>(name: string, args: readonly unknown[] = [], kwargs: Record<string, unknown> = {}, options: SendOptions = {}): Promise<AsyncResult<R>> {
    const route = this.routeFor(name, options.queue);
    const backend = await this.backend();
    // rpc:// results come back on this process's reply queue: Celery sets reply_to on every task.
    const replyTo = options.replyTo ?? (backend?.replyQueue ? await backend.replyQueue() : undefined);
    const { id, message } = buildTaskMessage(name, args, kwargs, {
      serializer: this.options.taskSerializer,
      priority: route.priority,
      ...options,
      replyTo,
    });
    const transport = await this.transport();
    await transport.publish({
      message,
      exchange: options.exchange ?? '',
      routingKey: options.routingKey ?? route.queue,
    });
    return new AsyncResult<R>(id, backend);
  }

  /** An AsyncResult for a task id sent elsewhere. */
  async asyncResult<R = unknown>(id: string): Promise<AsyncResult<R>> {
    return new AsyncResult<R>(id, await this.backend());
  }

  async close(): Promise<void> {
    const pending = [this.transportPromise, this.backendPromise];
    this.transportPromise = null;
    this.backendPromise = null;
    this.hostPromise = null;
    // A connection that never came up has nothing to close; the next use connects afresh.
    const [t, b] = await Promise.allSettled(pending);
    await Promise.all([
      t?.status === 'fulfilled' ? t.value?.close() : undefined,
      b?.status === 'fulfilled' ? b.value?.close() : undefined,
    ]);
  }
}
