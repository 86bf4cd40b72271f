/** Exchange routing over kombu's binding tables (direct, topic and fanout semantics). */

export interface Binding {
  routingKey: string;
  pattern: string;
  queue: string;
}

/** AMQP topic matching: '*' is exactly one word, '#' zero or more, words split on '.'. */
export function topicMatches(pattern: string, key: string): boolean {
  const p = pattern.split('.');
  const k = key.split('.');
  const match = (i: number, j: number): boolean => {
    if (i === p.length) return j === k.length;
    if (p[i] === '#') return match(i + 1, j) || (j < k.length && match(i, j + 1));
    if (j === k.length) return false;
    return (p[i] === '*' || p[i] === k[j]) && match(i + 1, j + 1);
  };
  return match(0, 0);
}

/** Queues bound to an exchange that receive `routingKey`: a pattern binding is topic, else direct. */
export function lookupQueues(table: readonly Binding[], routingKey: string): string[] {
  const out = new Set<string>();
  for (const b of table) {
    if (b.pattern ? topicMatches(b.pattern, routingKey) : b.routingKey === routingKey) out.add(b.queue);
  }
  return [...out];
}
