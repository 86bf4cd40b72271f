/**
 * Celery's broker failover for AMQP: `broker_url = 'amqp://h1//;amqp://h2//'` (or a list) with
 * `broker_failover_strategy` round-robin (the default) or shuffle. As in kombu's
 * Connection.ensure_connection, a failed connect moves on to the next URL at once, and only
 * after a whole cycle over the list without success does the caller back off. The first
 * connection goes to the first URL (kombu: the cycle's first entry is the primary).
 */
import type { ChannelModel } from 'amqplib';
import { lazyModule } from '../../lazy';

// Loaded by the first AMQP connection: a Redis worker never pays for it (issue #16).
const amqplib = lazyModule<typeof import('amqplib')>('amqplib');
import { maskUrl } from '../../log/mask';
import { amqpTargetFromUrl } from './url';

export type FailoverStrategy = 'round-robin' | 'shuffle';

/** kombu's connect_timeout (4 s): a node that vanished without a RST must not hold the failover. */
const CONNECT_TIMEOUT_MS = 4_000;

/** The URLs of a failover list (';'-separated), blanks dropped. */
export function failoverUrls(url: string): string[] {
  const urls = url
    .split(';')
    .map((u) => u.trim())
    .filter((u) => u !== '');
  if (urls.length === 0) throw new Error('empty broker url');
  return urls;
}

/**
 * Where a failover list stands. Shuffle: each cycle visits every URL once in a new random
 * order (kombu's shufflecycle draws at random each time and may retry the node that just failed).
 */
export class BrokerRing {
  private order: string[];
  private index = 0;

  constructor(
    readonly urls: readonly string[],
    private readonly strategy: FailoverStrategy = 'round-robin',
    private readonly random: () => number = Math.random,
  ) {
    if (urls.length === 0) throw new Error('a failover list needs at least one url');
    this.order = [...urls];
  }

  get current(): string {
    return this.order[this.index]!;
  }

  get size(): number {
    return this.order.length;
  }

  /** Moves to the next URL. */
  next(): string {
    const left = this.current;
    this.index++;
    if (this.index >= this.order.length) {
      this.index = 0;
      if (this.strategy === 'shuffle') this.order = this.shuffled(left);
    }
    return this.current;
  }

  /** A new random order that does not start with `avoid` (the node that just failed), when it can. */
  private shuffled(avoid: string): string[] {
    const a = [...this.urls];
    for (let i = a.length - 1; i > 0; i--) {
      const j = Math.floor(this.random() * (i + 1));
      [a[i], a[j]] = [a[j]!, a[i]!];
    }
    if (a.length > 1 && a[0] === avoid) [a[0], a[1]] = [a[1]!, a[0]!];
    return a;
  }
}

export interface AmqpConnected {
  model: ChannelModel;
  url: string;
}

/**
 * One connect attempt per URL of the ring, starting at its current one, until one answers; the
 * ring is left on the URL that answered. Throws an error naming every URL tried (masked).
 */
export async function connectAnyOf(ring: BrokerRing, heartbeatSeconds: number, ssl: Record<string, unknown>): Promise<AmqpConnected> {
  const failures: string[] = [];
  let last: unknown;
  for (let tried = 0; tried < ring.size; tried++) {
    const url = ring.current;
    try {
      const target = amqpTargetFromUrl(url, heartbeatSeconds, ssl);
      const model = await amqplib().connect(target.connect, { timeout: CONNECT_TIMEOUT_MS, ...target.socket });
      return { model, url };
    } catch (err) {
      last = err;
      failures.push(`${maskUrl(url)}: ${(err as Error).message}`);
      ring.next();
    }
  }
  if (ring.size === 1) throw last;
  throw new Error(`no broker of the failover list answered (${failures.join('; ')})`, { cause: last });
}
