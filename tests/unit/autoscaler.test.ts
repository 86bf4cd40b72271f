import { Autoscaler, parseAutoscale } from '../../workers/worker/autoscaler';

function rig(max: number, min: number, keepalive = 30) {
  let t = 0;
  const target = { concurrency: 1, demand: 0, logs: [] as string[], setConcurrency(n: number) { this.concurrency = n; }, log(m: string) { this.logs.push(m); } };
  const scaler = new Autoscaler(target, max, min, keepalive, () => t);
  target.concurrency = scaler.initial;
  return { target, scaler, advance: (s: number) => (t += s) };
}

describe('Autoscaler (Celery semantics)', () => {
  it('parses --autoscale max,min with min defaulting to 0', () => {
    expect(parseAutoscale('8,2')).toEqual({ max: 8, min: 2 });
    expect(parseAutoscale('5')).toEqual({ max: 5, min: 0 });
  });

  it('grows to the demand, capped at max', () => {
    const { target, scaler } = rig(8, 2);
    expect(target.concurrency).toBe(2);
    target.demand = 5;
    expect(scaler.maybeScale()).toBe(true);
    expect(target.concurrency).toBe(5);
    target.demand = 50;
    scaler.maybeScale();
    expect(target.concurrency).toBe(8);
    expect(target.logs).toEqual(['Scaling up 3 processes.', 'Scaling up 3 processes.']);
  });

  it('shrinks to max(demand, min) only after keepalive seconds without growth or arrivals', () => {
    const { target, scaler, advance } = rig(8, 2, 30);
    target.demand = 8;
    scaler.maybeScale();
    target.demand = 0;
    advance(10);
    scaler.onTaskReceived(); // an arrival resets the idle clock
    advance(25);
    expect(scaler.maybeScale()).toBe(false);
    expect(target.concurrency).toBe(8);
    advance(6);
    expect(scaler.maybeScale()).toBe(true);
    expect(target.concurrency).toBe(2);
  });

  it('never goes below one slot, even with min 0', () => {
    const { target, scaler, advance } = rig(4, 0, 1);
    expect(target.concurrency).toBe(1);
    advance(5);
    expect(scaler.maybeScale()).toBe(false);
    expect(target.concurrency).toBe(1);
  });

  it('update() changes the range and brings the pool inside it at once', () => {
    const { target, scaler } = rig(8, 2);
    expect(scaler.update(6, 4)).toEqual([6, 4]);
    expect(target.concurrency).toBe(4);
    target.demand = 6;
    scaler.maybeScale();
    expect(scaler.update(3, null)).toEqual([3, 4]);
    expect(target.concurrency).toBe(3);
    expect(scaler.info()).toEqual({ max: 3, min: 4, current: 3, qty: 6 });
  });
});
