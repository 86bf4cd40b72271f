/**
 * kombu's fanout over Redis PUB/SUB (kombu/transport/redis.py: keyprefix_fanout, fanout_prefix,
 * fanout_patterns, _get_publish_topic, _put_fanout). A message sent to a fanout exchange is not
 * queued: it is PUBLISHed, as its JSON envelope, on a channel named after the exchange, and every
 * subscriber connected at that moment gets it (Celery's event receivers, Flower, `celery events`).
 */

export interface FanoutOptions {
  /**
   * kombu's fanout_prefix: true = '/{db}.' (the default since kombu 4), false = no prefix (what
   * kombu < 4 used), a string = that prefix. '{db}' is filled with the database number, as
   * kombu's Transport does when it connects.
   */
  fanoutPrefix: boolean | string;
  /** kombu's fanout_patterns: the routing key becomes part of the channel name (receivers PSUBSCRIBE). */
  fanoutPatterns: boolean;
  /** global_keyprefix: kombu's PrefixedStrictRedis prefixes PUBLISH's channel like any key. */
  globalKeyprefix: string;
  db: number;
}

export const DEFAULT_FANOUT: Omit<FanoutOptions, 'globalKeyprefix' | 'db'> = { fanoutPrefix: true, fanoutPatterns: true };

/** The channel kombu PUBLISHes a fanout message on (after global_keyprefix, as it reaches Redis). */
export function fanoutChannel(opts: FanoutOptions, exchange: string, routingKey: string): string {
  const template = opts.fanoutPrefix === true ? '/{db}.' : opts.fanoutPrefix === false ? '' : opts.fanoutPrefix;
  const prefix = template.split('{db}').join(String(opts.db));
  const topic = routingKey && opts.fanoutPatterns ? `${prefix}${exchange}/${routingKey}` : `${prefix}${exchange}`;
  return `${opts.globalKeyprefix}${topic}`;
}
