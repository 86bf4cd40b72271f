/**
 * Real Flower (the interop venv's `celery -A pyapp flower`, Flower 2.2.0) for integration tests.
 *
 *   startFlower({ brokerUrl, backendUrl? }): Promise<Flower>
 *     listens on a free loopback port (--port=0: Flower prints the port it bound), with
 *     FLOWER_UNAUTHENTICATED_API=true so its /api/ answers without auth; resolves once its event
 *     receiver has connected to the broker and /healthcheck answers. Fails loudly (with Flower's
 *     output) when Flower is not installed or does not start.
 *   flower.url                       http://127.0.0.1:<port>
 *   flower.get<T>(path): Promise<T>  GET, requires 200, parses JSON
 *   flower.post(path): Promise<{ status, body }>   POST with an empty body (body: text)
 *   flower.process                   the ProcessHandle (stop() = SIGTERM, Flower exits 0)
 *   waitFor(what, fn, timeoutMs?)    polls fn until it returns a non-undefined value, or throws
 */
import { INTEROP_DIR, celeryBin } from './env';
import { startProcess, type ProcessHandle } from './processes';

export interface Flower {
  url: string;
  process: ProcessHandle;
  get<T>(path: string): Promise<T>;
  post(path: string): Promise<{ status: number; body: string }>;
}

export interface FlowerOptions {
  brokerUrl: string;
  backendUrl?: string;
}

export async function startFlower(opts: FlowerOptions): Promise<Flower> {
  const handle = startProcess(celeryBin(), ['-A', 'pyapp', 'flower', '--address=127.0.0.1', '--port=0'], {
    cwd: INTEROP_DIR,
    env: {
      BROKER_URL: opts.brokerUrl,
      ...(opts.backendUrl ? { RESULT_BACKEND: opts.backendUrl } : {}),
      FLOWER_UNAUTHENTICATED_API: 'true',
      PYTHONPATH: INTEROP_DIR,
      PYTHONUNBUFFERED: '1',
      PYTHONDONTWRITEBYTECODE: '1',
    },
    // "Connected to <broker>" comes from the events thread: without it no task event would be seen.
    readyPattern: /Visit me at http:\/\/127\.0\.0\.1:\d+[\s\S]*Connected to /,
    timeoutMs: 30_000,
  });
  try {
    await handle.waitReady();
  } catch (err) {
    await handle.stop(5_000);
    throw err;
  }
  const port = /Visit me at http:\/\/127\.0\.0\.1:(\d+)/.exec(handle.output())?.[1];
  if (!port) throw new Error(`Flower printed no port:\n${handle.output()}`);
  const url = `http://127.0.0.1:${port}`;

  const request = async (method: 'GET' | 'POST', path: string): Promise<{ status: number; body: string }> => {
    const res = await fetch(url + path, { method, signal: AbortSignal.timeout(15_000) });
    return { status: res.status, body: await res.text() };
  };
  const flower: Flower = {
    url,
    process: handle,
    get: async <T>(path: string): Promise<T> => {
      const res = await request('GET', path);
      if (res.status !== 200) throw new Error(`GET ${path}: HTTP ${res.status}: ${res.body}\nFlower output:\n${handle.output()}`);
      return JSON.parse(res.body) as T;
    },
    post: (path) => request('POST', path),
  };
  await waitFor('Flower /healthcheck', async () => ((await request('GET', '/healthcheck')).status === 200 ? true : undefined));
  return flower;
}

/** Polls `fn` (every 250 ms) until it returns something other than undefined. */
export async function waitFor<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await fn();
      if (value !== undefined) return value;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}
