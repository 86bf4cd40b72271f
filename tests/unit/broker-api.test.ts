// broker_api (Flower's option for RabbitMQ's management API): the config key, and the request
// `celeriac queues` makes for a queue's unacked count (workers/transports/amqp/management.ts):
// vhost from the broker URL, always percent-encoded; credentials from the API URL, else from the
// broker URL; never in the URL fetched; the password masked where the URL is shown.
import { loadConfig } from '../../config';
import { managementRequest } from '../../workers/transports/amqp/management';

const basic = (userPass: string): string => `Basic ${Buffer.from(userPass).toString('base64')}`;

describe('broker_api config', () => {
  const load = (env: Record<string, string>) => loadConfig({ env: { APP_ENV: 'development', ...env } });

  it('is unset by default, set from CELERIAC_BROKER_API, and must be an http(s) URL', () => {
    expect(load({}).celery.broker_api).toBeNull();
    expect(load({ CELERIAC_BROKER_API: '' }).celery.broker_api).toBeNull();
    expect(load({ CELERIAC_BROKER_API: 'http://u:p@rabbit:15672/api/' }).celery.broker_api).toBe('http://u:p@rabbit:15672/api/');
    expect(() => load({ CELERIAC_BROKER_API: 'amqp://rabbit:15672/api/' })).toThrow(/broker_api.*http:\/\/ or https:\/\//s);
  });
});

describe('managementRequest', () => {
  it("asks for one queue on the broker URL's vhost, encoded ('/' as %2F, 'a/b' as a%2Fb)", () => {
    expect(managementRequest('http://h:15672/api/', 'amqp://guest:guest@h:5672//', 'celery').url).toBe('http://h:15672/api/queues/%2F/celery');
    expect(managementRequest('http://h:15672/api/', 'amqp://h', 'celery').url).toBe('http://h:15672/api/queues/%2F/celery');
    expect(managementRequest('http://h:15672/api/', 'amqp://h/a%2Fb', 'q one').url).toBe('http://h:15672/api/queues/a%2Fb/q%20one');
    // No trailing slash: still under /api/ (Flower's urljoin would drop the last segment).
    expect(managementRequest('https://h/rabbit/api', 'amqps://h/prod', 'celery').url).toBe('https://h/rabbit/api/queues/prod/celery');
  });

  it('takes the user and password from the API URL, else from the broker URL, and never puts them in the URL fetched', () => {
    const own = managementRequest('http://admin:s%40cret@h:15672/api/', 'amqp://app:apppw@h//', 'celery');
    expect(own.authorization).toBe(basic('admin:s@cret'));
    expect(own.url).toBe('http://h:15672/api/queues/%2F/celery');
    expect(own.shown).toBe('http://admin:**@h:15672/api/queues/%2F/celery');
    expect(managementRequest('http://h:15672/api/', 'amqp://app:apppw@h//', 'celery').authorization).toBe(basic('app:apppw'));
    expect(managementRequest('http://h:15672/api/', 'amqp://h//', 'celery').authorization).toBe(basic('guest:guest'));
  });
});
