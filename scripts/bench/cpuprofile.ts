/**
 * Summarize a V8 .cpuprofile (from `node --cpu-prof`) of a Celeriac worker drain: self time by
 * category (ioredis or amqplib, pino logging, our worker code, node core, GC, idle) and the top
 * self-time functions. Only the drain window counts, so start-up (tsx compiling TypeScript, module
 * loading) and the idle tail before SIGTERM are left out. The bench passes the window it measured:
 * V8's profile timestamps and process.hrtime() both read CLOCK_MONOTONIC (µs here), so times taken
 * in the bench process line up with the worker's samples. Without a window, it runs from the first
 * to the last sample whose stack is in Celeriac's transport/worker/backend code.
 *
 * JSON.parse/JSON.stringify do not appear as frames of their own: V8 charges them to the calling
 * function (decodeEnvelope, parseV2, RedisBackend.store, RpcBackend.store, ...).
 *
 *   tsx scripts/bench/cpuprofile.ts /tmp/x.cpuprofile [--top 25] [--from US --to US]
 */
import { readFileSync } from 'node:fs';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
  scriptId: string | number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  hitCount?: number;
  children?: number[];
}

export interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileSummary {
  /** Drain window length and the sampled time inside it, in ms. */
  windowMs: number;
  totalMs: number;
  /** Self time by category, ms, biggest first. */
  categories: { name: string; ms: number; pct: number }[];
  /** Time with at least one frame of the category on the stack (inclusive), ms. */
  inclusive: { name: string; ms: number; pct: number }[];
  top: { name: string; where: string; ms: number; pct: number }[];
}

/** Where a frame's code lives, for grouping. */
export function categoryOf(frame: CallFrame): string {
  const { functionName: fn, url } = frame;
  if (fn === '(idle)') return 'idle (waiting for the broker)';
  if (fn === '(garbage collector)') return 'GC';
  if (fn === '(program)') return 'V8/native (program)';
  if (fn === '(root)') return 'root';
  if (!url) {
    return `native: ${fn}`;
  }
  if (/node_modules\/(ioredis|@ioredis|redis-parser|redis-errors|standard-as-callback|denque|cluster-key-slot)\//.test(url)) return 'ioredis (client + RESP parser)';
  if (/node_modules\/amqplib\//.test(url)) return 'amqplib (AMQP client + frame codec)';
  if (/node_modules\/(pino|sonic-boom|thread-stream|on-exit-leak-free|fast-redact|quick-format-unescaped|atomic-sleep)/.test(url)) return 'pino logging';
  if (/node_modules\/(tsx|esbuild|get-tsconfig)/.test(url)) return 'tsx (TypeScript loader)';
  if (/node_modules\//.test(url)) return `other npm: ${/node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)?.[1] ?? '?'}`;
  if (/\/workers\/log\//.test(url)) return 'Celeriac: log/';
  const own = /\/workers\/(.+?)(?:\.ts)?$/.exec(url);
  if (own) return `Celeriac: ${own[1]}`;
  if (url.startsWith('node:')) {
    const mod = url.slice('node:'.length);
    if (/^internal\/(streams|stream_base_commons)|^net$|^internal\/net|^stream/.test(mod)) return 'node core: net/streams';
    if (/^internal\/(process\/task_queues|timers)|^timers$/.test(mod)) return 'node core: timers/microtasks';
    if (/^events$|^internal\/event_target/.test(mod)) return 'node core: events';
    return 'node core: other';
  }
  return `other: ${url}`;
}

/** Inclusive groups: does a stack pass through this layer at all? */
const INCLUSIVE: { name: string; test: (f: CallFrame) => boolean }[] = [
  { name: 'ioredis (any frame)', test: (f) => /node_modules\/(ioredis|@ioredis|redis-parser)\//.test(f.url) },
  { name: 'amqplib (any frame)', test: (f) => /node_modules\/amqplib\//.test(f.url) },
  { name: 'socket writes (net Socket._writeGeneric/_writev)', test: (f) => /_writeGeneric|_writev/.test(f.functionName) && f.url === 'node:net' },
  { name: 'socket reads (onStreamRead)', test: (f) => f.functionName === 'onStreamRead' },
  { name: 'pino / workers/log (any frame)', test: (f) => /node_modules\/pino|\/workers\/log\//.test(f.url) },
  { name: 'Worker.onDelivery (parse message, enqueue)', test: (f) => f.functionName === 'onDelivery' && /\/workers\/worker\/worker/.test(f.url) },
  { name: 'Worker.run (execute, store, ack)', test: (f) => f.functionName === 'run' && /\/workers\/worker\/worker/.test(f.url) },
  { name: 'Worker.storeState (buildMeta + backend.store)', test: (f) => f.functionName === 'storeState' && /\/workers\/worker\/worker/.test(f.url) },
  { name: 'RedisTransport.claim/track (decode envelopes)', test: (f) => /^(claim|track)$/.test(f.functionName) && /redisTransport/.test(f.url) },
  { name: 'AmqpTransport (deliveries, acks, publishes)', test: (f) => /\/workers\/transports\/amqp\//.test(f.url) },
  { name: 'RpcBackend.store (publish each result)', test: (f) => f.functionName === 'store' && /\/workers\/backends\/rpc/.test(f.url) },
  { name: 'parseTaskMessage', test: (f) => f.functionName === 'parseTaskMessage' },
  { name: 'pyRepr (log message arguments)', test: (f) => f.functionName === 'pyRepr' },
];

/** A stack frame that marks the worker actually draining (not loading modules). */
function isDrainFrame(f: CallFrame): boolean {
  return f.functionName !== '' && /\/workers\/(worker\/worker|transports\/redis\/redisTransport|transports\/amqp\/amqpTransport|backends\/redis\/redisBackend|backends\/rpc)/.test(f.url);
}

/** A drain window in CLOCK_MONOTONIC microseconds (process.hrtime.bigint() / 1000n). */
export interface Window {
  fromUs: number;
  toUs: number;
}

export function summarizeProfile(profile: CpuProfile, topN = 25, window?: Window): ProfileSummary {
  const byId = new Map<number, ProfileNode>();
  const parent = new Map<number, number>();
  for (const n of profile.nodes) byId.set(n.id, n);
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

  const stackCache = new Map<number, ProfileNode[]>();
  const stackOf = (id: number): ProfileNode[] => {
    const hit = stackCache.get(id);
    if (hit) return hit;
    const out: ProfileNode[] = [];
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const node = byId.get(cur);
      if (node) out.push(node);
    }
    stackCache.set(id, out);
    return out;
  };

  // Sample i lasts until sample i+1 (as Chrome DevTools counts it).
  const n = profile.samples.length;
  const times: number[] = new Array<number>(n);
  let t = profile.startTime;
  for (let i = 0; i < n; i++) {
    t += profile.timeDeltas[i] ?? 0;
    times[i] = t;
  }
  let first = -1;
  let last = -1;
  for (let i = 0; i < n; i++) {
    const inWindow = window
      ? times[i]! >= window.fromUs && times[i]! <= window.toUs
      : stackOf(profile.samples[i]!).some((node) => isDrainFrame(node.callFrame));
    if (inWindow) {
      if (first < 0) first = i;
      last = i;
    }
  }
  if (first < 0) throw new Error(window ? 'no sample inside the drain window' : 'no sample runs Celeriac worker code: is this a worker profile?');

  const self = new Map<string, number>();
  const fnSelf = new Map<string, { name: string; where: string; ms: number }>();
  const incl = new Map<string, number>();
  let total = 0;
  for (let i = first; i <= last; i++) {
    const dur = ((times[i + 1] ?? times[i]!) - times[i]!) / 1000;
    const stack = stackOf(profile.samples[i]!);
    const leaf = stack[0]!.callFrame;
    total += dur;
    const cat = categoryOf(leaf);
    self.set(cat, (self.get(cat) ?? 0) + dur);
    // Line numbers of tsx-compiled .ts files are the compiled code's: the file name is enough.
    const where = !leaf.url
      ? '(native)'
      : /\/workers\//.test(leaf.url)
        ? leaf.url.replace(/^file:\/\/.*?\/workers\//, 'workers/')
        : `${leaf.url.replace(/^file:\/\/.*?\/node_modules\//, '')}:${leaf.lineNumber + 1}`;
    const key = `${leaf.functionName}|${where}`;
    const entry = fnSelf.get(key) ?? { name: leaf.functionName || '(anonymous)', where, ms: 0 };
    entry.ms += dur;
    fnSelf.set(key, entry);
    for (const g of INCLUSIVE) {
      if (stack.some((node) => g.test(node.callFrame))) incl.set(g.name, (incl.get(g.name) ?? 0) + dur);
    }
  }
  const pct = (ms: number): number => (total > 0 ? (100 * ms) / total : 0);
  return {
    windowMs: (times[last]! - times[first]!) / 1000,
    totalMs: total,
    categories: [...self].map(([name, ms]) => ({ name, ms, pct: pct(ms) })).sort((a, b) => b.ms - a.ms),
    inclusive: INCLUSIVE.map((g) => ({ name: g.name, ms: incl.get(g.name) ?? 0, pct: pct(incl.get(g.name) ?? 0) })),
    top: [...fnSelf.values()]
      .sort((a, b) => b.ms - a.ms)
      .slice(0, topN)
      .map((e) => ({ ...e, pct: pct(e.ms) })),
  };
}

export function formatSummary(s: ProfileSummary): string {
  const row = (label: string, ms: number, p: number): string => `  ${label.padEnd(58)} ${ms.toFixed(0).padStart(7)} ms ${p.toFixed(1).padStart(5)}%`;
  const lines = [`drain window ${s.windowMs.toFixed(0)} ms of worker main-thread time (samples: ${s.totalMs.toFixed(0)} ms)`, 'self time by category:'];
  for (const c of s.categories) lines.push(row(c.name, c.ms, c.pct));
  lines.push('inclusive (on the stack):');
  for (const c of s.inclusive) lines.push(row(c.name, c.ms, c.pct));
  lines.push('top self-time functions:');
  for (const f of s.top) lines.push(row(`${f.name}  ${f.where}`, f.ms, f.pct));
  return lines.join('\n');
}

export function loadProfile(path: string): CpuProfile {
  return JSON.parse(readFileSync(path, 'utf8')) as CpuProfile;
}

if (require.main === module) {
  const [file, ...rest] = process.argv.slice(2);
  if (!file) {
    process.stderr.write('usage: tsx scripts/bench/cpuprofile.ts <file.cpuprofile> [--top N]\n');
    process.exit(2);
  }
  const opt = (name: string): number | undefined => {
    const at = rest.indexOf(name);
    return at >= 0 ? Number(rest[at + 1]) : undefined;
  };
  const from = opt('--from');
  const to = opt('--to');
  const window = from !== undefined && to !== undefined ? { fromUs: from, toUs: to } : undefined;
  process.stdout.write(`${formatSummary(summarizeProfile(loadProfile(file), opt('--top') ?? 25, window))}\n`);
}
