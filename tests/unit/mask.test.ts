import { maskSecrets, maskUrl, maskValue } from '../../workers/log/mask';
import { createLogger, maskConfigForLog } from '../../workers/log/logger';
import type { Logger } from '../../workers/log/logger';

describe('maskUrl', () => {
  it.each([
    ['redis://:secret@h:6379/0', 'redis://:**@h:6379/0'],
    ['amqp://user:pw@host//', 'amqp://user:**@host//'],
    ['rediss://default:tok3n@cache.example.com:6380/1?ssl_cert_reqs=required', 'rediss://default:**@cache.example.com:6380/1?ssl_cert_reqs=required'],
    ['mongodb://app:pw@h1:27017,h2:27017/db?replicaSet=rs0', 'mongodb://app:**@h1:27017,h2:27017/db?replicaSet=rs0'],
    // Generated tokens may hold an unescaped '/' or '@': still masked, host kept.
    ['redis://:ab/cd+ef==@h:6379/0', 'redis://:**@h:6379/0'],
    ['redis://:p@ss@h/0', 'redis://:**@h/0'],
    ['redis://h:6379/0?password=hunter2&db=1', 'redis://h:6379/0?password=**&db=1'],
  ])('%s -> %s', (input, expected) => {
    expect(maskUrl(input)).toBe(expected);
  });

  it.each([
    'redis://localhost:6379/0',
    'redis://user@h:6379/0',
    'redis://user:@h:6379/0',
    'filesystem://',
    'file://./data/results',
    'https://h:8080/users/@alice',
    'not a url',
  ])('leaves %s alone (no password)', (input) => {
    expect(maskUrl(input)).toBe(input);
  });
});

describe('maskSecrets', () => {
  it('masks every URL in a longer text', () => {
    expect(maskSecrets('Cannot connect to redis://:a1@h1:6379/0: retrying; backend amqp://u:b2@h2// down')).toBe(
      'Cannot connect to redis://:**@h1:6379/0: retrying; backend amqp://u:**@h2// down',
    );
  });

  it("masks each URL of a ';' failover list and URLs inside JSON", () => {
    expect(maskSecrets('redis://:a@h1/0;redis://:b@h2/0')).toBe('redis://:**@h1/0;redis://:**@h2/0');
    expect(maskSecrets('{"url":"redis://:a@h1/0","n":1}')).toBe('{"url":"redis://:**@h1/0","n":1}');
  });
});

describe('maskValue / maskConfigForLog', () => {
  it('masks nested URL strings and password-named fields without touching the original', () => {
    const config = {
      celery: { broker_url: 'redis://:pw@h/0', broker_use_ssl: { password: 'keypass', ssl_cert_reqs: 'required' } },
      list: ['amqp://u:pw2@h//', 3],
      frozen: Object.freeze({ token: 'abc' }),
    };
    const masked = maskConfigForLog(config);
    expect(masked).toEqual({
      celery: { broker_url: 'redis://:**@h/0', broker_use_ssl: { password: '**', ssl_cert_reqs: 'required' } },
      list: ['amqp://u:**@h//', 3],
      frozen: { token: '**' },
    });
    expect(config.celery.broker_url).toBe('redis://:pw@h/0');
  });

  it('survives cycles and turns errors into plain masked objects', () => {
    const a: Record<string, unknown> = { url: 'redis://:x@h' };
    a.self = a;
    expect(maskValue(a)).toEqual({ url: 'redis://:**@h', self: '[Circular]' });
    const err = maskValue(new Error('down: redis://:x@h')) as { type: string; message: string; stack: string };
    expect(err.type).toBe('Error');
    expect(err.message).toBe('down: redis://:**@h');
    expect(err.stack).toContain('down: redis://:**@h');
  });
});

describe('createLogger', () => {
  function capture(opts: { level?: string; pretty?: boolean } = {}): { log: Logger; lines: string[] } {
    const lines: string[] = [];
    const log = createLogger({ level: opts.level ?? 'info', pretty: opts.pretty, destination: { write: (s) => lines.push(s) } });
    return { log, lines };
  }
  const parse = (line: string): Record<string, unknown> => JSON.parse(line) as Record<string, unknown>;

  it('masks the message, format arguments, fields, child bindings and errors', () => {
    const { log, lines } = capture();
    log.info('connecting to %s', 'redis://:secret1@h:6379/0');
    log.info({ broker: 'redis://:secret2@h/0', nested: { urls: ['amqp://u:secret3@h//'] }, password: 'secret4' }, 'ready');
    log.child({ backend: 'redis://:secret5@h/1' }).warn('child');
    log.error(new Error('lost redis://:secret6@h/0'));
    log.error({ err: new Error('lost redis://:secret7@h/0') });

    expect(lines).toHaveLength(5);
    const all = lines.join('');
    expect(all).not.toMatch(/secret\d/);

    expect(parse(lines[0]).msg).toBe('connecting to redis://:**@h:6379/0');
    expect(parse(lines[1])).toMatchObject({
      msg: 'ready',
      broker: 'redis://:**@h/0',
      nested: { urls: ['amqp://u:**@h//'] },
      password: '**',
    });
    expect(parse(lines[2])).toMatchObject({ msg: 'child', backend: 'redis://:**@h/1' });
    const e = parse(lines[3]);
    expect(e.msg).toBe('lost redis://:**@h/0');
    expect(e.err).toMatchObject({ type: 'Error', message: 'lost redis://:**@h/0' });
    expect((e.err as { stack: string }).stack).toContain('lost redis://:**@h/0');
    expect(parse(lines[4]).msg).toBe('lost redis://:**@h/0');
  });

  it('logs Celery-style messages as JSON with name and level', () => {
    const { log, lines } = capture();
    log.info('Task demo.add[%s] received', 'd1b7c7a5-0c1e-4f5e-9e43-5a0f3c2b8a11');
    expect(parse(lines[0])).toMatchObject({
      level: 30,
      name: 'celeriac',
      msg: 'Task demo.add[d1b7c7a5-0c1e-4f5e-9e43-5a0f3c2b8a11] received',
    });
  });

  it('filters by level and accepts Celery level names', () => {
    const { log, lines } = capture({ level: 'WARNING' });
    log.info('hidden');
    log.warn('shown');
    expect(lines.map((l) => parse(l).msg)).toEqual(['shown']);
    expect(() => createLogger({ level: 'loud' })).toThrow(
      'log level "loud": must be one of fatal, error, warn, info, debug, trace, silent',
    );
  });

  it('prints Celery-style text lines in pretty mode, masked', () => {
    const { log, lines } = capture({ pretty: true });
    log.info('Task demo.add[abc] received');
    log.warn({ broker: 'redis://:secret@h/0' }, 'retrying');
    expect(lines[0]).toMatch(/^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}: INFO\/celeriac\] Task demo\.add\[abc\] received\n$/);
    expect(lines[1]).toMatch(/: WARNING\/celeriac\] retrying \{"broker":"redis:\/\/:\*\*@h\/0"\}\n$/);
  });
});
