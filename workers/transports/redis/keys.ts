/** Key names of kombu's Redis transport (kombu/transport/redis.py Channel), global_keyprefix applied. */

export interface RedisKeyOptions {
  globalKeyprefix: string;
  /** Separator between queue name and priority step (kombu's `sep`, default '\x06\x16'). */
  sep: string;
  prioritySteps: readonly number[];
}

export const DEFAULT_KEY_OPTIONS: RedisKeyOptions = {
  globalKeyprefix: '',
  sep: '\x06\x16',
  prioritySteps: [0, 3, 6, 9],
};

export class RedisKeys {
  readonly unacked: string;
  readonly unackedIndex: string;
  readonly unackedMutex: string;
  private readonly steps: number[];

  constructor(readonly opts: RedisKeyOptions) {
    const p = opts.globalKeyprefix;
    this.unacked = `${p}unacked`;
    this.unackedIndex = `${p}unacked_index`;
    this.unackedMutex = `${p}unacked_mutex`;
    this.steps = [...opts.prioritySteps].sort((a, b) => a - b);
  }

  /** kombu's Channel.priority: the highest step that is <= n. */
  step(priority: number): number {
    let chosen = this.steps[0] ?? 0;
    for (const s of this.steps) if (s <= priority) chosen = s;
    return chosen;
  }

  /** kombu's _q_for_pri: step 0 is the bare queue name, others get sep + step appended. */
  queueKey(queue: string, priority = 0): string {
    const step = this.step(priority);
    return step ? `${this.opts.globalKeyprefix}${queue}${this.opts.sep}${step}` : `${this.opts.globalKeyprefix}${queue}`;
  }

  /** The BRPOP key order kombu uses: every queue at step 0, then every queue at the next step... */
  consumeKeys(queues: readonly string[]): { key: string; queue: string }[] {
    const keys: { key: string; queue: string }[] = [];
    for (const step of this.steps) for (const queue of queues) keys.push({ key: this.queueKey(queue, step), queue });
    return keys;
  }

  binding(exchange: string): string {
    return `${this.opts.globalKeyprefix}_kombu.binding.${exchange}`;
  }

  bindingPermanent(exchange: string): string {
    return `${this.opts.globalKeyprefix}_kombu.binding_permanent.${exchange}`;
  }

  /** A binding table member: routing_key, pattern, queue joined by sep. */
  bindingMember(routingKey: string, pattern: string, queue: string): string {
    return [routingKey, pattern, queue].join(this.opts.sep);
  }

  parseBindingMember(member: string): { routingKey: string; pattern: string; queue: string } {
    const [routingKey = '', pattern = '', queue = ''] = member.split(this.opts.sep);
    return { routingKey, pattern, queue };
  }
}
