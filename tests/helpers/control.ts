/**
 * Driving workers by remote control from real Python Celery (tests/interop/pyapp.py), and running
 * batches of tasks from Python, for the control-* and mixed-fleet tests.
 *
 *   pyControl(env, calls, opts?): Promise<unknown[]>
 *     one Python process runs each call in order and returns the replies in order:
 *       ['inspect', method, args, kwargs] -> app.control.inspect(destination, timeout).<method>(*args, **kwargs)
 *       ['control', method, args, kwargs] -> app.control.<method>(*args, destination, reply=True, timeout, **kwargs)
 *     opts: { destination?: string[] (absent = broadcast to every node), timeout? (seconds, 2),
 *             waitFor?: string[] (first ping until each of these nodes answers: a pidbox comes up
 *             just after `ready.`) }
 *   runAll(env, tasks): Promise<{ elapsed, outcomes }>
 *     sends [name, args] tasks from Python, waits for every result; elapsed = seconds from the first
 *     send to the last result; each outcome {state: 'SUCCESS', result} or {state, exc_type}
 *   waitFor(what, fn, timeoutMs = 15000): polls fn every 200 ms until it resolves true
 *
 * env carries BROKER_URL and RESULT_BACKEND for pyapp.
 */
import { runPyJson } from './python';

export type ControlCall = ['inspect' | 'control', string, unknown[], Record<string, unknown>];

export interface ControlOptions {
  destination?: string[];
  timeout?: number;
  waitFor?: string[];
}

const CONTROL = `
import json, os, time
from pyapp import app
dest = json.loads(os.environ["DEST"])
timeout = float(os.environ["TIMEOUT"])
wait_for = json.loads(os.environ["WAIT_FOR"])
if wait_for:
    deadline = time.time() + 20
    while time.time() < deadline:
        answered = app.control.inspect(destination=wait_for, timeout=0.5).ping() or {}
        if all(node in answered for node in wait_for):
            break
out = []
for kind, method, args, kwargs in json.loads(os.environ["CALLS"]):
    if kind == "inspect":
        out.append(getattr(app.control.inspect(destination=dest, timeout=timeout), method)(*args, **kwargs))
    else:
        out.append(getattr(app.control, method)(*args, destination=dest, reply=True, timeout=timeout, **kwargs))
print(json.dumps(out, default=repr))
`;

export function pyControl(env: Record<string, string>, calls: ControlCall[], opts: ControlOptions = {}): Promise<unknown[]> {
  return runPyJson<unknown[]>(CONTROL, {
    env: {
      ...env,
      DEST: JSON.stringify(opts.destination ?? null),
      TIMEOUT: String(opts.timeout ?? 2),
      WAIT_FOR: JSON.stringify(opts.waitFor ?? []),
      CALLS: JSON.stringify(calls),
    },
    timeoutMs: 40_000,
  });
}

const RUN_ALL = `
import json, os, time
from pyapp import app
tasks = json.loads(os.environ["TASKS"])
t0 = time.time()
results = [app.send_task(name, args=args) for name, args in tasks]
out = []
for r in results:
    try:
        out.append({"state": "SUCCESS", "result": r.get(timeout=30)})
    except Exception as exc:
        out.append({"state": r.state, "exc_type": type(exc).__name__})
print(json.dumps({"elapsed": time.time() - t0, "outcomes": out}))
`;

export interface Outcome {
  state: string;
  result?: unknown;
  exc_type?: string;
}

export function runAll(env: Record<string, string>, tasks: [string, unknown[]][]): Promise<{ elapsed: number; outcomes: Outcome[] }> {
  return runPyJson(RUN_ALL, { env: { ...env, TASKS: JSON.stringify(tasks) }, timeoutMs: 60_000 });
}

export async function waitFor(what: string, fn: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
