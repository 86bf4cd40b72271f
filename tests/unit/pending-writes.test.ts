// workers/backends/pendingWrites.ts: result writes parked during a backend outage go out in order
// once it answers, failed writes are retried with backoff, the buffer is bounded, and drain()
// reports what could not be written. (On a real Redis: tests/integration/faults-backend-outage.)
import { EventEmitter } from 'node:events';
import { isTransient, PendingWrites, writeOrLost } from '../../workers/backends/pendingWrites';

const tick = (ms = 0): Promise<void> => new Promise((r) => setTimeout(r, ms));

function rig(opts: { max?: number; failFirst?: number } = {}) {
  let up = false;
  let failures = opts.failFirst ?? 0;
  const written: number[] = [];
  const attempts: number[] = [];
  const logs: string[] = [];
  const writes = new PendingWrites<number>({
    write: async (batch) => {
      attempts.push(batch.length);
      if (failures > 0) {
        failures--;
        throw new Error('LOADING Redis is loading the dataset in memory');
      }
      written.push(...batch);
    },
    isUp: () => up,
    warn: (m) => logs.push(m),
    info: (m) => logs.push(m),
    max: opts.max,
    writeTimeoutMs: 200,
  });
  return { writes, written, attempts, logs, setUp: (v: boolean) => (up = v) };
}

it('holds writes while the backend is down and writes them in order once it is up', async () => {
  const r = rig();
  for (let i = 0; i < 5; i++) await r.writes.park(i);
  await tick(50);
  expect(r.written).toEqual([]);
  expect(r.writes.size).toBe(5);
  expect(r.logs.filter((l) => /unreachable/.test(l))).toHaveLength(1);
  r.setUp(true);
  r.writes.kick();
  await tick(50);
  expect(r.written).toEqual([0, 1, 2, 3, 4]);
  expect(r.writes.size).toBe(0);
  expect(r.logs.at(-1)).toMatch(/5 waiting result write\(s\) done/);
});

it('retries a failing write with backoff until it succeeds', async () => {
  const r = rig({ failFirst: 3 });
  r.setUp(true);
  await r.writes.park(7);
  // Full jitter over 0.5, 1 and 2 s caps: at most 3.5 s.
  for (let i = 0; i < 100 && r.written.length === 0; i++) await tick(50);
  expect(r.written).toEqual([7]);
  expect(r.attempts.length).toBe(4);
});

it('bounds the buffer: park() waits for room', async () => {
  const r = rig({ max: 2 });
  await r.writes.park(1);
  await r.writes.park(2);
  let third = false;
  const p = r.writes.park(3).then(() => (third = true));
  await tick(30);
  expect(third).toBe(false);
  r.setUp(true);
  r.writes.kick();
  await p;
  await tick(30);
  expect(r.written).toEqual([1, 2, 3]);
});

it('drain() writes what it can in time and returns how many are left', async () => {
  const r = rig();
  await r.writes.park(1);
  await r.writes.park(2);
  expect(await r.writes.drain(100)).toBe(2);
  const s = rig();
  s.setUp(true);
  await s.writes.park(1);
  expect(await s.writes.drain(1_000)).toBe(0);
  expect(s.written).toEqual([1]);
});

it('writeOrLost: written, lost when the connection closes, rejected on an error', async () => {
  const conn = new EventEmitter();
  await expect(writeOrLost(conn, Promise.resolve(), 1_000)).resolves.toBe('written');
  const never = new Promise<void>(() => undefined);
  const lost = writeOrLost(conn, never, 1_000);
  conn.emit('close');
  await expect(lost).resolves.toBe('lost');
  await expect(writeOrLost(conn, never, 20)).resolves.toBe('lost');
  await expect(writeOrLost(conn, Promise.reject(new Error('ERR bad')), 1_000)).rejects.toThrow('ERR bad');
  expect(conn.listenerCount('close')).toBe(0);
});

it('isTransient tells "not now" from "never"', () => {
  expect(isTransient(new Error('LOADING Redis is loading'))).toBe(true);
  expect(isTransient(new Error('Connection is closed.'))).toBe(true);
  expect(isTransient(new Error('connect ECONNREFUSED 127.0.0.1:6379'))).toBe(true);
  expect(isTransient(new Error('ERR Error running script'))).toBe(false);
});
