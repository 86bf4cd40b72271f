import { deflateSync, inflateSync } from 'node:zlib';
import { decodeCall, RefusedJobError, timeoutOf } from '../../workers/rq/jobData';
import { excPayload, excString } from '../../workers/rq/failure';
import { instant, utcformat } from '../../workers/rq/keys';
import { TimeLimitExceeded } from '../../workers';

const zjson = (v: unknown): Buffer => deflateSync(Buffer.from(JSON.stringify(v)));

describe('decodeCall', () => {
  it('reads JSONSerializer data, zlib\'d or not', () => {
    expect(decodeCall(zjson(['m.f', null, [1, 'a'], { k: true }]))).toEqual({ funcName: 'm.f', args: [1, 'a'], kwargs: { k: true } });
    expect(decodeCall(Buffer.from('["m.f", null, [], {}]'))).toEqual({ funcName: 'm.f', args: [], kwargs: {} });
  });

  it.each([
    ['pickle (protocol 4)', deflateSync(Buffer.from([0x80, 0x04, 0x95, 0x00])), /pickle-serialized/],
    ['not JSON', zjson('x').subarray(0, 3), /not JSON/],
    ['a 3-tuple', zjson(['m.f', null, []]), /\[func_name, instance, args, kwargs\]/],
    ['an instance method', zjson(['f', { obj: 1 }, [], {}]), /method of an instance/],
    ['args not a list', zjson(['f', null, {}, {}]), /args must be a list/],
    ['kwargs not an object', zjson(['f', null, [], []]), /kwargs must be an object/],
    ['no data', undefined, /no `data`/],
  ])('refuses %s with a reason', (_what, data, reason) => {
    expect(() => decodeCall(data)).toThrow(RefusedJobError);
    expect(() => decodeCall(data)).toThrow(reason);
  });
});

describe('timeouts and times', () => {
  it('takes rq\'s timeout, the queue default when absent, none for -1', () => {
    expect(timeoutOf(new Map([['timeout', Buffer.from('42')]]))).toBe(42);
    expect(timeoutOf(new Map())).toBe(180);
    expect(timeoutOf(new Map([['timeout', Buffer.from('-1')]]))).toBeNull();
  });

  it('formats as rq\'s utcformat, with microseconds', () => {
    const d = new Date(Date.UTC(2026, 11, 6, 2, 3, 4, 56));
    expect(utcformat(d)).toBe('2026-12-06T02:03:04.056000Z');
    expect(instant(d)).toEqual({ iso: '2026-12-06T02:03:04.056000Z', ts: '1796522584.056000', int: 1796522584 });
  });
});

describe('exception text', () => {
  it('ends with "<type>: <message>" as a Python traceback', () => {
    const text = excString(new TypeError('bad'));
    expect(text).toMatch(/^Traceback \(most recent call last\):\n {2}at .*\nTypeError: bad\n$/s);
    expect(excString(new TimeLimitExceeded(7))).toMatch(/rq\.timeouts\.JobTimeoutException: Task exceeded maximum timeout value \(7 seconds\)\n$/);
    expect(excString('plain')).toBe('Traceback (most recent call last):\nException: plain\n');
  });

  it('is stored as base64 of zlib, as rq\'s Result', () => {
    expect(inflateSync(Buffer.from(excPayload('x\n'), 'base64')).toString()).toBe('x\n');
  });
});
