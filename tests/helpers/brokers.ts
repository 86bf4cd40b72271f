/**
 * The two broker setups a parity file runs its suite on, for describe.each: Redis (broker and
 * results in their own dbs) and RabbitMQ (a fresh vhost, results in a Redis db). Each env()
 * empties what it uses and returns Python's BROKER_URL / RESULT_BACKEND.
 *
 *   brokerSetups({ redis: [brokerDb, resultsDb], rabbit: { vhost, resultsDb } })
 *     -> [{ broker: 'Redis', env }, { broker: 'RabbitMQ', env }]
 */
import { testRedisUrl } from './env';
import { flushDb } from './redis';
import { freshVhost } from './rabbit';

export interface BrokerSetup {
  broker: 'Redis' | 'RabbitMQ';
  env: () => Promise<Record<string, string>>;
}

export function brokerSetups(dbs: { redis: [number, number]; rabbit: { vhost: string; resultsDb: number } }): BrokerSetup[] {
  const [brokerDb, resultsDb] = dbs.redis;
  return [
    {
      broker: 'Redis',
      env: async () => {
        await flushDb(brokerDb);
        await flushDb(resultsDb);
        return { BROKER_URL: testRedisUrl(brokerDb), RESULT_BACKEND: testRedisUrl(resultsDb) };
      },
    },
    {
      broker: 'RabbitMQ',
      env: async () => {
        await flushDb(dbs.rabbit.resultsDb);
        return { BROKER_URL: await freshVhost(dbs.rabbit.vhost), RESULT_BACKEND: testRedisUrl(dbs.rabbit.resultsDb) };
      },
    },
  ];
}
