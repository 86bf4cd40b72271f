/**
 * A real Python Celery event receiver (what `celery events` and Flower run): app.events.Receiver
 * feeding celery.events.state.State, printing one JSON line per event with a State snapshot.
 *
 *   startReceiver(brokerUrl, hostname, env?): Promise<ProcessHandle>   ready once subscribed; stops
 *     itself on that worker's worker-offline (or after CAPTURE_SECONDS, 40 by default)
 *   lines(receiver): Line[]                    every event seen so far
 *   waitUntil(receiver, what, cond, timeoutMs?): Promise<Line[]>   polls until cond(lines) holds
 *   expectHeartbeat(brokerUrl, hostnamePrefix, env?)   a receiver sees that worker's heartbeat, then stops
 */
import { INTEROP_DIR, pythonBin } from './env';
import { startProcess, type ProcessHandle } from './processes';

/** Prints one JSON line per event: the event and a State snapshot after it; stops on the worker's worker-offline. */
const RECEIVER = `
import json, os, time
from celery import Celery
from celery.events.state import State

app = Celery(broker=os.environ["BROKER_URL"])
if os.environ.get("BROKER_TRANSPORT_OPTIONS"):
    app.conf.broker_transport_options = json.loads(os.environ["BROKER_TRANSPORT_OPTIONS"])
stop_on = os.environ["STOP_ON_OFFLINE"]
deadline = time.time() + float(os.environ.get("CAPTURE_SECONDS", "40"))
state = State()


def snapshot():
    return {
        "workers": {h: {"alive": w.alive, "active": w.active, "processed": w.processed,
                        "sw_ident": w.sw_ident, "heartbeats": len(w.heartbeats)}
                    for h, w in state.workers.items()},
        "tasks": {u: {"state": t.state, "name": t.name, "result": t.result,
                      "exception": t.exception, "retries": t.retries,
                      "worker": t.worker.hostname if t.worker else None}
                  for u, t in state.tasks.items()},
    }


class Receiver(app.events.Receiver):
    iterations = 0

    def on_iteration(self):
        self.iterations += 1
        # Redis subscribes on the first drain: only then is nothing lost.
        if self.iterations == 2:
            print("READY", flush=True)
        if time.time() > deadline:
            self.should_stop = True


def on_event(event):
    state.event(event)
    print(json.dumps({"event": event, "state": snapshot()}, default=repr), flush=True)
    if event["type"] == "worker-offline" and event["hostname"] == stop_on:
        recv.should_stop = True


with app.connection_for_read() as conn:
    recv = Receiver(conn, handlers={"*": on_event})
    for _ in recv.consume(limit=None, timeout=None, safety_interval=0.5):
        pass
`;

export type Ev = Record<string, unknown> & { type: string; hostname: string; clock: number; uuid?: string };

export interface Snapshot {
  workers: Record<string, { alive: boolean; active: number; processed: number; sw_ident: string; heartbeats: number }>;
  tasks: Record<string, { state: string; name: string | null; result: string | null; exception: string | null; retries: number | null; worker: string | null }>;
}

export interface Line {
  event: Ev;
  state: Snapshot;
}

export async function startReceiver(brokerUrl: string, hostname: string, env: Record<string, string> = {}): Promise<ProcessHandle> {
  const handle = startProcess(pythonBin(), ['-c', RECEIVER], {
    cwd: INTEROP_DIR,
    env: { BROKER_URL: brokerUrl, STOP_ON_OFFLINE: hostname, PYTHONUNBUFFERED: '1', PYTHONDONTWRITEBYTECODE: '1', ...env },
    readyPattern: /^READY$/m,
    timeoutMs: 30_000,
  });
  await handle.waitReady();
  return handle;
}

export function lines(receiver: ProcessHandle): Line[] {
  return receiver
    .output()
    .split('\n')
    .filter((l) => l.startsWith('{"event"'))
    .map((l) => JSON.parse(l) as Line);
}

export async function waitUntil(receiver: ProcessHandle, what: string, cond: (ls: Line[]) => boolean, timeoutMs = 20_000): Promise<Line[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ls = lines(receiver);
    if (cond(ls)) return ls;
    if (Date.now() > deadline) throw new Error(`receiver never saw ${what}; output:\n${receiver.output()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}


/**
 * Starts a receiver on `brokerUrl`, waits for a worker-heartbeat from a node whose name starts
 * with `hostnamePrefix` (the event path works end to end, e.g. after a broker failover), stops it.
 */
export async function expectHeartbeat(brokerUrl: string, hostnamePrefix: string, env: Record<string, string> = {}): Promise<void> {
  const receiver = await startReceiver(brokerUrl, '', env);
  try {
    await waitUntil(receiver, `a worker-heartbeat of ${hostnamePrefix}*`, (ls) =>
      ls.some((l) => l.event.type === 'worker-heartbeat' && l.event.hostname.startsWith(hostnamePrefix)),
    );
  } finally {
    await receiver.stop();
  }
}
