/**
 * Celery's remote control for a Celeriac worker (celery/worker/pidbox.py + kombu's pidbox Node):
 * listens on the `celery.pidbox` broadcast, runs the command when it is meant for this node and
 * replies to the caller's reply queue through `reply.celery.pidbox`.
 *
 *   const control = new RemoteControl({ worker, hostname, clock, log, conf, events, shutdown });
 *   await worker.start(); await control.start();   // false when the transport cannot broadcast
 *   ...; await control.stop();                     // before the app closes its connection
 */
import type { Transport } from '../transports/transport';
import { COMMANDS, type ControlContext, type ControlHandler } from './commands';
import { isForNode, NODE_QUEUE_ARGUMENTS, nodeQueueName, parseControlRequest, PIDBOX_EXCHANGE, REPLY_EXCHANGE, replyMessage, type ControlRequest } from './mailbox';

export { COMMANDS, requestInfo, pyIsoformat, type ControlContext, type EventsSwitch, type ControlLogger } from './commands';
export * from './mailbox';

export class RemoteControl {
  private unsubscribe: (() => Promise<void>) | null = null;
  private transport: Transport | null = null;
  /** Commands run one after the other, as kombu's Node handles them. */
  private chain: Promise<void> = Promise.resolve();

  constructor(private readonly ctx: ControlContext) {}

  /** Start listening. Resolves false (and logs) when the transport has no broadcast consumer. */
  async start(): Promise<boolean> {
    const transport = await this.ctx.worker.app.transport();
    this.transport = transport;
    if (!transport.subscribeBroadcast) {
      this.ctx.log.info(`remote control: the ${transport.kind} transport cannot broadcast; celery inspect/control will not reach this worker`);
      return false;
    }
    this.unsubscribe = await transport.subscribeBroadcast(
      PIDBOX_EXCHANGE,
      { name: nodeQueueName(this.ctx.hostname), arguments: { ...NODE_QUEUE_ARGUMENTS } },
      (message) => {
        let req: ControlRequest;
        try {
          req = parseControlRequest(message);
        } catch (err) {
          this.ctx.log.error(`Cannot decode control message: ${(err as Error).message}`);
          return;
        }
        this.chain = this.chain.then(() => this.handle(req)).catch((err: Error) => this.ctx.log.error(`Control command error: ${err.message}`));
      },
    );
    return true;
  }

  async stop(): Promise<void> {
    const unsubscribe = this.unsubscribe;
    this.unsubscribe = null;
    await unsubscribe?.().catch(() => undefined);
    await this.chain;
  }

  /** Node.handle_message + dispatch: run the command, reply when asked to. */
  async handle(req: ControlRequest): Promise<void> {
    this.ctx.clock.adjust(req.clock);
    if (!isForNode(req, this.ctx.hostname)) return;
    const handler: ControlHandler | undefined = Object.prototype.hasOwnProperty.call(COMMANDS, req.method) ? COMMANDS[req.method] : undefined;
    let reply: unknown;
    try {
      if (!handler) throw Object.assign(new Error(`'${req.method}'`), { pyRepr: `KeyError('${req.method}')` });
      reply = await handler({ ...this.ctx, connectedBrokerUrl: this.transport?.connectedUrl?.() }, req.arguments);
    } catch (err) {
      const e = err as Error & { pyRepr?: string };
      this.ctx.log.error(handler ? `pidbox command error: ${e.message}` : `No such control command: ${req.method}`);
      reply = { error: e.pyRepr ?? `${e.name}(${JSON.stringify(e.message)})` };
    }
    if (req.replyTo && this.transport) {
      const message = replyMessage(this.ctx.hostname, reply, req.ticket, this.ctx.clock.forward());
      try {
        if (this.transport.declareExchange) await this.transport.declareExchange(REPLY_EXCHANGE);
        await this.transport.publish({ message, exchange: req.replyTo.exchange, routingKey: req.replyTo.routing_key });
      } catch (err) {
        this.ctx.log.warn(`remote control: could not reply to ${req.method}: ${(err as Error).message}`);
      }
    }
    if (req.method === 'shutdown' && handler) this.ctx.shutdown?.();
  }
}
