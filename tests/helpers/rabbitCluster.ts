/**
 * A RabbitMQ cluster of a test file's own: three nodes on free loopback ports, in temp dirs,
 * sharing one Erlang cookie and one epmd of their own (recipe: /work/shared/ENVIRONMENT.md;
 * env from tests/setup/rabbitServer.ts's rabbitEnv). Nodes 2 and 3 `join_cluster` node 1.
 * Three, not two: a quorum queue needs a majority of its members, so on a two-node cluster it
 * stops serving as soon as either node is gone.
 *
 *   startRabbitCluster(name): Promise<RabbitCluster>   once all three run as one cluster (~30-60 s)
 *   cluster.url(): string        amqp://guest:guest@127.0.0.1:<p1>//;...;<p3>// (Celery's failover list)
 *   cluster.nodeUrl(i): string   one node's URL (i = 0, 1, 2)
 *   cluster.stopApp(i)           `rabbitmqctl stop_app` on node i: its clients are disconnected
 *                                (CONNECTION_FORCED) and its port refuses connections
 *   cluster.queues(i): Promise<ClusterQueue[]>   list_queues of vhost / asked on node i
 *   cluster.stop()               every node and the epmd
 */
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { testTmpDir } from './env';
import { type ProcessHandle, startProcess } from './processes';
import { waitForPort } from './rabbit';
import { freePort } from '../setup/redisServer';
import { RABBITMQ_SERVER, rabbitEnv, type RabbitConfig, runRabbitmqctl } from '../setup/rabbitServer';

export interface ClusterQueue {
  name: string;
  type: string;
  messages_ready: number;
  messages_unacknowledged: number;
  members: string[];
  leader: string;
}

export interface RabbitCluster {
  readonly nodes: readonly RabbitConfig[];
  url(): string;
  nodeUrl(i: number): string;
  stopApp(i: number): Promise<void>;
  queues(i: number): Promise<ClusterQueue[]>;
  stop(): Promise<void>;
}

const SIZE = 3;

async function ctl(cfg: RabbitConfig, args: string[], timeoutMs = 60_000): Promise<string> {
  const res = await runRabbitmqctl(cfg, args, timeoutMs);
  if (res.code !== 0) throw new Error(`rabbitmqctl -n ${cfg.node} ${args.join(' ')}: code ${res.code}\n${res.stderr || res.stdout}`);
  return res.stdout;
}

function prepare(cfg: RabbitConfig, cookie: string): void {
  for (const dir of ['home', 'mnesia', 'log']) fs.mkdirSync(path.join(cfg.base, dir), { recursive: true });
  fs.writeFileSync(path.join(cfg.base, 'enabled_plugins'), '[].\n');
  fs.writeFileSync(path.join(cfg.base, 'rabbitmq-env.conf'), '');
  fs.writeFileSync(path.join(cfg.base, 'rabbitmq.conf'), '');
  // Nodes of one cluster (and rabbitmqctl) authenticate each other with the same cookie.
  fs.writeFileSync(path.join(cfg.base, 'home', '.erlang.cookie'), cookie, { mode: 0o400 });
}

export async function startRabbitCluster(name: string): Promise<RabbitCluster> {
  const dir = testTmpDir(name);
  const cookie = randomBytes(16).toString('hex').toUpperCase();
  const epmdPort = await freePort();
  const handles: ProcessHandle[] = [];
  const epmd = startProcess('/usr/bin/epmd', ['-port', String(epmdPort), '-address', '127.0.0.1']);
  handles.push(epmd);
  await waitForPort(epmdPort, 10_000);

  const nodes: RabbitConfig[] = [];
  for (let i = 0; i < SIZE; i++) {
    const [port, distPort] = [await freePort(), await freePort()];
    nodes.push({ base: path.join(dir, `node${i + 1}`), node: `ha${i + 1}-${process.pid}@localhost`, port, distPort, epmdPort, tlsPort: 0 });
  }
  for (const cfg of nodes) {
    prepare(cfg, cookie);
    handles.push(startProcess(RABBITMQ_SERVER, [], { env: rabbitEnv(cfg), cwd: cfg.base }));
  }
  const stop = async (): Promise<void> => {
    // rabbitmq-server traps SIGTERM into a clean stop; epmd last.
    await Promise.all(handles.slice(1).map((h) => h.stop(20_000)));
    await epmd.stop(5_000);
  };
  try {
    for (const cfg of nodes) {
      await waitForPort(cfg.port, 120_000);
      await ctl(cfg, ['await_startup', '--timeout', '120'], 130_000);
    }
    const [first, ...others] = nodes;
    for (const cfg of others) {
      await ctl(cfg, ['stop_app']);
      await ctl(cfg, ['reset']);
      await ctl(cfg, ['join_cluster', first!.node]);
      await ctl(cfg, ['start_app']);
    }
    const status = JSON.parse(await ctl(first!, ['cluster_status', '--formatter', 'json'])) as { running_nodes: string[] };
    if (status.running_nodes.length !== SIZE) throw new Error(`cluster has ${status.running_nodes.join(', ')} running, expected ${SIZE} nodes`);
  } catch (err) {
    await stop();
    throw err;
  }

  const nodeUrl = (i: number): string => `amqp://guest:guest@127.0.0.1:${nodes[i]!.port}//`;
  return {
    nodes,
    url: () => nodes.map((_, i) => nodeUrl(i)).join(';'),
    nodeUrl,
    async stopApp(i) {
      await ctl(nodes[i]!, ['stop_app']);
    },
    async queues(i) {
      const out = await ctl(nodes[i]!, ['list_queues', '-p', '/', 'name', 'type', 'messages_ready', 'messages_unacknowledged', 'members', 'leader', '--formatter', 'json']);
      return JSON.parse(out) as ClusterQueue[];
    },
    stop,
  };
}
