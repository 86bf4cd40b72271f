/**
 * The caller's side of remote control (kombu's Mailbox as `celery inspect` uses it): broadcast a
 * command on `celery.pidbox` and collect the `{hostname: reply}` answers that arrive on our own
 * reply queue within the timeout. Python and Celeriac workers answer alike.
 */
import { randomUUID } from 'node:crypto';
import type { BrokerMessage, Delivery, Transport } from '../transports/transport';
import { PIDBOX_EXCHANGE, REPLY_EXCHANGE } from './mailbox';

export interface CallOptions {
  /** Only these node names answer (absent: every worker). */
  destination?: string[];
  /** Seconds to collect replies (Celery's default 1.0). */
  timeout?: number;
  /** Stop early after this many replies (e.g. the destination's length). */
  limit?: number;
}

export type Replies = Record<string, unknown>;

export class ControlClient {
  /** Our mailbox id: the reply queue's routing key, as kombu's Mailbox.oid. */
  private readonly oid = randomUUID();
  private readonly waiting = new Map<string, (hostname: string, reply: unknown) => void>();
  private started: Promise<void> | null = null;

  constructor(private readonly transport: Transport) {}

  /** Broadcast `method` and return each node's reply, by node name. */
  async call(method: string, args: Record<string, unknown> = {}, opts: CallOptions = {}): Promise<Replies> {
    await (this.started ??= this.listen());
    const ticket = randomUUID();
    const timeout = opts.timeout ?? 1;
    const replies: Replies = {};
    const done = new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, timeout * 1000);
      this.waiting.set(ticket, (hostname, reply) => {
        replies[hostname] = reply;
        if (opts.limit !== undefined && Object.keys(replies).length >= opts.limit) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
    await this.publish(method, args, opts.destination ?? null, timeout, { ticket, reply_to: { exchange: REPLY_EXCHANGE.name, routing_key: this.oid } });
    await done;
    this.waiting.delete(ticket);
    return replies;
  }

  /**
   * Broadcast `method` without waiting for replies (Celery's control.revoke and other casts):
   * no reply queue is declared, nothing is consumed.
   */
  async cast(method: string, args: Record<string, unknown> = {}, opts: { destination?: string[] } = {}): Promise<void> {
    await this.publish(method, args, opts.destination ?? null, 1, {});
  }

  private async publish(method: string, args: Record<string, unknown>, destination: string[] | null, timeout: number, reply: Record<string, unknown>): Promise<void> {
    const body = { method, arguments: args, destination, pattern: null, matcher: null, ...reply };
    const message: BrokerMessage = {
      body: Buffer.from(JSON.stringify(body), 'utf8'),
      contentType: 'application/json',
      contentEncoding: 'utf-8',
      headers: { clock: 0, expires: Date.now() / 1000 + timeout },
      properties: { delivery_mode: 1, priority: 0 },
    };
    if (!this.transport.broadcast) throw new Error(`remote control is not available on the ${this.transport.kind} broker`);
    await this.transport.declareExchange?.(PIDBOX_EXCHANGE);
    await this.transport.broadcast(PIDBOX_EXCHANGE, '', message);
  }

  /** Our reply queue, `<oid>.reply.celery.pidbox`, bound to the reply exchange by our oid. */
  private async listen(): Promise<void> {
    await this.transport.declareExchange?.(REPLY_EXCHANGE);
    const name = `${this.oid}.${REPLY_EXCHANGE.name}`;
    await this.transport.declareQueue({ name, exchange: REPLY_EXCHANGE.name, exchangeType: 'direct', routingKey: this.oid, durable: false, autoDelete: true });
    this.transport.setPrefetch(0);
    await this.transport.consume([name], (d) => this.onReply(d));
  }

  private onReply(delivery: Delivery): void {
    void this.transport.ack(delivery);
    const ticket = delivery.message.headers.ticket;
    const deliver = typeof ticket === 'string' ? this.waiting.get(ticket) : undefined;
    if (!deliver) return; // a late answer to a call that already timed out
    try {
      const body = JSON.parse(delivery.message.body.toString('utf8')) as Record<string, unknown>;
      for (const [hostname, reply] of Object.entries(body)) deliver(hostname, reply);
    } catch {
      /* not a pidbox reply: ignore it, as kombu does with undecodable replies */
    }
  }
}
