import { parseRate, RateLimiter, TokenBucket } from '../../workers/worker/rate';

describe('parseRate (celery.utils.time.rate)', () => {
  it('reads N/s, N/m, N/h and bare numbers as tokens per second', () => {
    expect(parseRate('10/s')).toBe(10);
    expect(parseRate('10/m')).toBeCloseTo(10 / 60);
    expect(parseRate('2/h')).toBeCloseTo(2 / 3600);
    expect(parseRate('0.5')).toBe(0.5);
    expect(parseRate('3/')).toBe(3);
    expect(parseRate(7)).toBe(7);
  });
  it('treats empty, 0 and null as no limit', () => {
    expect(parseRate(null)).toBe(0);
    expect(parseRate(undefined)).toBe(0);
    expect(parseRate('')).toBe(0);
    expect(parseRate(0)).toBe(0);
    expect(parseRate('0/m')).toBe(0);
  });
  it('rejects what Python cannot parse', () => {
    expect(() => parseRate('abc')).toThrow("could not convert string to float: 'abc'");
    expect(() => parseRate('5/d')).toThrow(/unknown rate unit/);
  });
});

describe('TokenBucket (kombu.utils.limits)', () => {
  it('starts full, empties, and refills at the fill rate up to its capacity', () => {
    let t = 100;
    const bucket = new TokenBucket(2, 1, () => t);
    expect(bucket.canConsume()).toBe(true);
    expect(bucket.canConsume()).toBe(false);
    expect(bucket.expectedTime()).toBeCloseTo(0.5);
    t += 0.25;
    expect(bucket.canConsume()).toBe(false);
    expect(bucket.expectedTime()).toBeCloseTo(0.25);
    t += 0.25;
    expect(bucket.canConsume()).toBe(true);
    t += 10; // idle time does not pile up tokens beyond the capacity
    expect(bucket.canConsume()).toBe(true);
    expect(bucket.canConsume()).toBe(false);
  });
});

describe('RateLimiter', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  it('lets one through per token, in order, without blocking other names', () => {
    let t = 0;
    const out: string[] = [];
    const limiter = new RateLimiter<string>((x) => out.push(x), () => t);
    for (const x of ['a1', 'a2', 'a3']) limiter.submit('a', 2, x);
    limiter.submit('b', 0, 'b1');
    expect(out).toEqual(['a1', 'b1']);
    expect(limiter.size).toBe(2);
    expect(limiter.pending()).toEqual(['a2', 'a3']);
    t = 0.5;
    jest.advanceTimersByTime(500);
    expect(out).toEqual(['a1', 'b1', 'a2']);
    t = 1;
    jest.advanceTimersByTime(500);
    expect(out).toEqual(['a1', 'b1', 'a2', 'a3']);
    expect(limiter.size).toBe(0);
  });

  it('setRate(0) releases the waiting ones; remove and clear take them out', () => {
    const t = 0;
    const out: number[] = [];
    const limiter = new RateLimiter<number>((x) => out.push(x), () => t);
    for (let i = 0; i < 5; i++) limiter.submit('a', 1 / 60, i);
    expect(out).toEqual([0]);
    expect(limiter.remove((x) => x === 2)).toEqual([2]);
    limiter.setRate('a', 0);
    expect(out).toEqual([0, 1, 3, 4]);
    limiter.submit('c', 1, 10);
    limiter.submit('c', 1, 11);
    expect(limiter.clear()).toEqual([11]);
    jest.advanceTimersByTime(5000);
    expect(out).toEqual([0, 1, 3, 4, 10]);
  });
});
