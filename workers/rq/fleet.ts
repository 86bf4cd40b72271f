/**
 * rq workers in `celeriac workers list`: they answer no Celery remote control, so the list reads
 * the records rq keeps (`rq:workers`, `rq:worker:<name>`) on the broker's Redis, as `rq info` does.
 */
import { brokerUrlOf, closeRedis, connectRedis, type FleetSource, type WorkerRow } from '../index';
import { rqKey } from './keys';

const WORKERS_SET = 'rq:workers';

/** rq's utcformat text ('2026-12-06T03:04:05.123456Z') to epoch milliseconds, or null. */
function parseRqTime(text: string | undefined): number | null {
  const ms = text ? Date.parse(text.replace(/(\.\d{3})\d*Z$/, '$1Z')) : NaN;
  return Number.isNaN(ms) ? null : ms;
}

export function rowFromRecord(name: string, record: Record<string, string>, now = Date.now()): WorkerRow {
  const birth = parseRqTime(record.birth);
  const count = (field: string): number => Number(record[field] ?? 0) || 0;
  return {
    kind: 'rq',
    hostname: name,
    uuid: null,
    pid: record.pid ? Number(record.pid) : null,
    pool: null,
    active: record.current_job ? 1 : 0,
    processed: count('successful_job_count') + count('failed_job_count'),
    uptime: birth === null ? null : Math.max(0, Math.round((now - birth) / 1000)),
  };
}

export const rqFleetSource: FleetSource = {
  kind: 'rq',
  async list(config) {
    // One Redis holds rq's records; a failover list (Sentinel or ';'-joined) is not rq's layout.
    const url = brokerUrlOf(config);
    if (!/^(rediss?|redis\+socket|unix):/.test(url)) return [];
    // One attempt, no reconnect loop: a list must answer, not wait for an outage to end.
    const redis = connectRedis(url, { options: { maxRetriesPerRequest: 1, retryStrategy: () => null } });
    try {
      await redis.connect();
      const keys = (await redis.smembers(WORKERS_SET)).sort();
      const rows: WorkerRow[] = [];
      for (const key of keys) {
        const name = key.startsWith(rqKey.worker('')) ? key.slice(rqKey.worker('').length) : key;
        const record = await redis.hgetall(key);
        // A record whose TTL ran out (a worker killed with -9) is not a live worker.
        if (Object.keys(record).length) rows.push(rowFromRecord(name, record));
      }
      return rows;
    } finally {
      await closeRedis(redis);
    }
  },
};
