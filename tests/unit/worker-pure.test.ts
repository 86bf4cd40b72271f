import { expandNodeName, nodeName } from '../../workers/worker/hostname';
import { exponentialBackoff } from '../../workers/worker/backoff';
import { RedisKeys, DEFAULT_KEY_OPTIONS } from '../../workers/transports/redis/keys';
import { lookupQueues, topicMatches } from '../../workers/transports/redis/routing';
import { bindArguments, type TaskDefinition } from '../../workers/app/task';
import { buildMeta, serializeException, pyIsoNow } from '../../workers/backends/meta';
import { PythonError, MaxRetriesExceededError } from '../../workers/app/errors';

describe('node names', () => {
  it('expands %h %n %d', () => {
    expect(expandNodeName('w1@%h', { hostname: 'box.example.com' })).toBe('w1@box.example.com');
    expect(expandNodeName('%n-%d', { hostname: 'box.example.com' })).toBe('box-example.com');
    expect(expandNodeName('100%%', { hostname: 'h' })).toBe('100%');
  });
  it('adds the celery@ default like Celery', () => {
    expect(nodeName('box', { hostname: 'h' })).toBe('celery@box');
    expect(nodeName('w1@', { hostname: 'h' })).toBe('w1@h');
  });
});

describe('backoff', () => {
  it('doubles up to the maximum, jitter stays within it', () => {
    expect(exponentialBackoff(1, 0, 600, false)).toBe(1);
    expect(exponentialBackoff(2, 3, 600, false)).toBe(16);
    expect(exponentialBackoff(1, 20, 600, false)).toBe(600);
    for (let i = 0; i < 50; i++) expect(exponentialBackoff(1, 4, 600, true)).toBeLessThanOrEqual(16);
  });
});

describe('kombu redis keys', () => {
  const keys = new RedisKeys(DEFAULT_KEY_OPTIONS);
  it('maps priorities onto kombu steps', () => {
    expect(keys.queueKey('celery', 0)).toBe('celery');
    expect(keys.queueKey('celery', 2)).toBe('celery');
    expect(keys.queueKey('celery', 5)).toBe('celery\x06\x163');
    expect(keys.queueKey('celery', 9)).toBe('celery\x06\x169');
  });
  it('orders consume keys priority-major like kombu BRPOP', () => {
    expect(keys.consumeKeys(['a', 'b']).map((k) => k.key).slice(0, 3)).toEqual(['a', 'b', 'a\x06\x163']);
  });
  it('applies global_keyprefix everywhere', () => {
    const p = new RedisKeys({ ...DEFAULT_KEY_OPTIONS, globalKeyprefix: 'pfx:' });
    expect([p.unacked, p.queueKey('q', 9), p.binding('q')]).toEqual(['pfx:unacked', 'pfx:q\x06\x169', 'pfx:_kombu.binding.q']);
  });
  it('routes direct and topic bindings', () => {
    expect(topicMatches('a.*.c', 'a.b.c')).toBe(true);
    expect(topicMatches('a.#', 'a')).toBe(true);
    expect(topicMatches('a.*', 'a.b.c')).toBe(false);
    const table = [
      { routingKey: 'x', pattern: '', queue: 'q1' },
      { routingKey: 'r.#', pattern: 'r.#', queue: 'q2' },
    ];
    expect(lookupQueues(table, 'x')).toEqual(['q1']);
    expect(lookupQueues(table, 'r.a.b')).toEqual(['q2']);
    expect(lookupQueues(table, 'nope')).toEqual([]);
  });
});

describe('kwargs binding', () => {
  const def = (params?: string[]): TaskDefinition => ({ name: 't', fn: () => null, options: { params } });
  it('binds kwargs by declared parameter names', () => {
    expect(bindArguments(def(['x', 'y']), [1], { y: 2 })).toEqual([1, 2]);
    expect(() => bindArguments(def(['x']), [1], { x: 2 })).toThrow(/multiple values/);
  });
  it('passes kwargs as a last object without names', () => {
    expect(bindArguments(def(), [1], { a: 1 })).toEqual([1, { a: 1 }]);
    expect(bindArguments(def(), [1], {})).toEqual([1]);
  });
});

describe('result meta', () => {
  it('has Celery fields in Celery order', () => {
    const meta = buildMeta('id', 'SUCCESS', 5, { extended: true, request: { task: 't', args: [1], kwargs: {}, hostname: 'h', retries: 0, queue: 'celery' } });
    expect(Object.keys(meta)).toEqual(['status', 'result', 'traceback', 'children', 'date_done', 'name', 'args', 'kwargs', 'worker', 'retries', 'queue', 'task_id']);
    expect(meta.date_done).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00$/);
    expect(buildMeta('id', 'STARTED', {}).date_done).toBeNull();
    expect(pyIsoNow(new Date('2030-01-01T00:00:00.123Z'))).toBe('2030-01-01T00:00:00.123000+00:00');
    // The per-second prefix cache gives what toISOString() gives, at every millisecond and across seconds.
    for (const ms of [0, 7, 99, 999, 1000, 1001, Date.parse('2026-12-31T23:59:59.999Z'), Date.parse('2027-01-01T00:00:00.000Z'), -1, -1001]) {
      expect(pyIsoNow(new Date(ms))).toBe(`${new Date(ms).toISOString().slice(0, 23)}000+00:00`);
    }
    const now = Date.now();
    for (let ms = now; ms < now + 2500; ms += 13) expect(pyIsoNow(new Date(ms))).toBe(`${new Date(ms).toISOString().slice(0, 23)}000+00:00`);
  });
  it('serializes errors as Celery exceptions', () => {
    expect(serializeException(new TypeError('bad'))).toEqual({ exc_type: 'TypeError', exc_message: ['bad'], exc_module: 'builtins' });
    expect(serializeException(new PythonError('KeyError', 'k'))).toEqual({ exc_type: 'KeyError', exc_message: ['k'], exc_module: 'builtins' });
    expect(serializeException(new MaxRetriesExceededError('x')).exc_module).toBe('celery.exceptions');
    expect(serializeException(new Error('plain')).exc_module).toBeNull();
  });
});
