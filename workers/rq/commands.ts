/**
 * rq's worker commands (rq/command.py): JSON published on rq:pubsub:<worker name> by
 * send_shutdown_command, send_kill_horse_command and send_stop_job_command.
 */
import { closeRedis, connectRedis } from '../index';
import { rqKey } from './keys';
import type { RqLogger } from './worker';

export interface CommandHandlers {
  shutdown(): void;
  killHorse(): void;
  stopJob(jobId: string): void;
}

export interface CommandListener {
  close(): Promise<void>;
}

export async function listenForCommands(redisUrl: string, worker: string, log: RqLogger, on: CommandHandlers): Promise<CommandListener> {
  const sub = connectRedis(redisUrl, { logger: log, name: 'rq (commands)' });
  await sub.connect();
  const channel = rqKey.pubsub(worker);
  sub.on('message', (from: string, text: string) => {
    if (from !== channel) return;
    let payload: { command?: unknown; job_id?: unknown };
    try {
      payload = JSON.parse(text) as typeof payload;
    } catch {
      log.warn(`Worker ${worker}: ignored a command that is not JSON: ${text.slice(0, 200)}`);
      return;
    }
    if (payload.command === 'shutdown') {
      log.info(`Worker ${worker}: received shutdown command`);
      on.shutdown();
    } else if (payload.command === 'kill-horse') {
      log.info(`Worker ${worker}: received kill horse command`);
      on.killHorse();
    } else if (payload.command === 'stop-job' && typeof payload.job_id === 'string') {
      log.info(`Worker ${worker}: received command to stop job ${payload.job_id}`);
      on.stopJob(payload.job_id);
    } else {
      log.warn(`Worker ${worker}: ignored unknown command ${text.slice(0, 200)}`);
    }
  });
  await sub.subscribe(channel);
  return { close: () => closeRedis(sub) };
}
