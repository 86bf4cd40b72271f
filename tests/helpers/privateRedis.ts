/**
 * A redis-server of a test file's own, for faults that take Redis away (the run's shared server
 * must stay up for every other file). It keeps its port and its data across stop/start, as a
 * production Redis with persistence does across a restart.
 *
 *   startPrivateRedis(name): Promise<PrivateRedis>   a fresh server on a free port, data in testTmpDir(name)
 *   redis.url(db): string                             redis://127.0.0.1:<port>/<db>
 *   redis.stop(): Promise<void>     SHUTDOWN SAVE (queues, unacked and results go to dump.rdb), then
 *                                   waits for the process to exit: clients see the connection drop
 *                                   and ECONNREFUSED until start()
 *   redis.start(): Promise<void>    the same port and dir again (dump.rdb reloaded), once ready
 *   redis.running: boolean
 *
 * The process is a helpers/processes.ts handle, so a failing test still has it killed afterwards.
 */
import net from 'node:net';
import { testTmpDir } from './env';
import { type ProcessHandle, startProcess } from './processes';
import { freePort } from '../setup/redisServer';

export interface PrivateRedis {
  readonly port: number;
  readonly running: boolean;
  url(db: number): string;
  stop(): Promise<void>;
  start(): Promise<void>;
}

/** One SHUTDOWN SAVE over a raw socket: ioredis would try to reconnect to the dying server. */
function shutdownSave(port: number): Promise<void> {
  return new Promise((resolve) => {
    const sock = net.connect({ host: '127.0.0.1', port }, () => sock.write('*2\r\n$8\r\nSHUTDOWN\r\n$4\r\nSAVE\r\n'));
    // The server closes the socket as it exits (no reply on success).
    sock.on('close', () => resolve());
    sock.on('error', () => resolve());
  });
}

export async function startPrivateRedis(name: string): Promise<PrivateRedis> {
  const port = await freePort();
  const dir = testTmpDir(name);
  let handle: ProcessHandle | null = null;

  const start = async (): Promise<void> => {
    if (handle) throw new Error(`private redis ${port} is already running`);
    // --save '': no background snapshots during the test; stop() saves once, on purpose.
    const h = startProcess(
      'redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--dbfilename', 'dump.rdb', '--daemonize', 'no'],
      { cwd: dir, readyPattern: /Ready to accept connections/, timeoutMs: 10_000 },
    );
    await h.waitReady();
    handle = h;
  };

  const stop = async (): Promise<void> => {
    const h = handle;
    if (!h) return;
    handle = null;
    await shutdownSave(port);
    const exit = await Promise.race([h.exited, new Promise<null>((r) => setTimeout(() => r(null), 10_000).unref())]);
    if (!exit) {
      await h.stop(1_000);
      throw new Error(`private redis ${port} did not exit on SHUTDOWN SAVE:\n${h.output()}`);
    }
  };

  await start();
  return {
    port,
    get running() {
      return handle !== null;
    },
    url: (db: number) => `redis://127.0.0.1:${port}/${db}`,
    stop,
    start,
  };
}
