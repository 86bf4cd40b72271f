/**
 * A Redis Sentinel topology of a test file's own, on free loopback ports in a temp dir: a master,
 * one replica and three Sentinels (Debian's redis-sentinel) watching them under `masterName`.
 * The master and replica require `password`; the Sentinels require `sentinelPassword`.
 *
 *   startSentinelTopology(name): Promise<SentinelTopology>   resolves once the Sentinels see the
 *                                                            replica and each other
 *   topo.url(db): string        sentinel://:password@127.0.0.1:<s1>/<db>;sentinel://127.0.0.1:<s2>;...
 *   topo.transportOptions       {master_name, sentinel_kwargs: {password}} (kombu's and Celery's)
 *   topo.masterPort(): Promise<number>   the port the Sentinels name as master now
 *   topo.killMaster(): Promise<number>   SIGKILL of the current master; resolves with the port the
 *                                        Sentinels promoted instead, once they agree on it
 *   topo.client(port, db = 0): Redis   an ioredis client (password set) to one data node, kept
 *                               and closed by stop()
 *   topo.stop()                 every process of the topology
 *
 * Timings are short on purpose (down-after 1 s, failover-timeout 5 s) so a failover takes seconds.
 */
import fs from 'node:fs';
import path from 'node:path';
import Redis from 'ioredis';
import { testTmpDir } from './env';
import { type ProcessHandle, startProcess } from './processes';
import { freePort } from '../setup/redisServer';
import { waitFor } from './faults';

export interface SentinelTopology {
  readonly masterName: string;
  readonly password: string;
  readonly sentinelPassword: string;
  readonly transportOptions: { master_name: string; sentinel_kwargs: { password: string } };
  url(db: number): string;
  masterPort(): Promise<number>;
  killMaster(): Promise<number>;
  client(port: number, db?: number): Redis;
  stop(): Promise<void>;
}

const MASTER_NAME = 'celeriac-ha';
const PASSWORD = 'data-pw';
const SENTINEL_PASSWORD = 'sentinel-pw';

function startDataNode(dir: string, port: number, replicaOf: number | null): ProcessHandle {
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--daemonize', 'no'];
  args.push('--requirepass', PASSWORD, '--masterauth', PASSWORD);
  if (replicaOf !== null) args.push('--replicaof', '127.0.0.1', String(replicaOf));
  return startProcess('redis-server', args, { cwd: dir, readyPattern: /Ready to accept connections/, timeoutMs: 10_000 });
}

function startSentinel(dir: string, port: number, masterPort: number): ProcessHandle {
  // Sentinel rewrites its config file (it must be writable and its own).
  const conf = path.join(dir, `sentinel-${port}.conf`);
  fs.writeFileSync(
    conf,
    [
      `port ${port}`,
      'bind 127.0.0.1',
      `dir ${dir}`,
      `requirepass ${SENTINEL_PASSWORD}`,
      `sentinel monitor ${MASTER_NAME} 127.0.0.1 ${masterPort} 2`,
      `sentinel auth-pass ${MASTER_NAME} ${PASSWORD}`,
      `sentinel down-after-milliseconds ${MASTER_NAME} 1000`,
      `sentinel failover-timeout ${MASTER_NAME} 5000`,
      `sentinel parallel-syncs ${MASTER_NAME} 1`,
      // The Sentinels talk to each other with the same password they require.
      `sentinel sentinel-pass ${SENTINEL_PASSWORD}`,
      '',
    ].join('\n'),
  );
  return startProcess('redis-sentinel', [conf], { cwd: dir, readyPattern: /Sentinel ID is/, timeoutMs: 10_000 });
}

export async function startSentinelTopology(name: string): Promise<SentinelTopology> {
  const dir = testTmpDir(name);
  fs.mkdirSync(dir, { recursive: true });
  const handles = new Map<number, ProcessHandle>();
  const clients = new Map<string, Redis>();
  const client = (port: number, db = 0): Redis => {
    const key = `${port}/${db}`;
    let c = clients.get(key);
    if (!c) {
      c = new Redis({ port, host: '127.0.0.1', db, password: PASSWORD, maxRetriesPerRequest: 2 });
      c.on('error', () => undefined);
      clients.set(key, c);
    }
    return c;
  };
  const [masterPort, replicaPort, ...sentinelPorts] = await Promise.all([freePort(), freePort(), freePort(), freePort(), freePort()]);
  const master = startDataNode(dir, masterPort!, null);
  await master.waitReady();
  handles.set(masterPort!, master);
  const replica = startDataNode(dir, replicaPort!, masterPort!);
  await replica.waitReady();
  handles.set(replicaPort!, replica);
  const sentinels = sentinelPorts.map((p) => startSentinel(fs.mkdtempSync(path.join(dir, 's')), p, masterPort!));
  await Promise.all(sentinels.map((s) => s.waitReady()));
  const asker = new Redis({ port: sentinelPorts[0], host: '127.0.0.1', password: SENTINEL_PASSWORD });
  asker.on('error', () => undefined);
  clients.set('sentinel', asker);

  const masterPortNow = async (): Promise<number> => {
    const [, port] = (await asker.call('SENTINEL', 'get-master-addr-by-name', MASTER_NAME)) as [string, string];
    return Number(port);
  };
  // Ready for a failover: the replica is in sync and every Sentinel knows the other two.
  const replicaClient = client(replicaPort!);
  await waitFor(async () => /master_link_status:up/.test(await replicaClient.info('replication')), 20_000, 'replica in sync');
  await waitFor(async () => {
    const info = (await asker.call('SENTINEL', 'master', MASTER_NAME)) as string[];
    const field = (k: string): string => info[info.indexOf(k) + 1] ?? '';
    return field('num-other-sentinels') === '2' && field('num-slaves') === '1';
  }, 30_000, 'Sentinels to find each other and the replica');

  return {
    masterName: MASTER_NAME,
    password: PASSWORD,
    sentinelPassword: SENTINEL_PASSWORD,
    transportOptions: { master_name: MASTER_NAME, sentinel_kwargs: { password: SENTINEL_PASSWORD } },
    url: (db) => sentinelPorts.map((p, i) => (i === 0 ? `sentinel://:${PASSWORD}@127.0.0.1:${p}/${db}` : `sentinel://127.0.0.1:${p}/${db}`)).join(';'),
    masterPort: masterPortNow,
    async killMaster() {
      const old = await masterPortNow();
      const h = handles.get(old);
      if (!h) throw new Error(`no data node on port ${old}`);
      h.kill('SIGKILL');
      await h.exited;
      handles.delete(old);
      let promoted = old;
      await waitFor(async () => {
        promoted = await masterPortNow();
        return promoted !== old && /role:master/.test(await client(promoted).info('replication').catch(() => ''));
      }, 60_000, 'Sentinel to promote the replica');
      return promoted;
    },
    client,
    async stop() {
      for (const c of clients.values()) c.disconnect();
      await Promise.all([...sentinels, ...handles.values()].map((h) => h.stop(5_000)));
    },
  };
}
