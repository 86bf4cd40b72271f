/**
 * The one interface every broker adapter implements (kombu's virtual Channel, reduced to what a
 * worker and a producer need). A transport moves opaque envelopes; it knows nothing of tasks.
 */

/** A message as kombu carries it: body bytes plus the AMQP-style header/property tables. */
export interface BrokerMessage {
  body: Buffer;
  contentType: string;
  contentEncoding: string;
  headers: Record<string, unknown>;
  properties: MessageProperties;
}

export interface MessageProperties {
  correlation_id?: string;
  reply_to?: string;
  delivery_mode?: number;
  priority?: number;
  [key: string]: unknown;
}

/** One message handed to the consumer; ack or reject it exactly once. */
export interface Delivery {
  message: BrokerMessage;
  /** kombu's delivery_tag (a uuid on virtual transports, a channel counter on AMQP). */
  deliveryTag: string;
  queue: string;
  exchange: string;
  routingKey: string;
  redelivered: boolean;
}

export interface QueueDeclaration {
  name: string;
  exchange: string;
  exchangeType: 'direct' | 'topic' | 'fanout';
  routingKey: string;
  durable?: boolean;
  autoDelete?: boolean;
  /** AMQP queue arguments (x-max-priority, x-expires, ...). */
  arguments?: Record<string, unknown>;
}

export interface PublishRequest {
  message: BrokerMessage;
  /** '' is the default (anonymous) exchange: routingKey is then the queue name. */
  exchange: string;
  routingKey: string;
}

export type DeliveryHandler = (delivery: Delivery) => void;

/** An exchange for broadcast traffic (Celery's `celeryev`), declared as the sender needs it on AMQP. */
export interface BroadcastExchange {
  name: string;
  /** AMQP exchange type; Redis ignores it (kombu turns such exchanges into PUB/SUB fanout there). */
  type: 'topic' | 'fanout' | 'direct';
  durable: boolean;
  autoDelete?: boolean;
}

/**
 * Why a count is missing: `scope: 'broker'` is the same for every queue (this broker does not
 * track it, or a setting is missing: say it once), `scope: 'queue'` is this query's own failure
 * (say it on that queue's line).
 */
export interface MissingCount {
  scope: 'broker' | 'queue';
  reason: string;
}

/** What a monitor shows of a queue (Flower's broker view): waiting, and held by consumers unacked. */
export interface QueueCounts {
  /** Messages waiting to be delivered (what queueDepth counts). */
  ready: number;
  unacked: number | MissingCount;
}

export interface Transport {
  /** 'redis', 'filesystem', 'amqp' — shown in logs and stats. */
  readonly kind: string;
  /** Of a failover list, the URL of the node connected to now (stats.broker reports it, as kombu). */
  connectedUrl?(): string;
  connect(): Promise<void>;
  declareQueue(queue: QueueDeclaration): Promise<void>;
  /**
   * Start delivering messages from `queues`. The transport never holds more than the prefetch
   * limit of unacknowledged deliveries (0 = no limit), like basic.qos.
   */
  consume(queues: string[], onDelivery: DeliveryHandler): Promise<void>;
  setPrefetch(count: number): void;
  /**
   * Celery's add_consumer: while consuming, take messages from one more (already declared) queue
   * too, with the same handler. A queue already consumed is left as it is.
   */
  addQueue(queue: string): Promise<void>;
  /**
   * Celery's cancel_consumer: take no new message from `queue` once this resolves; deliveries
   * already handed out from it stay valid for ack/reject.
   */
  cancelQueue(queue: string): Promise<void>;
  /** Stop fetching new messages; deliveries already handed out stay valid for ack/reject. */
  stopConsuming(): Promise<void>;
  /**
   * Messages waiting in `queue` (not handed to any consumer), for the metrics endpoint. Absent
   * where the broker cannot tell.
   */
  queueDepth?(queue: string): Promise<number>;
  /**
   * Ready and unacked messages of `queue` (`celeriac queues`). Rejects only when the ready count
   * cannot be read; an unacked count that cannot be had comes back as a MissingCount.
   */
  queueCounts?(queue: string): Promise<QueueCounts>;
  /**
   * Delete the messages waiting in `queue` (Celery's `purge`; messages held by workers are
   * untouched) and return how many there were. Absent where the broker cannot.
   */
  purgeQueue?(queue: string): Promise<number>;
  ack(delivery: Delivery): Promise<void>;
  /** requeue=true puts it back at the tail of its queue (kombu's reject(requeue=True)). */
  reject(delivery: Delivery, requeue: boolean): Promise<void>;
  publish(request: PublishRequest): Promise<void>;
  /**
   * Send to whoever listens on a broadcast exchange right now, nothing stored for later (monitoring
   * events): Redis PUBLISH as kombu's _put_fanout, AMQP a basic.publish without waiting for the
   * confirm. Absent where the transport has no such path (filesystem).
   */
  broadcast?(exchange: BroadcastExchange, routingKey: string, message: BrokerMessage): Promise<void>;
  /**
   * Listen on a fanout exchange (Celery's `celery.pidbox` remote control) as kombu's Node does:
   * Redis SUBSCRIBEs to the exchange's PUB/SUB channel, AMQP declares `queue` (non-durable,
   * exclusive, auto-delete, with `arguments`) bound to the exchange and consumes it without acks.
   * Resolves once listening; the returned function stops listening.
   */
  subscribeBroadcast?(
    exchange: BroadcastExchange,
    queue: { name: string; arguments?: Record<string, unknown> },
    onMessage: (message: BrokerMessage) => void,
  ): Promise<() => Promise<void>>;
  /** Declare an exchange before publishing to it (kombu's maybe_declare); absent where not needed (Redis). */
  declareExchange?(exchange: BroadcastExchange): Promise<void>;
  /**
   * False once a delivery can no longer be acked because its connection died and the broker has
   * already put the message back (AMQP): a worker must then not start it. Absent = always live.
   */
  isLive?(delivery: Delivery): boolean;
  /**
   * The worker is about to run this delivery's task before acking it (acks_late). A transport that
   * holds back its record of a delivered message until it knows whether the message is acked as
   * its task starts (Redis: BRPOP's message) must make that record now, so that the message
   * outlives this process dying during the task. Absent where the broker keeps every delivery
   * unacked by itself (AMQP).
   */
  beforeRunUnacked?(delivery: Delivery): void;
  /** Close connections. Unacked deliveries are returned to their queues (restore_unacked). */
  close(): Promise<void>;
}
