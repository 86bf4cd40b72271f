/** Shared CLI plumbing: flags -> config overrides, config -> logger. */
import type { Config, DeepPartial } from '../../config';
import { loadConfig, ConfigError } from '../../config';
import { createLogger, fdDestination, type Logger } from '../log/logger';

export interface CommonFlags {
  broker?: string;
  resultBackend?: string;
  loglevel?: string;
}

export function loadOrExit(overrides: DeepPartial<Config>): Config {
  try {
    return loadConfig({ overrides });
  } catch (err) {
    const msg = err instanceof ConfigError ? err.message : `config: ${(err as Error).message}`;
    process.stderr.write(`${msg}\n`);
    process.exit(1);
  }
}

export function commonOverrides(flags: CommonFlags): DeepPartial<Config> {
  return {
    celery: { broker_url: flags.broker, result_backend: flags.resultBackend },
    log: { level: flags.loglevel?.toLowerCase() as Config['log']['level'] | undefined },
  };
}

/** stderr for one-shot commands (`call`), whose stdout carries the answer. */
export function loggerFor(config: Config, name = 'MainProcess', stream: 'stdout' | 'stderr' = 'stdout'): Logger {
  const destination = stream === 'stderr' ? fdDestination(2) : undefined;
  return createLogger({ level: config.log.level, pretty: config.log.pretty, name, destination });
}
