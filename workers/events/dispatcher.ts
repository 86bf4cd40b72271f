/**
 * Celery's EventDispatcher (celery/events/dispatcher.py, celery/events/event.py): monitoring
 * events as Celery's own worker sends them, so `celery events`, Flower and any
 * app.events.Receiver read a Celeriac worker like a Python one.
 *
 * An event is a JSON object: hostname, utcoffset, pid, clock, the event's own fields, timestamp
 * and type. It goes to the `celeryev` exchange with routing key = type with '-' -> '.'
 * ('worker-heartbeat' -> 'worker.heartbeat'), header {hostname}, delivery_mode 1 (transient),
 * json serializer (Celery's event_serializer default). Sending is fire-and-forget: a broker
 * outage loses events, it never fails a task.
 */
import type { BroadcastExchange, BrokerMessage, Transport } from '../transports/transport';
import { LamportClock } from './clock';

/**
 * Celery's event_exchange: kombu Exchange('celeryev', type='topic'), durable as every kombu
 * Exchange by default. Receivers declare it the same way, so other flags would fail one side
 * with PRECONDITION_FAILED on AMQP. (On Redis kombu turns it into a fanout; the Redis transport's
 * broadcast is PUB/SUB whatever the type.)
 */
export const EVENT_EXCHANGE: BroadcastExchange = { name: 'celeryev', type: 'topic', durable: true, autoDelete: false };

export type EventFields = Record<string, unknown>;

export interface CeleryEvent extends EventFields {
  type: string;
  hostname: string;
  utcoffset: number;
  pid: number;
  clock: number;
  timestamp: number;
}

export interface DispatcherLogger {
  info(msg: string): void;
  warn(msg: string): void;
}

export interface DispatcherOptions {
  /** The worker's node name (name@host). */
  hostname: string;
  /** The broker connection, asked for per send (the app's shared transport). */
  transport: () => Promise<Transport>;
  logger?: DispatcherLogger;
  pid?: number;
  clock?: LamportClock;
}

/**
 * celery.utils.time.utcoffset(): hours WEST of UTC (time.altzone in DST, else time.timezone),
 * the sign of JavaScript's getTimezoneOffset(). Receivers use it to adjust timestamps.
 */
export function utcoffset(now = new Date()): number {
  return now.getTimezoneOffset() / 60;
}

export class EventDispatcher {
  readonly hostname: string;
  readonly pid: number;
  readonly clock: LamportClock;
  private closed = false;
  private failing = false;
  private unsupported = false;

  constructor(private readonly opts: DispatcherOptions) {
    this.hostname = opts.hostname;
    this.pid = opts.pid ?? process.pid;
    this.clock = opts.clock ?? new LamportClock();
  }

  /** Celery's _prepare_event + Event(): the clock moves forward once per event. */
  event(type: string, fields: EventFields = {}): CeleryEvent {
    const ev: EventFields = { hostname: this.hostname, utcoffset: utcoffset(), pid: this.pid, clock: this.clock.forward(), ...fields };
    if (!('timestamp' in ev)) ev.timestamp = Date.now() / 1000;
    ev.type = type;
    return ev as CeleryEvent;
  }

  /** The broker message kombu's Producer.publish makes of an event (dispatcher._publish). */
  message(ev: CeleryEvent): BrokerMessage {
    return {
      body: Buffer.from(JSON.stringify(ev), 'utf8'),
      contentType: 'application/json',
      contentEncoding: 'utf-8',
      headers: { hostname: this.hostname },
      properties: { delivery_mode: 1 },
    };
  }

  /** Celery's send(): never rejects. Resolves once the broker has the event, or it was dropped. */
  async send(type: string, fields: EventFields = {}): Promise<void> {
    if (this.closed || this.unsupported) return;
    const ev = this.event(type, fields);
    try {
      const transport = await this.opts.transport();
      if (!transport.broadcast) {
        this.unsupported = true;
        // Info, not a warning: the default (filesystem) setup hits this, as Celery silently disables events on 'sql'.
        this.opts.logger?.info(`events: the ${transport.kind} transport cannot broadcast; no monitoring events are sent`);
        return;
      }
      await transport.broadcast(EVENT_EXCHANGE, type.replace(/-/g, '.'), this.message(ev));
      if (this.failing) this.opts.logger?.info('events: sending again');
      this.failing = false;
    } catch (err) {
      // One line per outage, not one per heartbeat.
      if (!this.failing) this.opts.logger?.warn(`events: could not send ${type} (${(err as Error).message}); dropping events until the broker answers`);
      this.failing = true;
    }
  }

  /** No more sends: later ones would otherwise reopen a connection the app has closed. */
  close(): void {
    this.closed = true;
  }
}
