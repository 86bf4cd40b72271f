// High-availability URLs, as kombu and Celery read them: sentinel:// lists with master_name and
// sentinel_kwargs (workers/redis/sentinel.ts), AMQP failover lists with broker_failover_strategy
// (workers/transports/amqp/failover.ts), and the config keys that carry them.
import { sentinelOptionsFromUrl } from '../../workers/redis/sentinel';
import { redisDbFromUrl } from '../../workers/redis/connect';
import { loadConfig } from '../../config';
import { BrokerRing, failoverUrls } from '../../workers/transports/amqp/failover';
import { createTransport } from '../../workers/transports';

const OPTS = { master_name: 'mymaster', sentinel_kwargs: { password: 'spw' } };

describe('sentinelOptionsFromUrl', () => {
  it("takes every ';'-separated Sentinel, the master's credentials and db from the first part", () => {
    const { options, ignored } = sentinelOptionsFromUrl('sentinel://u:pw@h1:26380/2;sentinel://h2;sentinel://h3:26381/2', OPTS);
    expect(options).toEqual({
      sentinels: [
        { host: 'h1', port: 26380 },
        { host: 'h2', port: 26379 },
        { host: 'h3', port: 26381 },
      ],
      name: 'mymaster',
      db: 2,
      username: 'u',
      password: 'pw',
      sentinelPassword: 'spw',
    });
    expect(ignored).toEqual([]);
  });

  it("maps sentinel_kwargs' username, and lists the keys it does not use", () => {
    const { options, ignored } = sentinelOptionsFromUrl('sentinel://h1', { master_name: 'm', sentinel_kwargs: { username: 'su', socket_timeout: 1 } });
    expect(options.sentinelUsername).toBe('su');
    expect(ignored).toEqual(['socket_timeout']);
  });

  it('fails without master_name, naming the setting (as kombu does)', () => {
    expect(() => sentinelOptionsFromUrl('sentinel://:secret@h1', {})).toThrow(/broker_transport_options\.master_name/);
    expect(() => sentinelOptionsFromUrl('sentinel://h1', {}, 'result_backend_transport_options')).toThrow(/result_backend_transport_options\.master_name/);
    expect(() => sentinelOptionsFromUrl('sentinel://:secret@h1', {})).not.toThrow(/secret/);
  });

  it('refuses a part that is not sentinel://, a bad db, and sentinel_kwargs that is not an object', () => {
    expect(() => sentinelOptionsFromUrl('sentinel://h1;redis://h2', OPTS)).toThrow(/every ';'-separated part must be sentinel/);
    expect(() => sentinelOptionsFromUrl('sentinel://h1/x', OPTS)).toThrow(/database must be a number/);
    expect(() => sentinelOptionsFromUrl('sentinel://h1', { master_name: 'm', sentinel_kwargs: 'pw' })).toThrow(/sentinel_kwargs must be an object/);
  });

  it('redisDbFromUrl reads the db of a sentinel list (fanout channels are /<db>.<exchange>)', () => {
    expect(redisDbFromUrl('sentinel://:pw@h1:26379/3;sentinel://h2:26379/3')).toBe(3);
    expect(redisDbFromUrl('sentinel://h1:26379')).toBe(0);
    expect(redisDbFromUrl('redis://h/5')).toBe(5);
  });
});

describe('HA config keys', () => {
  const load = (env: Record<string, string>): ReturnType<typeof loadConfig> => loadConfig({ envFile: null, env });

  it('takes sentinel:// broker and backend lists with their transport options from the environment', () => {
    const c = load({
      CELERY_BROKER_URL: 'sentinel://:pw@h1:26379;sentinel://h2:26379',
      CELERY_RESULT_BACKEND: 'sentinel://:pw@h1:26379/1;sentinel://h2:26379/1',
      CELERIAC_MASTER_NAME: 'mymaster',
      CELERIAC_SENTINEL_KWARGS: '{"password": "spw"}',
      CELERIAC_RESULT_BACKEND_TRANSPORT_OPTIONS: '{"master_name": "mymaster"}',
    });
    expect(c.celery.broker_transport_options.master_name).toBe('mymaster');
    expect(c.celery.broker_transport_options.sentinel_kwargs).toEqual({ password: 'spw' });
    expect(c.celery.result_backend_transport_options).toEqual({ master_name: 'mymaster' });
    expect(c.celery.result_backend).toBe('sentinel://:pw@h1:26379/1;sentinel://h2:26379/1');
  });

  it('takes an AMQP failover list and a failover strategy, and refuses an unknown strategy or a bad list member', () => {
    const c = load({ CELERY_BROKER_URL: 'amqp://h1//;amqp://h2//', CELERIAC_BROKER_FAILOVER_STRATEGY: 'shuffle' });
    expect(c.celery.broker_url).toBe('amqp://h1//;amqp://h2//');
    expect(c.celery.broker_failover_strategy).toBe('shuffle');
    expect(load({}).celery.broker_failover_strategy).toBe('round-robin');
    expect(() => load({ CELERIAC_BROKER_FAILOVER_STRATEGY: 'random' })).toThrow(/broker_failover_strategy.*round-robin, shuffle/s);
    expect(() => load({ CELERY_BROKER_URL: 'amqp://h1//;http://h2' })).toThrow(/broker_url/);
  });
});

describe('BrokerRing (broker_failover_strategy)', () => {
  it('round-robin starts at the first URL and cycles in order', () => {
    const ring = new BrokerRing(failoverUrls('amqp://h1//; amqp://h2// ;amqp://h3//;'));
    expect(ring.size).toBe(3);
    expect([ring.current, ring.next(), ring.next(), ring.next()]).toEqual(['amqp://h1//', 'amqp://h2//', 'amqp://h3//', 'amqp://h1//']);
  });

  it('shuffle visits every URL once per cycle, in a new order, not starting again on the one that just failed', () => {
    let seed = 7;
    const random = (): number => ((seed = (seed * 16807) % 2147483647) / 2147483647);
    const urls = ['amqp://a//', 'amqp://b//', 'amqp://c//', 'amqp://d//'];
    const ring = new BrokerRing(urls, 'shuffle', random);
    for (let cycle = 0; cycle < 20; cycle++) {
      const seen = [ring.current];
      for (let i = 1; i < urls.length; i++) seen.push(ring.next());
      expect([...seen].sort()).toEqual(urls);
      expect(ring.next()).not.toBe(seen[seen.length - 1]);
    }
  });

  it('failoverUrls refuses an empty list', () => {
    expect(() => failoverUrls(' ; ')).toThrow(/empty broker url/);
  });
});

describe('createTransport with a list', () => {
  it('refuses a redis:// list and a list mixing schemes, naming the URL with its password masked', () => {
    expect(() => createTransport('redis://:pw@h1/0;redis://h2/0', {})).toThrow(/redis:\/\/:\*\*@h1.*failover list works with amqp:\/\//);
    expect(() => createTransport('amqp://u:pw@h1//;redis://h2/0', {})).toThrow(/same scheme/);
    expect(() => createTransport('amqp://u:pw@h1//;redis://h2/0', {})).not.toThrow(/pw@/);
  });
});
