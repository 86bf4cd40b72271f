/**
 * A RabbitMQ node of a test file's own with the management plugin (HTTP API) on, sampling its
 * statistics every second. The run's shared node keeps the plugin off: it would add ~4-5 s to the
 * shutdown of every jest run (tests/setup/rabbitServer.ts, StartRabbitOptions.management).
 *
 *   startManagedRabbit(name): Promise<ManagedRabbit>   ~5-10 s on a loaded machine
 *   rabbit.amqpUrl(vhost = '/')                        amqp://guest:guest@127.0.0.1:<port>/<vhost encoded>
 *   rabbit.apiUrl(password = 'guest')                  http://guest:<password>@127.0.0.1:<port>/api/ (Flower's broker_api)
 *   rabbit.api(method, path, body?)                    a management API call as guest; throws unless 2xx
 *   rabbit.addVhost(vhost)                             the vhost, with all permissions for guest (through the API)
 *   rabbit.stop()                                      SIGKILL of the node and its epmd (its data is thrown away)
 *
 * The node carries the run marker, so globalTeardown kills it even when a test file does not.
 */
import { testTmpDir } from './env';
import { startRabbit, type StartedRabbit } from '../setup/rabbitServer';

export interface ManagedRabbit {
  readonly node: StartedRabbit;
  amqpUrl(vhost?: string): string;
  apiUrl(password?: string): string;
  api(method: string, path: string, body?: unknown): Promise<unknown>;
  addVhost(vhost: string): Promise<string>;
  stop(): void;
}

export async function startManagedRabbit(name: string): Promise<ManagedRabbit> {
  const node = await startRabbit({ dir: testTmpDir(name), env: process.env, ownerPid: process.pid, management: true, nodePrefix: name, timeoutMs: 120_000 });
  const base = `http://127.0.0.1:${node.managementPort}/api/`;
  const api = async (method: string, path: string, body?: unknown): Promise<unknown> => {
    const res = await fetch(base + path, {
      method,
      headers: { authorization: `Basic ${Buffer.from('guest:guest').toString('base64')}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`${method} ${base}${path}: ${res.status} ${text}`);
    return text ? (JSON.parse(text) as unknown) : undefined;
  };
  const amqpUrl = (vhost = '/'): string => `amqp://guest:guest@127.0.0.1:${node.port}/${vhost === '/' ? '/' : encodeURIComponent(vhost)}`;
  return {
    node,
    amqpUrl,
    apiUrl: (password = 'guest') => `http://guest:${password}@127.0.0.1:${node.managementPort}/api/`,
    api,
    async addVhost(vhost) {
      const v = encodeURIComponent(vhost);
      await api('PUT', `vhosts/${v}`);
      await api('PUT', `permissions/${v}/guest`, { configure: '.*', write: '.*', read: '.*' });
      return amqpUrl(vhost);
    },
    stop() {
      for (const pid of [node.beamPid, node.launcherPid, node.epmdPid]) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
    },
  };
}
