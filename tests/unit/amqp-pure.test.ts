import { tlsOptions } from '../../workers/tls';
import { Celeriac } from '../../workers/app/app';
import { amqpTargetFromUrl } from '../../workers/transports/amqp/url';
import { declarationFor } from '../../workers/worker/queues';

describe('amqp urls as kombu reads them', () => {
  it.each([
    ['amqp://guest:guest@localhost:5672//', '/'],
    ['amqp://guest:guest@localhost:5672/', '/'],
    ['amqp://guest:guest@localhost', '/'],
    ['amqp://u:p@h/prod', 'prod'],
    ['amqp://u:p@h/%2Fweird', '/weird'],
  ])('%s -> vhost %s', (url, vhost) => {
    expect(amqpTargetFromUrl(url).connect.vhost).toBe(vhost);
  });
  it('reads credentials, port and TLS', () => {
    const t = amqpTargetFromUrl('amqps://user:p%40ss@rabbit:5999/v?ssl_cert_reqs=CERT_NONE');
    expect(t.connect).toMatchObject({ protocol: 'amqps', hostname: 'rabbit', port: 5999, username: 'user', password: 'p@ss', vhost: 'v' });
    expect(t.socket.rejectUnauthorized).toBe(false);
    expect(amqpTargetFromUrl('amqps://h/').socket.rejectUnauthorized).not.toBe(false); // Node verifies unless told not to
    expect(amqpTargetFromUrl('pyamqp://h').connect).toMatchObject({ protocol: 'amqp', port: 5672, username: 'guest' });
  });
});

describe('queue declarations as Celery makes them', () => {
  const none = { definitions: null, maxPriority: null, missingQueueType: 'classic' as const };
  it('declares a missing queue with a direct exchange and routing key of its name', () => {
    expect(declarationFor('celery', none)).toEqual({
      name: 'celery', exchange: 'celery', exchangeType: 'direct', routingKey: 'celery', durable: true, autoDelete: false, arguments: {},
    });
  });
  it('adds task_queue_max_priority unless the queue sets its own', () => {
    expect(declarationFor('q', { ...none, maxPriority: 10 }).arguments).toEqual({ 'x-max-priority': 10 });
    const defs = [{ name: 'q', queue_arguments: { 'x-max-priority': 3 } }];
    expect(declarationFor('q', { ...none, definitions: defs, maxPriority: 10 }).arguments).toEqual({ 'x-max-priority': 3 });
  });
  it('uses task_queues entries (topic exchange, routing key, flags) and quorum for missing queues', () => {
    const defs = [{ name: 'reports', exchange: 'jobs', exchange_type: 'topic' as const, routing_key: 'reports.#', auto_delete: true }];
    expect(declarationFor('reports', { ...none, definitions: defs })).toMatchObject({ exchange: 'jobs', exchangeType: 'topic', routingKey: 'reports.#', autoDelete: true });
    expect(declarationFor('other', { ...none, missingQueueType: 'quorum', maxPriority: 5 }).arguments).toEqual({ 'x-queue-type': 'quorum' });
  });
});

describe('task_routes', () => {
  const app = new Celeriac({ taskRoutes: { 'reports.*': { queue: 'reports' }, 'mail.send': { queue: 'mail', priority: 7 } }, defaultQueue: 'celery' });
  it('routes by exact name and glob, explicit queue first, default last', () => {
    expect(app.routeFor('mail.send')).toEqual({ queue: 'mail', priority: 7 });
    expect(app.routeFor('reports.yearly')).toEqual({ queue: 'reports', priority: undefined });
    expect(app.routeFor('reports.yearly', 'urgent')).toEqual({ queue: 'urgent' });
    expect(app.routeFor('other.task')).toEqual({ queue: 'celery' });
  });
});

describe('TLS settings (Celery names, from URLs or broker_use_ssl)', () => {
  it('verifies by default and only "none" turns it off, in every spelling', () => {
    expect(tlsOptions({}, 'x')).toEqual({});
    expect(tlsOptions({ ssl_cert_reqs: 'CERT_NONE' }, 'x')).toEqual({ rejectUnauthorized: false });
    expect(tlsOptions({ cert_reqs: 0 }, 'x')).toEqual({ rejectUnauthorized: false });
    expect(tlsOptions({ cert_reqs: 'optional' }, 'x')).toEqual({});
    expect(() => tlsOptions({ ssl_cert_reqs: 'maybe' }, 'amqp url a')).toThrow(/amqp url a: ssl_cert_reqs must be/);
  });
  it('reads the CA from either key name and names a missing file', () => {
    expect(tlsOptions({ ca_certs: __filename }, 'x').ca).toBeInstanceOf(Buffer);
    expect(() => tlsOptions({ ssl_ca_certs: '/nonexistent/ca.pem' }, 'cfg')).toThrow(/cfg: cannot read ssl_ca_certs \/nonexistent\/ca.pem/);
  });
  it('broker_use_ssl reaches amqps:// connections', () => {
    expect(amqpTargetFromUrl('amqps://h/', 60, { cert_reqs: 'none' }).socket.rejectUnauthorized).toBe(false);
    expect(amqpTargetFromUrl('amqps://127.0.0.1/').socket.servername).toBeUndefined();
    expect(amqpTargetFromUrl('amqps://rabbit.example/').socket.servername).toBe('rabbit.example');
  });
});
