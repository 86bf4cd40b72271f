/**
 * A real Python Celery worker running tests/interop/pyapp.py (tasks py.add, py.echo, py.fail,
 * py.progress, py.sleep), for the "Celeriac producer -> Python worker" direction.
 *
 *   startPythonWorker(opts: PyWorkerOptions): Promise<ProcessHandle>
 *     resolves once the worker logs `ready.`; stop it with `await handle.stop()` (SIGTERM = warm
 *     shutdown, exit code 0) or leave it to killAll()/afterAll.
 *   PyWorkerOptions: { brokerUrl, backendUrl?, queues?: string[], concurrency? (1),
 *     pool?: 'solo'|'threads'|'prefork' ('solo'), hostname?, extraArgs?: string[],
 *     extraEnv?: Record<string, string>, timeoutMs? (ready timeout, 60 s) }
 *
 * Mingle, gossip and heartbeats are off by default (they only slow startup and add broker
 * traffic); pass e.g. extraArgs ['-E'] for task events.
 */
import { celeryBin, INTEROP_DIR } from './env';
import { ProcessHandle, startProcess } from './processes';

export interface PyWorkerOptions {
  brokerUrl: string;
  backendUrl?: string;
  queues?: string[];
  concurrency?: number;
  pool?: 'solo' | 'threads' | 'prefork';
  hostname?: string;
  extraArgs?: string[];
  extraEnv?: Record<string, string>;
  timeoutMs?: number;
}

let counter = 0;

export async function startPythonWorker(opts: PyWorkerOptions): Promise<ProcessHandle> {
  counter += 1;
  const args = [
    '-A', 'pyapp', 'worker',
    '--loglevel', 'INFO',
    '--pool', opts.pool ?? 'solo',
    '--concurrency', String(opts.concurrency ?? 1),
    '--hostname', opts.hostname ?? `pyworker${process.pid}-${counter}@%h`,
    '--without-mingle', '--without-gossip', '--without-heartbeat',
    ...(opts.queues?.length ? ['--queues', opts.queues.join(',')] : []),
    ...(opts.extraArgs ?? []),
  ];
  const env: Record<string, string> = {
    BROKER_URL: opts.brokerUrl,
    PYTHONPATH: INTEROP_DIR,
    PYTHONUNBUFFERED: '1',
    PYTHONDONTWRITEBYTECODE: '1',
    ...(opts.backendUrl ? { RESULT_BACKEND: opts.backendUrl } : {}),
    // AMQP: a short broker heartbeat lets the worker see SIGTERM in ~2 s instead of ~10 s.
    ...(/^(amqps?|pyamqp):/.test(opts.brokerUrl) ? { BROKER_HEARTBEAT: '2' } : {}),
    ...opts.extraEnv,
  };
  const handle = startProcess(celeryBin(), args, {
    cwd: INTEROP_DIR,
    env,
    readyPattern: /\bready\.\s*$/m,
    timeoutMs: opts.timeoutMs ?? 60_000,
  });
  try {
    await handle.waitReady();
  } catch (err) {
    await handle.stop(5_000);
    throw err;
  }
  return handle;
}
