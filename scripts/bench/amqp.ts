/**
 * The AMQP half of `npm run bench` (see main.ts and docs/benchmarks.md), on the bench's own
 * RabbitMQ node (rabbit.ts), in two modes: results ignored, and Celery's rpc:// results.
 *
 *   1. Every drain gets a fresh vhost. Per mode, the Python producer (pybench.py enqueue-amqp)
 *      builds N `demo.noop` messages once and publishes each of them into the `celery` queue of
 *      every vhost of that mode: byte-identical messages, same task ids, for every contender.
 *      In rpc mode it also declares its reply queue (Celery's rpc binding: the producer's oid,
 *      durable, auto-delete, x-expires) in every vhost; the workers send the results there.
 *   2. A watcher runs inside the broker (spawned by `rabbitmqctl eval`, see WATCHER): every ~2 ms
 *      it reads the queue process's own counters (messages_ready; messages = ready + unacked)
 *      and sends a UDP datagram to the bench when something happens:
 *        start    messages_ready < N: the worker was sent its first message (start-up excluded);
 *        acked    messages = 0: every message delivered AND acked (the broker processed the acks);
 *        replies  the reply queue holds N messages: every rpc:// result arrived.
 *      The drain ends at `acked` (results ignored) or `replies` (rpc).
 *   3. After a contender's last rpc drain, with its worker idle and still running: sequential
 *      apply_async().get() round trips over rpc:// from Python, and from the worker's own Node
 *      client (Celeriac's app.sendTask, celery-node's client), p50/p99.
 *   4. A reference line: a bare amqplib consumer (rawconsumer.ts: ack each message, and in rpc
 *      mode publish a small result first), no task framework: what the broker allows here.
 *   5. celery-node (peer.ts) drains the same messages. It cannot ignore results and has no
 *      rpc:// backend: it only runs with results on, into a queue per task (its amqp backend),
 *      and its drain ends when the node has routed N results (amqpwatch.ts).
 *   6. Per mode and contender, the idle RSS: a fresh worker on a fresh, empty vhost (idle.ts).
 *      The RSS at the end of each drain is read when the watcher's end datagram arrives.
 *   7. With --profile, one more Celeriac drain per mode under `node --cpu-prof`, summarized.
 */
import { execFile } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import { mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Celeriac } from '../../workers/app/app';
import {
  BENCH_DIR,
  ROOT,
  cleanEnv,
  groupCpu,
  groupRssKiB,
  latencyOf,
  log,
  logWorkerOutput,
  machineBusy,
  medianRun,
  monoUs,
  procStat,
  sleep,
  start,
  stop,
  type ContenderSpec,
  type DrainResult,
  type Gap,
  type LatencyResult,
  type Proc,
  type Row,
  celeriacEntry,
} from './common';
import { bin, consumerWaitExpr, vhostName, watcherExpr, type AmqpMode, type ResultsWatch } from './amqpwatch';
import { formatSummary, loadProfile, summarizeProfile } from './cpuprofile';
import { idleRss } from './idle';
import { CELERYNODE, CELERYNODE_CANNOT, CELERYNODE_CLIENT, celerynodeArgv, celerynodeGap, celerynodeLatency } from './peer';
import { startRabbit, type Rabbit } from './rabbit';
import type { BenchOutcome } from './redis';

export type { AmqpMode } from './amqpwatch';

export interface AmqpBenchOptions {
  n: number;
  latencyN: number;
  warmup: number;
  celeriacC: number;
  /** Extra node arguments for Celeriac workers (experiments, e.g. a -r preload). */
  celeriacNodeArgs: string[];
  /** Run Celeriac from dist/ (--compiled) instead of the source under tsx. */
  compiled: boolean;
  drainTimeoutMs: number;
  /** Drains per Python contender (and per Celeriac contender at least). */
  repeat: number;
  /** Drains per Celeriac contender: they are short, so a few more cost little. */
  celeriacRepeat: number;
  modes: AmqpMode[];
  /** Tasks per celery-node drain (at most n): it runs at tens of tasks/s here (see the doc). */
  celerynodeN: number;
  /** Quiet time before an idle RSS reading. */
  settleMs: number;
  celerynodeNoDelay: boolean;
  only: Set<string> | null;
  profile: boolean;
  python: string;
  venvBin: string;
  tempDir: string;
}

interface Contender extends ContenderSpec {
  argv: (url: string, mode: AmqpMode, profileDir?: string) => { cmd: string; args: string[]; cwd: string; env: NodeJS.ProcessEnv };
}

let rabbit: Rabbit | null = null;
let udp: Socket | null = null;

/** Stop the node and its epmd (workers are stopped by the caller first). */
export async function stopAmqp(): Promise<void> {
  udp?.close();
  udp = null;
  await rabbit?.stop();
  rabbit = null;
}

export async function runAmqp(o: AmqpBenchOptions): Promise<BenchOutcome> {
  const N = o.n;
  const dir = join(o.tempDir, 'amqp');
  mkdirSync(dir, { recursive: true });
  log('amqp: starting rabbitmq-server...');
  const rmq = await startRabbit(dir);
  rabbit = rmq;
  log(`amqp: rabbitmq ${rmq.version} node ${rmq.node} on 127.0.0.1:${rmq.port} (beam pid ${rmq.beamPid}) up in ${rmq.startupS.toFixed(1)} s`);

  // Watcher reports: token -> handler, timestamped on arrival.
  const sock = createSocket('udp4');
  udp = sock;
  const handlers = new Map<string, (event: string, rest: string[], atMs: number, atUs: number) => void>();
  sock.on('message', (buf) => {
    const atMs = performance.now();
    const atUs = monoUs();
    const [token, event, ...rest] = buf.toString('utf8').split(' ');
    if (token && event) handlers.get(token)?.(event, rest, atMs, atUs);
  });
  await new Promise<void>((res, rej) => {
    sock.once('error', rej);
    sock.bind(0, '127.0.0.1', () => res());
  });
  const udpPort = sock.address().port;

  const pyEnv = (url: string, mode: AmqpMode): NodeJS.ProcessEnv => ({
    ...process.env,
    BROKER_URL: url,
    RESULT_BACKEND: mode === 'rpc' ? 'rpc://' : '',
    IGNORE_RESULT: mode === 'ignored' ? '1' : '0',
    PYTHONPATH: BENCH_DIR,
    PYTHONUNBUFFERED: '1',
    PYTHONDONTWRITEBYTECODE: '1',
  });

  const celeriac = (c: number): Contender => ({
    id: c === o.celeriacC ? 'celeriac' : `celeriac${c}`,
    label: `Celeriac async -c ${c}`,
    kind: 'celeriac',
    processes: 1,
    argv: (url, mode, profileDir) => ({
      cmd: process.execPath,
      args: [
        ...(profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : []),
        ...celeriacEntry(o.compiled, o.celeriacNodeArgs), 'worker',
        '-b', url, '--result-backend', mode === 'rpc' ? 'rpc://' : '', '-c', String(c), '-l', 'warning', '-n', `bench-c${c}@%h`,
      ],
      cwd: ROOT,
      env: cleanEnv(),
    }),
  });
  const celery = (pool: 'prefork' | 'threads', c: number): Contender => ({
    id: pool,
    label: `Python Celery ${pool} -c ${c}`,
    kind: 'python',
    processes: pool === 'prefork' ? 1 + c : 1,
    argv: (url, mode) => ({
      cmd: join(o.venvBin, 'celery'),
      args: ['-A', 'pybench', 'worker', '-P', pool, '-c', String(c), '-l', 'warning', '-n', `bench-${pool}@%h`, '--without-mingle', '--without-gossip', '--without-heartbeat'],
      cwd: BENCH_DIR,
      env: pyEnv(url, mode),
    }),
  });
  const reference: Contender = {
    id: 'amqplib',
    label: `bare amqplib consumer (reference)`,
    kind: 'reference',
    processes: 1,
    argv: (url, mode) => ({
      cmd: process.execPath,
      args: ['-r', 'tsx/cjs', join(BENCH_DIR, 'rawconsumer.ts'), url, mode, String(o.celeriacC * 4)],
      cwd: ROOT,
      env: cleanEnv(),
    }),
  };
  // Its results go to a queue per task, on the same vhost (its amqp backend): see the header.
  const celerynode: Contender = {
    ...CELERYNODE,
    label: CELERYNODE.label.replace(')', '; a queue per result)'),
    argv: (url) => celerynodeArgv(url, url, o.celerynodeNoDelay),
  };
  const all = [celeriac(o.celeriacC), ...(o.celeriacC !== 8 ? [celeriac(8)] : []), celery('prefork', 2), celery('threads', 8), reference, celerynode];
  const selected = all.filter((c) => !o.only || o.only.has(c.id));
  const gaps: Gap[] = [];
  const runsIn = (mode: AmqpMode): Contender[] =>
    selected.filter((c) => {
      if (c.id !== CELERYNODE.id || mode === 'rpc') return true;
      gaps.push(celerynodeGap('amqp', mode, CELERYNODE_CANNOT.ignored));
      return false;
    });
  // celery-node's drains declare N durable queues (and its vhost's deletion removes them): they
  // are long, so it gets the Python contenders' count.
  const drainsOf = (c: Contender): number => (c.kind === 'python' || c.kind === 'peer' ? o.repeat : Math.max(o.repeat, o.celeriacRepeat));
  // Declaring a durable queue per result, celery-node manages tens of tasks/s on this node: N =
  // 20,000 would take minutes. It drains fewer messages of the same kind (its own enqueue).
  const tasksOf = (c: Contender): number => (c.id === CELERYNODE.id ? Math.min(N, o.celerynodeN) : N);

  let seq = 0;
  async function drain(c: Contender, mode: AmqpMode, vhost: string, replyQueue: string | null, n: number, profileDir?: string): Promise<{ result: DrainResult; proc: Proc }> {
    const results: ResultsWatch = mode === 'ignored' ? null : c.id === CELERYNODE.id ? 'routed' : replyQueue ? { queue: replyQueue } : null;
    const token = `d${++seq}`;
    let worker: Proc | null = null;
    let startMs = 0;
    let startUs = 0;
    let cpuAtStart = 0;
    let brokerAtStart = 0;
    let busyAtStart = 0;
    type End = { ms: number; us: number; workerCpuS: number; brokerCpuS: number; busyS: number; rssEndKiB: number };
    let ended: End | null = null;
    let failed: string | null = null;
    const endEvent = mode === 'rpc' ? 'replies' : 'acked';
    let wake: () => void = () => undefined;
    const woken = new Promise<void>((res) => (wake = res));
    handlers.set(token, (event, rest, atMs, atUs) => {
      if (event === 'start' && !startMs && worker) {
        startMs = atMs;
        startUs = atUs;
        cpuAtStart = groupCpu(worker.pid);
        brokerAtStart = procStat(rmq.beamPid)?.cpu ?? 0;
        busyAtStart = machineBusy();
      } else if (event === endEvent && !ended && worker) {
        ended = {
          ms: atMs,
          us: atUs,
          workerCpuS: groupCpu(worker.pid) - cpuAtStart,
          brokerCpuS: (procStat(rmq.beamPid)?.cpu ?? 0) - brokerAtStart,
          busyS: machineBusy() - busyAtStart,
          rssEndKiB: groupRssKiB(worker.pid),
        };
        wake();
      } else if (event === 'deadline' || event === 'gone') {
        failed = `watcher: ${event} ${rest.join(' ')}`;
        wake();
      }
    });
    try {
      await rmq.evalErl(watcherExpr({ token, vhost, results, n, port: udpPort, timeoutMs: o.drainTimeoutMs + 30_000 }));
      const url = rmq.url(vhost);
      const { cmd, args, cwd, env } = c.argv(url, mode, profileDir);
      const spawnedAt = performance.now();
      const proc = start(c.label, cmd, args, { cwd, env });
      worker = proc;
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([woken, proc.exit, new Promise<void>((res) => (timer = setTimeout(res, o.drainTimeoutMs)))]);
      clearTimeout(timer);
      const end = ended as End | null;
      if (!end) {
        const state = await rmq.ctl(['list_queues', '-p', vhost, 'name', 'messages_ready', 'messages_unacknowledged', 'consumers', '-q']).catch((e: Error) => e.message);
        const why = failed ?? (proc.exited ? 'the worker exited' : `no end after ${o.drainTimeoutMs / 1000} s`);
        await stop(proc, 5_000);
        throw new Error(`amqp/${mode}: ${c.label}: ${why}; start seen: ${startMs > 0}; queues:\n${state}\nworker output:\n${proc.output()}`);
      }
      const drainS = (end.ms - startMs) / 1000;
      return {
        proc,
        result: {
          // The watcher's previous poll was at most ~2-3 ms before the `start` datagram.
          windowUs: { fromUs: startUs - 5_000, toUs: end.us },
          startupS: (startMs - spawnedAt) / 1000,
          drainS,
          tasks: n,
          rate: n / drainS,
          workerCpuS: end.workerCpuS,
          brokerCpuS: end.brokerCpuS,
          otherCores: (end.busyS - end.workerCpuS - end.brokerCpuS) / drainS,
          rssEndKiB: end.rssEndKiB,
        },
      };
    } finally {
      handlers.delete(token);
    }
  }

  async function pyLatency(url: string): Promise<LatencyResult> {
    const out = await new Promise<string>((res, rej) => {
      execFile(
        o.python,
        [join(BENCH_DIR, 'pybench.py'), 'latency', String(o.latencyN), String(o.warmup)],
        { cwd: BENCH_DIR, env: pyEnv(url, 'rpc'), encoding: 'utf8', timeout: 120_000 },
        (err, stdout, stderr) => (err ? rej(new Error(`pybench latency: ${err.message}\n${stderr}`)) : res(stdout)),
      );
    });
    return latencyOf((JSON.parse(out.trim().split('\n').pop()!) as { ms: number[] }).ms);
  }

  async function tsLatency(url: string): Promise<LatencyResult> {
    const app = new Celeriac({ brokerUrl: url, resultBackend: 'rpc://' });
    try {
      const samples: number[] = [];
      for (let i = 0; i < o.warmup + o.latencyN; i++) {
        const t = performance.now();
        const r = await app.sendTask('demo.noop');
        await r.get({ timeout: 30 });
        if (i >= o.warmup) samples.push(performance.now() - t);
      }
      return latencyOf(samples);
    } finally {
      await app.close();
    }
  }

  /** Until the broker VM uses under 5% of a core over 250 ms, twice in a row (at most 15 s). */
  async function waitBrokerIdle(): Promise<void> {
    const until = performance.now() + 15_000;
    let quiet = 0;
    let last = procStat(rmq.beamPid)?.cpu ?? 0;
    while (quiet < 2 && performance.now() < until) {
      await sleep(250);
      const now = procStat(rmq.beamPid)?.cpu ?? 0;
      quiet = now - last < 0.0125 ? quiet + 1 : 0;
      last = now;
    }
  }

  const createVhosts = (names: string[]): Promise<string> =>
    rmq.evalErl(
      `[begin rabbit_vhost:add(V, <<"bench">>), rabbit_auth_backend_internal:set_permissions(<<"guest">>, V, <<".*">>, <<".*">>, <<".*">>, <<"bench">>) end || V <- [${names.map(bin).join(', ')}]], ok.`,
    );
  // Up to 10 minutes: after a celery-node drain the vhost holds N result queues to delete.
  const deleteVhost = (name: string): Promise<string> => rmq.ctl(['eval', `rabbit_vhost:delete(${bin(name)}, <<"bench">>).`], 600_000);

  async function idle(c: Contender, mode: AmqpMode): Promise<number> {
    const vhost = vhostName(mode, c.id, 'idle');
    await createVhosts([vhost]);
    try {
      return await idleRss(
        {
          label: `amqp/${mode}: ${c.label}`,
          processes: c.processes,
          spawn: () => {
            const { cmd, args, cwd, env } = c.argv(rmq.url(vhost), mode);
            return start(c.label, cmd, args, { cwd, env });
          },
          consuming: async (deadline) => {
            const left = Math.max(1_000, Math.round(deadline - performance.now()));
            const out = await rmq.ctl(['eval', consumerWaitExpr(vhost, left)], left + 30_000);
            if (!out.includes('consuming')) throw new Error(`${c.label}: no consumer on ${vhost}'s celery queue: ${out.trim()}`);
          },
        },
        o.settleMs,
      );
    } finally {
      await deleteVhost(vhost);
    }
  }

  async function ownLatency(c: Contender, url: string): Promise<Row['ownLatency']> {
    if (c.kind === 'celeriac') return { client: 'TS client sendTask().get()', result: await tsLatency(url) };
    if (c.id === CELERYNODE.id) return { client: CELERYNODE_CLIENT, result: await celerynodeLatency(url, url, o.latencyN, o.warmup, o.celerynodeNoDelay) };
    return null;
  }

  const rows: Row[] = [];
  let profileText = '';
  for (const mode of o.modes) {
    const contenders = runsIn(mode);
    const idleKiB = new Map<string, number>();
    // Not the reference: it consumes a queue it never declares, and it is no worker.
    for (const c of contenders) if (c.kind !== 'reference') idleKiB.set(c.id, await idle(c, mode));
    // The drains of this mode, interleaved: round i runs every contender that has an i-th drain.
    const plan: { c: Contender; i: number; vhost: string; last: boolean; n: number }[] = [];
    const rounds = Math.max(...contenders.map(drainsOf), 0);
    for (let i = 1; i <= rounds; i++) {
      for (const c of contenders) if (i <= drainsOf(c)) plan.push({ c, i, vhost: vhostName(mode, c.id, i), last: i === drainsOf(c), n: tasksOf(c) });
    }
    const profileC = celeriac(o.celeriacC);
    const profileVhost = o.profile ? vhostName(mode, 'profile', 1) : null;
    const expected = new Map<string, number>([...plan.map((p): [string, number] => [p.vhost, p.n]), ...(profileVhost ? [[profileVhost, N] as [string, number]] : [])]);
    const vhosts = [...expected.keys()];
    if (!vhosts.length) continue;
    await createVhosts(vhosts);
    // One producer run per message count: every vhost of a run gets the very same messages.
    let replyQueue: string | null = null;
    for (const n of new Set(expected.values())) {
      const group = vhosts.filter((v) => expected.get(v) === n);
      const enq = await new Promise<{ n: number; seconds: number; reply_queue: string | null }>((res, rej) => {
        execFile(
          o.python,
          [join(BENCH_DIR, 'pybench.py'), 'enqueue-amqp', String(n), ...group.map((v) => rmq.url(v))],
          { cwd: BENCH_DIR, env: pyEnv(rmq.url(group[0]!), mode), encoding: 'utf8', timeout: 600_000 },
          (err, stdout, stderr) => (err ? rej(new Error(`pybench enqueue-amqp: ${err.message}\n${stderr}`)) : res(JSON.parse(stdout.trim().split('\n').pop()!))),
        );
      });
      log(`amqp/${mode}: enqueued ${n} demo.noop messages into each of ${group.length} vhosts from Python in ${enq.seconds.toFixed(2)} s (not measured)`);
      if (mode === 'rpc' && !enq.reply_queue) throw new Error('pybench enqueue-amqp declared no reply queue in rpc mode');
      // Every contender that reads rpc:// replies drains N: their reply queue is the N run's.
      if (mode === 'rpc' && (n === N || !replyQueue)) replyQueue = enq.reply_queue;
    }
    // Let the broker finish writing the persistent messages before anything is timed.
    await waitBrokerIdle();
    const counts = (
      await rmq.evalErl(
        `[case rabbit_amqqueue:lookup(rabbit_misc:r(V, queue, <<"celery">>)) of {ok, Q} -> proplists:get_value(messages, rabbit_amqqueue:info(Q, [messages])); _ -> -1 end || V <- [${vhosts.map(bin).join(', ')}]].`,
      )
    ).match(/-?\d+/g)?.map(Number) ?? [];
    if (counts.length !== vhosts.length || counts.some((x, i) => x !== expected.get(vhosts[i]!))) {
      throw new Error(`amqp/${mode}: expected ${JSON.stringify([...expected.values()])} messages in the vhosts' celery queues, found ${JSON.stringify(counts)}`);
    }

    const runs = new Map<string, DrainResult[]>(contenders.map((c) => [c.id, []]));
    const latencies = new Map<string, { py: LatencyResult | null; own: Row['ownLatency'] }>();
    for (const { c, i, vhost, last, n } of plan) {
      log(`amqp/${mode}: ${c.label}: draining ${n} tasks (${i}/${drainsOf(c)})...`);
      const { result, proc } = await drain(c, mode, vhost, replyQueue, n);
      runs.get(c.id)!.push(result);
      log(`amqp/${mode}: ${c.label}: ${result.rate.toFixed(0)} tasks/s (${result.drainS.toFixed(2)} s; start-up ${result.startupS.toFixed(2)} s excluded; worker ${result.workerCpuS.toFixed(2)} s CPU, broker ${result.brokerCpuS.toFixed(2)} s, rest of the machine ${Math.max(0, result.otherCores).toFixed(2)} cores; RSS at the end ${(result.rssEndKiB / 1024).toFixed(1)} MiB)`);
      try {
        if (mode === 'rpc' && last && o.latencyN > 0) {
          const url = rmq.url(vhost);
          // A Celery 5 client reads rpc:// replies only: celery-node's per-task queues are
          // Celery 4's old amqp backend, which Celery 5 removed.
          const py = c.id === CELERYNODE.id ? null : await pyLatency(url);
          latencies.set(c.id, { py, own: await ownLatency(c, url) });
        }
      } finally {
        await stop(proc);
        logWorkerOutput(proc);
      }
      await deleteVhost(vhost);
    }
    for (const c of contenders) {
      const r = runs.get(c.id)!;
      const l = latencies.get(c.id);
      rows.push({ broker: 'amqp', results: mode === 'rpc' ? 'rpc' : 'ignored', contender: c, runs: r, drain: medianRun(r), latency: l?.py ?? null, ownLatency: l?.own ?? null, idleRssKiB: idleKiB.get(c.id) ?? null });
    }

    if (profileVhost) {
      const profDir = join('/tmp', `celeriac-bench-prof-amqp-${Date.now()}`);
      mkdirSync(profDir, { recursive: true });
      log(`amqp/${mode}: ${profileC.label} under --cpu-prof: draining ${N} tasks...`);
      const { result, proc } = await drain(profileC, mode, profileVhost, replyQueue, N, profDir);
      await stop(proc);
      await deleteVhost(profileVhost);
      const file = readdirSync(profDir).find((f) => f.endsWith('.cpuprofile'));
      if (!file) throw new Error(`no .cpuprofile written to ${profDir}`);
      const summary = summarizeProfile(loadProfile(join(profDir, file)), 25, result.windowUs);
      profileText +=
        `\nProfile of ${profileC.label} draining ${N} on AMQP, ${mode === 'rpc' ? 'rpc:// results' : 'results ignored'} (profiled run: ${result.rate.toFixed(0)} tasks/s; ` +
        `worker CPU ${result.workerCpuS.toFixed(2)} s, RabbitMQ CPU ${result.brokerCpuS.toFixed(2)} s)\n` +
        `file: ${join(profDir, file)}\n${formatSummary(summary)}\n`;
    }
  }
  const version = `rabbitmq ${rmq.version}`;
  await stopAmqp();
  const notes: string[] = [];
  for (const r of rows.filter((x) => x.contender.id === CELERYNODE.id && x.drain.tasks !== N)) {
    notes.push(
      `amqp/${r.results}: celery-node drained ${r.drain.tasks} tasks, not ${N} (--celerynode-amqp-n; the same kind of message from the same producer): ` +
        `it declares a durable queue per result, and ${N} would take about ${Math.round(N / r.drain.rate)} s at its rate.`,
    );
  }
  return { rows, gaps, notes, profileText, version };
}
