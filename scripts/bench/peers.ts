/**
 * The end of the broker suite's report: one table per run with Celeriac against every peer
 * (Python Celery prefork and threads, celery-node) in each broker/results setting: tasks/s and
 * their ratios, round-trip latency and worker RSS; then the physical reference (redis-benchmark)
 * and how close each Redis contender gets to the bound it sets. main.ts prints it last.
 */
import type { Gap, Row } from './common';
import { formatReference, taskBound, type RedisReference } from './redisref';

/** A markdown table, padded for the terminal; columns in `left` are left-aligned. */
export function renderTable(header: string[], body: string[][], left: Set<number>): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((row) => row[i]!.length)));
  const line = (cells: string[]): string => `| ${cells.map((c, i) => (left.has(i) ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(' | ')} |`;
  return [line(header), `|${widths.map((w, i) => (left.has(i) ? '-'.repeat(w + 2) : `${'-'.repeat(w + 1)}:`)).join('|')}|`, ...body.map(line)];
}

export const fmt = (v: number | undefined | null, d = 1): string => (v === undefined || v === null || Number.isNaN(v) ? '-' : v.toFixed(d));
const mib = (kib: number | null | undefined): string => (kib ? (kib / 1024).toFixed(0) : '-');
const k = (x: number): string => (x >= 10_000 ? `${(x / 1000).toFixed(0)}k` : x.toFixed(0));

const PEERS = ['prefork', 'threads', 'celerynode'] as const;
const COLUMN: Record<(typeof PEERS)[number], string> = { prefork: 'prefork -c 2', threads: 'threads -c 8', celerynode: 'celery-node' };

export interface PeersInput {
  rows: Row[];
  gaps: Gap[];
  n: number;
  reference?: RedisReference | string;
  redisVersion: string;
}

export function peersReport(p: PeersInput): string[] {
  const settings: { broker: Row['broker']; results: string }[] = [];
  for (const x of [...p.rows, ...p.gaps]) if (!settings.some((s) => s.broker === x.broker && s.results === x.results)) settings.push({ broker: x.broker, results: x.results });
  const notes: string[] = [];
  const mark = (text: string): string => {
    let i = notes.indexOf(text);
    if (i < 0) i = notes.push(text) - 1;
    return `(${i + 1})`;
  };
  const ref = typeof p.reference === 'object' ? p.reference : null;
  const header = [
    'broker', 'results',
    'Celeriac tasks/s', ...PEERS.map((id) => COLUMN[id]),
    ...PEERS.map((id) => `÷ ${COLUMN[id]}`),
    'Celeriac vs Redis bound',
    'RTT p50/p99 ms: Celeriac', ...PEERS.map((id) => COLUMN[id]),
    'RSS idle/end MiB: Celeriac', ...PEERS.map((id) => COLUMN[id]),
  ];
  const body: string[][] = [];
  for (const s of settings) {
    const row = (id: string): Row | undefined => p.rows.find((r) => r.broker === s.broker && r.results === s.results && r.contender.id === id);
    const gap = (id: string): Gap | undefined => p.gaps.find((g) => g.broker === s.broker && g.results === s.results && g.contender.id === id);
    const cel = row('celeriac');
    const rate = (id: string): string => {
      const r = row(id);
      if (r) return fmt(r.drain.rate, 0);
      const g = gap(id);
      return g ? `n/a ${mark(`${g.contender.label}: ${g.why}`)}` : '-';
    };
    const ratio = (id: string): string => {
      const r = row(id);
      return cel && r ? `${(cel.drain.rate / r.drain.rate).toFixed(1)}x` : '-';
    };
    const rtt = (id: string): string => {
      const r = row(id);
      if (r?.latency) return `${fmt(r.latency.p50, 2)}/${fmt(r.latency.p99, 2)}`;
      if (r?.ownLatency && r.contender.kind === 'peer') return `${fmt(r.ownLatency.result.p50, 2)}/${fmt(r.ownLatency.result.p99, 2)} ${mark(`${r.contender.label}: round trips from ${r.ownLatency.client}; the Python client cannot read its results here`)}`;
      return '-';
    };
    const rss = (id: string): string => {
      const r = row(id);
      return r ? `${mib(r.idleRssKiB)}/${mib(r.drain.rssEndKiB)}` : '-';
    };
    let bound = '-';
    if (ref && cel?.drain.commands && s.broker === 'redis') {
      const b = taskBound(ref, cel.drain.commands, p.n);
      bound = `${((cel.drain.rate / b.pipelined) * 100).toFixed(0)}% of ${k(b.pipelined)}`;
    }
    body.push([s.broker, s.results, rate('celeriac'), ...PEERS.map(rate), ...PEERS.map(ratio), bound, rtt('celeriac'), ...PEERS.map(rtt), rss('celeriac'), ...PEERS.map(rss)]);
  }
  const out = [
    `Celeriac (async -c ${celeriacC(p.rows)}) against every peer, this run (medians; ÷ is Celeriac's tasks/s over the peer's; RTT from the Python Celery client; RSS summed over the worker's process group, idle before its drain / at the end of the drain):`,
    ...renderTable(header, body, new Set([0, 1])),
    ...notes.map((n, i) => `  (${i + 1}) ${n}`),
  ];
  if (typeof p.reference === 'string') out.push('', `Physical reference: ${p.reference}`);
  if (ref) out.push('', ...formatReference(ref, p.redisVersion), ...boundLines(p.rows, ref, p.n));
  return out;
}

function celeriacC(rows: Row[]): string {
  return /-c (\d+)/.exec(rows.find((r) => r.contender.id === 'celeriac')?.contender.label ?? '')?.[1] ?? '?';
}

/** Each Redis contender's command mix, its bound, and how much of it the contender reached. */
function boundLines(rows: Row[], ref: RedisReference, n: number): string[] {
  const out = ['  Bound = 1 / sum(commands per task / ops/s of that command): the tasks/s Redis could serve if those commands were all it did.'];
  for (const r of rows.filter((x) => x.broker === 'redis' && x.drain.commands)) {
    const b = taskBound(ref, r.drain.commands!, n);
    out.push(
      `  ${r.results}: ${r.contender.label}: ${b.commandsPerTask.toFixed(2)} commands/task; bound ${k(b.pipelined)} tasks/s pipelined, ${k(b.plain)} unpipelined; ` +
        `measured ${k(r.drain.rate)} = ${((r.drain.rate / b.pipelined) * 100).toFixed(0)}% of the pipelined bound, ${((r.drain.rate / b.plain) * 100).toFixed(0)}% of the unpipelined` +
        (b.approximated.length ? ` (${b.approximated.join(', ')})` : ''),
    );
  }
  return out;
}
