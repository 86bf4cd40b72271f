// Queue, exchange and binding declarations on a real RabbitMQ, compared with what a real Python
// Celery 5.7 worker declares; task_queue_max_priority (x-max-priority) on both sides, in either
// order of declaration; priority order of delivery; and a Celeriac worker meeting a queue that
// Python declared with other arguments. Vhosts amqp-queues-*; no Redis.
import { type ProcessHandle } from '../helpers/processes';
import { pyClient } from '../helpers/python';
import { startPythonWorker } from '../helpers/pyworker';
import { startCeleriacWorker } from '../helpers/celeriacWorker';
import { freshVhost, listBindings, listExchanges, listQueues, queueArguments, type QueueInfo } from '../helpers/rabbit';
import type { SendReply } from '../helpers/pyReplies';

const PRECONDITION = /PRECONDITION_FAILED|inequivalent arg/i;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function countMatches(text: string, re: RegExp): number {
  return [...text.matchAll(new RegExp(re.source, re.flags.includes('g') ? re.flags : `${re.flags}g`))].length;
}

/** Ids of `Task <name>[<id>] succeeded` lines in a worker's log, in log order. */
function succeededIds(output: string, name: string): string[] {
  const re = new RegExp(`Task ${name.replace(/\./g, '\\.')}\\[([0-9a-f-]{36})\\] succeeded`, 'g');
  return [...output.matchAll(re)].map((m) => m[1]!);
}

/** A Python worker on amqp needs up to ~10 s to notice SIGTERM; these tests do not need that. */
async function stopPython(handle: ProcessHandle): Promise<void> {
  await handle.stop(1_500);
}

function py<T>(url: string, command: object, extra: Record<string, string> = {}): Promise<T> {
  return pyClient<T>(command, { env: { BROKER_URL: url, RESULT_BACKEND: 'rpc://', ...extra } });
}

const PRIO_PY = { TASK_QUEUE_MAX_PRIORITY: '10' };
const PRIO_TS = { CELERIAC_TASK_QUEUE_MAX_PRIORITY: '10' };

/** Everything a vhost holds about the `celery` queue, in a comparable form. */
async function celeryDeclarations(vhost: string) {
  const [queues, exchanges, bindings, args] = await Promise.all([
    listQueues(vhost),
    listExchanges(vhost),
    listBindings(vhost),
    queueArguments(vhost),
  ]);
  const q = queues.find((x) => x.name === 'celery');
  if (!q) throw new Error(`no queue celery on ${vhost}: ${JSON.stringify(queues)}`);
  return {
    queue: { name: q.name, durable: q.durable, auto_delete: q.auto_delete, exclusive: q.exclusive, arguments: args.celery },
    exchange: exchanges.find((x) => x.name === 'celery'),
    bindings: bindings
      .filter((b) => b.destination_name === 'celery')
      .sort((a, b) => a.source_name.localeCompare(b.source_name)),
    allExchanges: exchanges,
  };
}

describe('declarations', () => {
  it('a Celeriac worker declares `celery` exactly as a Python Celery worker does', async () => {
    const TS = 'amqp-queues-decl-ts';
    const PY = 'amqp-queues-decl-py';
    const [tsUrl, pyUrl] = [await freshVhost(TS), await freshVhost(PY)];

    const worker = await startCeleriacWorker({ brokerUrl: tsUrl });
    let ts: Awaited<ReturnType<typeof celeryDeclarations>>;
    try {
      ts = await celeryDeclarations(TS);
    } finally {
      await worker.stop();
    }
    // Celery's defaults (app.amqp.Queues for task_default_queue 'celery'): a durable, non
    // auto-delete queue with no x-arguments, bound to the durable direct exchange `celery` with
    // routing key `celery` (plus RabbitMQ's implicit default-exchange binding).
    expect(ts.queue).toEqual({ name: 'celery', durable: true, auto_delete: false, exclusive: false, arguments: {} });
    expect(ts.exchange).toEqual({ name: 'celery', type: 'direct', durable: true, auto_delete: false, internal: false, arguments: {} });
    expect(ts.bindings).toEqual([
      { source_name: '', destination_name: 'celery', destination_kind: 'queue', routing_key: 'celery', arguments: {} },
      { source_name: 'celery', destination_name: 'celery', destination_kind: 'queue', routing_key: 'celery', arguments: {} },
    ]);

    const pyWorker = await startPythonWorker({ brokerUrl: pyUrl });
    let pyDecl: Awaited<ReturnType<typeof celeryDeclarations>>;
    try {
      pyDecl = await celeryDeclarations(PY);
    } finally {
      await stopPython(pyWorker);
    }
    // Field by field, the same as Python's.
    expect(ts.queue).toEqual(pyDecl.queue);
    expect(ts.exchange).toEqual(pyDecl.exchange);
    expect(ts.bindings).toEqual(pyDecl.bindings);
    // Celeriac declares no exchange Python would not (Python also has its pidbox/remote control
    // exchanges, which Celeriac does not implement). `celeryev` (worker heartbeat events) is left
    // out: a Python worker declares it too when heartbeats are on, but the pyworker helper starts
    // it --without-heartbeat.
    const pyNames = new Set([...pyDecl.allExchanges.map((x) => x.name), 'celeryev']);
    expect(ts.allExchanges.map((x) => x.name).filter((n) => !pyNames.has(n))).toEqual([]);
  });
});

describe('task_queue_max_priority = 10 on both sides', () => {
  it('queue declared first by a Python worker, then consumed by Celeriac: no PRECONDITION_FAILED, tasks flow', async () => {
    const VHOST = 'amqp-queues-prio-py-first';
    const url = await freshVhost(VHOST);
    const pyWorker = await startPythonWorker({ brokerUrl: url, backendUrl: 'rpc://', extraEnv: PRIO_PY });
    try {
      expect((await queueArguments(VHOST)).celery).toEqual({ 'x-max-priority': 10 });
      const viaPython = await py<SendReply>(url, { op: 'send', task: 'py.add', args: [2, 3], wait: true }, PRIO_PY);
      expect(viaPython).toMatchObject({ state: 'SUCCESS', result: 5 });
    } finally {
      await stopPython(pyWorker);
    }

    const worker = await startCeleriacWorker({ brokerUrl: url, backendUrl: 'rpc://', env: PRIO_TS });
    try {
      const reply = await py<SendReply>(url, { op: 'send', task: 'demo.add', args: [20, 22], options: { priority: 7 }, wait: true }, PRIO_PY);
      expect(reply).toMatchObject({ state: 'SUCCESS', result: 42 });
      expect((await queueArguments(VHOST)).celery).toEqual({ 'x-max-priority': 10 });
      expect((await listQueues(VHOST)).find((q) => q.name === 'celery')).toMatchObject({ consumers: 1 });
    } finally {
      await worker.stop();
    }
    expect(pyWorker.output()).not.toMatch(PRECONDITION);
    expect(worker.output()).not.toMatch(PRECONDITION);
    expect(worker.output()).not.toMatch(/exists with other arguments/);
  });

  it('queue declared first by Celeriac, then used by a Python worker: no PRECONDITION_FAILED, tasks flow', async () => {
    const VHOST = 'amqp-queues-prio-ts-first';
    const url = await freshVhost(VHOST);
    const worker = await startCeleriacWorker({ brokerUrl: url, backendUrl: 'rpc://', env: PRIO_TS });
    try {
      expect((await queueArguments(VHOST)).celery).toEqual({ 'x-max-priority': 10 });
      // The Python producer declares `celery` too (with its x-max-priority): equivalent, accepted.
      const reply = await py<SendReply>(url, { op: 'send', task: 'demo.add', args: [2, 3], options: { priority: 3 }, wait: true }, PRIO_PY);
      expect(reply).toMatchObject({ state: 'SUCCESS', result: 5 });
    } finally {
      await worker.stop();
    }

    const pyWorker = await startPythonWorker({ brokerUrl: url, backendUrl: 'rpc://', extraEnv: PRIO_PY });
    try {
      const viaPython = await py<SendReply>(url, { op: 'send', task: 'py.add', args: [40, 2], options: { priority: 9 }, wait: true }, PRIO_PY);
      expect(viaPython).toMatchObject({ state: 'SUCCESS', result: 42 });
      expect((await queueArguments(VHOST)).celery).toEqual({ 'x-max-priority': 10 });
    } finally {
      await stopPython(pyWorker);
    }
    expect(worker.output()).not.toMatch(PRECONDITION);
    expect(pyWorker.output()).not.toMatch(PRECONDITION);
    expect(pyWorker.output()).toMatch(/Task py\.add\[[0-9a-f-]+\] succeeded/);
  });

  it('higher priority is served first (AMQP rule): 10 prio-1 then 10 prio-9 waiting, -c 1 --prefetch-multiplier 1 runs the 9s first', async () => {
    const VHOST = 'amqp-queues-prio-order';
    const url = await freshVhost(VHOST);
    // The Python producer declares `celery` with x-max-priority 10 before publishing; no worker
    // consumes until all 20 wait.
    const noResults = { RESULT_BACKEND: '', ...PRIO_PY };
    const p1 = await py<{ ids: string[] }>(url, { op: 'send_many', task: 'demo.sleep', args: [0.05], options: { priority: 1 }, count: 10 }, noResults);
    const p9 = await py<{ ids: string[] }>(url, { op: 'send_many', task: 'demo.sleep', args: [0.05], options: { priority: 9 }, count: 10 }, noResults);
    expect((await queueArguments(VHOST)).celery).toEqual({ 'x-max-priority': 10 });
    expect((await listQueues(VHOST)).find((q) => q.name === 'celery')).toMatchObject({ messages_ready: 20 });

    const worker = await startCeleriacWorker({
      brokerUrl: url,
      concurrency: 1,
      extraArgs: ['--prefetch-multiplier', '1'],
      env: PRIO_TS,
    });
    // While it works through them (~20 x 50 ms), the broker never lets it hold more than one.
    let maxUnacked = 0;
    try {
      const deadline = Date.now() + 20_000;
      while (succeededIds(worker.output(), 'demo.sleep').length < 20) {
        if (Date.now() > deadline) throw new Error(`not all 20 ran; output:\n${worker.output()}`);
        const q = (await listQueues(VHOST)).find((x) => x.name === 'celery');
        maxUnacked = Math.max(maxUnacked, q?.messages_unacknowledged ?? 0);
      }
    } finally {
      await worker.stop();
    }
    // All priority 9 first (FIFO among equals), then all priority 1.
    expect(succeededIds(worker.output(), 'demo.sleep')).toEqual([...p9.ids, ...p1.ids]);
    expect(maxUnacked).toBeLessThanOrEqual(1);
    expect(worker.output()).not.toMatch(PRECONDITION);
  });
});

describe('a queue Python declared WITH x-max-priority, a Celeriac worker WITHOUT the setting', () => {
  it('Celeriac warns once, uses the queue as declared and runs the tasks (no crash, no reconnect loop)', async () => {
    const VHOST = 'amqp-queues-mismatch';
    const url = await freshVhost(VHOST);
    const waiting = await py<{ ids: string[] }>(url, { op: 'send_many', task: 'demo.add', args: [1, 2], count: 3 }, { RESULT_BACKEND: '', ...PRIO_PY });
    expect((await queueArguments(VHOST)).celery).toEqual({ 'x-max-priority': 10 });

    const worker = await startCeleriacWorker({ brokerUrl: url, backendUrl: 'rpc://' });
    try {
      await worker.waitForOutput(/queue celery exists with other arguments/);
      for (const id of waiting.ids) await worker.waitForOutput(new RegExp(`Task demo\\.add\\[${id}\\] succeeded`));
      // And new work keeps flowing, results included.
      const reply = await py<SendReply>(url, { op: 'send', task: 'demo.add', args: [2, 3], options: { priority: 5 }, wait: true }, PRIO_PY);
      expect(reply).toMatchObject({ state: 'SUCCESS', result: 5 });
      await sleep(1_000);
      const celery = (await listQueues(VHOST)).find((q): q is QueueInfo => q.name === 'celery');
      expect(celery).toMatchObject({ consumers: 1, messages: 0 });
      // Used as declared: the queue was not deleted or re-declared.
      expect((await queueArguments(VHOST)).celery).toEqual({ 'x-max-priority': 10 });
    } finally {
      expect(await worker.stop()).toEqual({ code: 0, signal: null });
    }
    const out = worker.output();
    expect(countMatches(out, /exists with other arguments/)).toBe(1);
    expect(countMatches(out, /ready\./)).toBe(1);
    expect(out).not.toMatch(/connection lost|reconnect|channel error/i);
  });
});
