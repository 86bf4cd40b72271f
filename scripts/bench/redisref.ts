/**
 * The physical reference of the Redis bench: how many of the commands a task costs this
 * redis-server serves per second, measured with `redis-benchmark` (Debian's redis-tools /
 * redis-server ship it) against the bench's own redis-server, on a db no worker uses:
 *   - unpipelined: 50 clients, each waiting for every reply (a worker that never batches);
 *   - pipelined:   the same with -P 16 (Redis's ceiling when its clients batch, as Lua and
 *                  Celeriac's per-tick batching do).
 * Values are the bench's real sizes: a kombu envelope for LPUSH/RPOP, a stored result for the
 * others. With a contender's Redis commands per task (INFO commandstats over a drain), the bound
 * is the tasks/s Redis could serve if those commands were all it did:
 *     bound = 1 / sum over commands c of (calls of c per task / ops/s of c)
 * which is "ops/s divided by commands per task", each command at its own measured rate.
 */
import { log, start, stop } from './common';

/** The tests run, by the lower-case name commandstats uses. PUBLISH has no built-in test. */
const BUILTIN = ['lpush', 'rpop', 'set', 'get', 'hset', 'zadd'] as const;
const LIST_OPS = new Set(['lpush', 'rpop']);
/**
 * Commands counted in a drain that redis-benchmark has no test for, at the rate of the closest
 * one it has. Anything else (EVALSHA, MULTI, EXEC...) counts at GET's rate: the commands a script
 * runs are counted on their own, so its call is the wrapper only.
 */
const ALIAS: Record<string, string> = { setex: 'set', psetex: 'set', brpop: 'rpop', rpush: 'lpush', lpop: 'rpop', hdel: 'hset', zrem: 'zadd' };

export interface RedisReference {
  requests: number;
  clients: number;
  pipeline: number;
  envelopeBytes: number;
  resultBytes: number;
  /** Ops/s by command: unpipelined and pipelined. */
  rates: Map<string, { plain: number; pipelined: number }>;
  seconds: number;
}

export interface TaskBound {
  commandsPerTask: number;
  plain: number;
  pipelined: number;
  /** Commands counted at another command's rate (see ALIAS). */
  approximated: string[];
}

const CLIENTS = 50;
const PIPELINE = 16;

async function bench(port: number, db: number, requests: number, pipeline: number, args: string[]): Promise<Map<string, number>> {
  const p = start('redis-benchmark', 'redis-benchmark', [
    '-h', '127.0.0.1', '-p', String(port), '-q', '-n', String(requests), '-c', String(CLIENTS), '-P', String(pipeline), '--dbnum', String(db), ...args,
  ]);
  await p.exit;
  await stop(p, 1_000);
  const out = new Map<string, number>();
  // -q still redraws a progress line with \r; the final line per test is "NAME: R requests per second".
  for (const line of p.output().split(/[\r\n]+/)) {
    const m = /^\s*([A-Za-z]+)[^:]*: ([\d.]+) requests per second/.exec(line);
    if (m) out.set(m[1]!.toLowerCase(), Number(m[2]));
  }
  if (!out.size) throw new Error(`redis-benchmark printed no rates:\n${p.output().slice(-2000)}`);
  return out;
}

/** Runs every test, unpipelined then pipelined; `db` must be empty and is left dirty (flush it). */
export async function runRedisReference(port: number, db: number, requests: number, sizes: { envelopeBytes: number; resultBytes: number }): Promise<RedisReference> {
  const t0 = Date.now();
  const rates = new Map<string, { plain: number; pipelined: number }>();
  const lists = BUILTIN.filter((c) => LIST_OPS.has(c)).join(',');
  const others = BUILTIN.filter((c) => !LIST_OPS.has(c)).join(',');
  const result = 'x'.repeat(sizes.resultBytes);
  for (const pipeline of [1, PIPELINE]) {
    const runs = [
      await bench(port, db, requests, pipeline, ['-d', String(sizes.envelopeBytes), '-t', lists]),
      await bench(port, db, requests, pipeline, ['-d', String(sizes.resultBytes), '-t', others]),
      await bench(port, db, requests, pipeline, ['publish', 'celery-task-meta-bench', result]),
    ];
    for (const [cmd, rate] of runs.flatMap((m) => [...m])) {
      const r = rates.get(cmd) ?? { plain: NaN, pipelined: NaN };
      if (pipeline === 1) r.plain = rate;
      else r.pipelined = rate;
      rates.set(cmd, r);
    }
  }
  const seconds = (Date.now() - t0) / 1000;
  log(`redis: redis-benchmark (${requests} requests per test, ${CLIENTS} clients, unpipelined and -P ${PIPELINE}) in ${seconds.toFixed(1)} s`);
  return { requests, clients: CLIENTS, pipeline: PIPELINE, ...sizes, rates, seconds };
}

/** The tasks/s Redis could serve for a drain's command mix (see the header). */
export function taskBound(ref: RedisReference, commands: Map<string, number>, n: number): TaskBound {
  let plain = 0;
  let pipelined = 0;
  let perTask = 0;
  const approximated: string[] = [];
  for (const [cmd, calls] of commands) {
    const k = calls / n;
    const name = ref.rates.has(cmd) ? cmd : (ALIAS[cmd] ?? 'get');
    // Start-up commands (SADD of the bindings, PSUBSCRIBE...) count too, but are not worth naming.
    if (name !== cmd && k >= 0.01) approximated.push(`${cmd} as ${name}`);
    const rate = ref.rates.get(name);
    if (!rate) continue;
    perTask += k;
    plain += k / rate.plain;
    pipelined += k / rate.pipelined;
  }
  return { commandsPerTask: perTask, plain: 1 / plain, pipelined: 1 / pipelined, approximated };
}

/** The reference's own lines for the report. */
export function formatReference(ref: RedisReference, version: string): string[] {
  const k = (x: number): string => `${Math.round(x / 1000)}k`;
  return [
    `Physical reference: redis-benchmark ${version} -q on the bench's redis-server, ${ref.requests} requests per test, ${ref.clients} clients; ` +
      `LPUSH/RPOP with ${ref.envelopeBytes}-byte values (a kombu envelope), the others ${ref.resultBytes} bytes (a stored result); ${ref.seconds.toFixed(0)} s:`,
    `  ops/s unpipelined: ${[...ref.rates].map(([c, r]) => `${c.toUpperCase()} ${k(r.plain)}`).join(', ')}`,
    `  ops/s with -P ${ref.pipeline}:     ${[...ref.rates].map(([c, r]) => `${c.toUpperCase()} ${k(r.pipelined)}`).join(', ')}`,
  ];
}
