import fs from 'fs';
import os from 'os';
import path from 'path';
import { ConfigError, loadConfig } from '../../config';
import type { LoadConfigOptions } from '../../config';
import common from '../../config/common';

const REAL_CONFIG_DIR = path.resolve(__dirname, '../../config');
const tempDirs: string[] = [];

afterAll(() => {
  for (const dir of tempDirs) fs.rmSync(dir, { recursive: true, force: true });
});

function tempDir(prefix: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  tempDirs.push(dir);
  return dir;
}

/** Isolated from the developer's .env and shell: tests pass everything explicitly. */
function load(opts: LoadConfigOptions = {}): ReturnType<typeof loadConfig> {
  return loadConfig({ envFile: null, env: {}, ...opts });
}

function loadError(opts: LoadConfigOptions): ConfigError {
  try {
    load(opts);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error('expected loadConfig to throw');
}

/** A config folder holding a common.js that re-exports the real common.ts, plus `files`. */
function tempConfigDir(files: Record<string, string>): string {
  const dir = tempDir('celeriac-config-');
  const realCommon = JSON.stringify(path.join(REAL_CONFIG_DIR, 'common'));
  fs.writeFileSync(path.join(dir, 'common.js'), `module.exports = require(${realCommon});\n`);
  for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), text);
  return dir;
}

function tempEnvFile(text: string): string {
  const dir = tempDir('celeriac-env-');
  const file = path.join(dir, '.env');
  fs.writeFileSync(file, text);
  return file;
}

describe('defaults (APP_ENV unset = development, common only)', () => {
  const config = load();

  it('has the documented defaults', () => {
    expect(config.celery.broker_url).toBe('filesystem://');
    expect(config.celery.result_backend).toBe('file://./data/results');
    expect(config.celery.broker_transport_options.visibility_timeout).toBe(3600);
    expect(config.celery.broker_transport_options.priority_steps).toEqual([0, 3, 6, 9]);
    expect(config.celery.broker_transport_options.unacked_mutex_expire).toBe(300);
    expect(loadConfig({ env: { CELERIAC_UNACKED_MUTEX_EXPIRE: '3' } }).celery.broker_transport_options.unacked_mutex_expire).toBe(3);
    expect(config.celery.broker_transport_options.confirm_publish).toBe(false);
    expect(loadConfig({ env: { CELERIAC_CONFIRM_PUBLISH: 'true' } }).celery.broker_transport_options.confirm_publish).toBe(true);
    expect(config.celery.broker_transport_options.sep).toBe('\x06\x16');
    expect(config.celery.result_expires).toBe(86400);
    expect(config.celery.accept_content).toEqual(['json', 'msgpack', 'yaml']);
    expect(config.celery.task_time_limit).toBeNull();
    expect(config.celery.worker_concurrency).toBe(os.availableParallelism());
    expect(config.celery.task_routes).toEqual({});
    expect(config.celery.broker_use_ssl).toBeNull();
    expect(config.worker).toEqual({
      hostname: 'celeriac@%h',
      queues: ['celery'],
      tasks: ['./workers/tasks/demo'],
      pidfile: null,
      pool: 'async',
      autoscale: null,
      autoscale_keepalive: 30,
      optimization: 'default',
      loglevel: 'info',
      metrics_port: null,
    });
    expect(config.celery.worker_state_db).toBeNull();
    expect(config.celery.worker_max_tasks_per_child).toBeNull();
    expect(config.log).toEqual({ level: 'info', pretty: true });
    expect(config.mongo.db).toBeNull(); // the URL's database decides (openMongo), else 'celeriac'
  });

  it('supports both dotted and bracket access', () => {
    expect(config['celery']['broker_url']).toBe(config.celery.broker_url);
    expect(config['celery']['broker_transport_options']['visibility_timeout']).toBe(3600);
  });

  it('is deeply frozen, and does not freeze common.ts', () => {
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.celery.broker_transport_options)).toBe(true);
    expect(Object.isFrozen(config.worker.queues)).toBe(true);
    expect(() => {
      config.celery.broker_url = 'redis://elsewhere';
    }).toThrow(TypeError);
    expect(() => config.worker.queues.push('more')).toThrow(TypeError);
    expect(config.celery.broker_url).toBe('filesystem://');
    expect(Object.isFrozen(common.celery)).toBe(false);
  });
});

describe('APP_ENV override files', () => {
  it('production deep-merges over common', () => {
    const config = load({ appEnv: 'production' });
    expect(config.celery.broker_url).toBe('redis://localhost:6379/0');
    expect(config.celery.result_backend).toBe('redis://localhost:6379/1');
    expect(config.log.level).toBe('warn');
    // Siblings and deeper keys not named in production.ts come from common.
    expect(config.log.pretty).toBe(false);
    expect(config.celery.task_default_queue).toBe('celery');
    expect(config.celery.broker_transport_options.visibility_timeout).toBe(3600);
  });

  it('takes APP_ENV from the environment', () => {
    expect(load({ env: { APP_ENV: 'production' } }).log.level).toBe('warn');
  });

  it('loads a new environment file by name with no code change', () => {
    const dir = tempConfigDir({
      'stage.js': `module.exports = { default: {
        celery: { broker_transport_options: { visibility_timeout: 60 } },
        worker: { queues: ['stage-a', 'stage-b'] },
      } };\n`,
    });
    const config = load({ configDir: dir, env: { APP_ENV: 'stage' } });
    expect(config.celery.broker_transport_options.visibility_timeout).toBe(60);
    expect(config.celery.broker_transport_options.sep).toBe('\x06\x16');
    expect(config.worker.queues).toEqual(['stage-a', 'stage-b']);
    expect(config.celery.broker_url).toBe('filesystem://');
  });

  it('uses development.js when present', () => {
    const dir = tempConfigDir({ 'development.js': 'module.exports = { log: { pretty: false } };\n' });
    expect(load({ configDir: dir }).log.pretty).toBe(false);
  });

  it('names the missing file', () => {
    const dir = tempConfigDir({});
    const err = loadError({ configDir: dir, appEnv: 'stage' });
    expect(err.message).toBe(`config: APP_ENV = "stage": no config file ${path.join(dir, 'stage')}.ts (or .js)`);
  });

  it('rejects names that are not [a-z0-9_-]+, and reserved module names', () => {
    expect(loadError({ appEnv: '../etc' }).message).toBe(
      'config: APP_ENV = "../etc": must match [a-z0-9_-]+ (it names a file in config/)',
    );
    expect(loadError({ appEnv: 'Production' }).issues[0].key).toBe('APP_ENV');
    expect(loadError({ appEnv: 'schema' }).message).toContain('is reserved');
  });
});

describe('.env file and environment variables', () => {
  it('reads the .env file, and a real variable wins over it', () => {
    const envFile = tempEnvFile(
      ['APP_ENV=production', 'CELERY_BROKER_URL=redis://:fromfile@h:6379/2', 'CELERIAC_CONCURRENCY=7'].join('\n'),
    );
    const fromFile = loadConfig({ envFile, env: {} });
    expect(fromFile.log.level).toBe('warn');
    expect(fromFile.celery.broker_url).toBe('redis://:fromfile@h:6379/2');
    expect(fromFile.celery.worker_concurrency).toBe(7);

    const realWins = loadConfig({ envFile, env: { CELERIAC_CONCURRENCY: '9', APP_ENV: 'development' } });
    expect(realWins.celery.worker_concurrency).toBe(9);
    expect(realWins.log.level).toBe('info');
    expect(realWins.celery.broker_url).toBe('redis://:fromfile@h:6379/2');
  });

  it('fails on an explicit .env path that does not exist', () => {
    expect(() => loadConfig({ envFile: '/nonexistent/celeriac/.env', env: {} })).toThrow(
      'config: envFile = "/nonexistent/celeriac/.env": file not found',
    );
  });

  it("maps Celery's and Celeriac's variables over the files", () => {
    const config = load({
      appEnv: 'production',
      env: {
        CELERY_BROKER_URL: 'redis://broker.internal:6379/3',
        CELERY_RESULT_BACKEND: 'rediss://:pw@db.internal:6380/2',
        CELERIAC_CONCURRENCY: '12',
        CELERIAC_QUEUES: 'high, low,,default',
        CELERIAC_LOG_LEVEL: 'DEBUG',
      },
    });
    expect(config.celery.broker_url).toBe('redis://broker.internal:6379/3');
    expect(config.celery.result_backend).toBe('rediss://:pw@db.internal:6380/2');
    expect(config.celery.worker_concurrency).toBe(12);
    expect(config.worker.queues).toEqual(['high', 'low', 'default']);
    expect(config.log.level).toBe('debug');
    expect(config.worker.loglevel).toBe('debug');
  });

  it("accepts Celery's level names", () => {
    expect(load({ env: { CELERIAC_LOG_LEVEL: 'WARNING' } }).log.level).toBe('warn');
  });

  it('reads CELERIAC_METRICS_PORT as a port, and refuses one out of range', () => {
    expect(load({ env: { CELERIAC_METRICS_PORT: '9808' } }).worker.metrics_port).toBe(9808);
    expect(loadError({ env: { CELERIAC_METRICS_PORT: '70000' } }).message).toBe(
      'config: worker.metrics_port = 70000: must be null or a TCP port (1-65535)',
    );
  });

  it('treats an empty variable as unset', () => {
    expect(load({ env: { CELERY_BROKER_URL: '' } }).celery.broker_url).toBe('filesystem://');
  });
});

describe('code overrides', () => {
  it('beat environment variables; undefined leaves are ignored', () => {
    const config = load({
      env: { CELERIAC_CONCURRENCY: '9', CELERY_BROKER_URL: 'redis://from-env/0' },
      overrides: { celery: { worker_concurrency: 2, broker_url: undefined }, worker: { queues: ['cli'] } },
    });
    expect(config.celery.worker_concurrency).toBe(2);
    expect(config.celery.broker_url).toBe('redis://from-env/0');
    expect(config.worker.queues).toEqual(['cli']);
    expect(config.celery.broker_transport_options.visibility_timeout).toBe(3600);
  });

  it('keeps task_routes keyed by dotted task names', () => {
    const routes = { 'proj.tasks.add': { queue: 'math' }, 'proj.io.*': { queue: 'io' } };
    const config = load({ overrides: { celery: { task_routes: routes } } });
    expect(config.celery.task_routes).toEqual(routes);
    expect(Object.isFrozen(config.celery.task_routes)).toBe(true);
    expect(Object.isFrozen(routes)).toBe(false);
  });
});

describe('validation errors', () => {
  it('names the key, the value and the expectation', () => {
    const err = loadError({ env: { CELERIAC_CONCURRENCY: 'abc' } });
    expect(err.message).toBe('config: celery.worker_concurrency = "abc": must be a positive integer');
    expect(err.issues).toEqual([
      { key: 'celery.worker_concurrency', value: 'abc', expected: 'must be a positive integer' },
    ]);
  });

  it('shows falsy values too', () => {
    expect(loadError({ overrides: { celery: { worker_concurrency: 0 } } }).message).toBe(
      'config: celery.worker_concurrency = 0: must be a positive integer',
    );
    expect(loadError({ overrides: { celery: { task_acks_late: 'sometimes' as never } } }).message).toBe(
      'config: celery.task_acks_late = "sometimes": must be true or false',
    );
  });

  it('masks the password of a rejected URL', () => {
    const err = loadError({ env: { CELERY_BROKER_URL: 'sqs://user:s3cret@queue//' } });
    expect(err.message).toBe(
      'config: celery.broker_url = "sqs://user:**@queue//": must be a URL with scheme ' +
        "filesystem://, redis://, rediss://, sentinel://, amqp://, amqps://, pyamqp:// (or several, separated by ';' or as a list, for failover)",
    );
    expect(JSON.stringify(err.issues)).not.toContain('s3cret');
  });

  it('reports every problem, including unknown keys', () => {
    const err = loadError({
      env: { CELERIAC_LOG_LEVEL: 'loud' },
      overrides: { celery: { brokr_url: 'redis://x' } as never, worker: { queues: [] } },
    });
    const lines = err.message.split('\n');
    expect(lines).toContain(
      'config: log.level = "loud": must be one of fatal, error, warn, info, debug, trace, silent',
    );
    expect(lines).toContain('config: worker.queues = []: must be a non-empty list of queue names (comma-separated in env)');
    expect(lines).toContain(
      'config: celery.brokr_url = "redis://x": unknown key (not in the schema; check the spelling)',
    );
  });

  it('accepts long content types and rejects unknown ones', () => {
    const ok = load({ overrides: { celery: { accept_content: ['application/json', 'msgpack'] } } });
    expect(ok.celery.accept_content).toEqual(['application/json', 'msgpack']);
    expect(loadError({ overrides: { celery: { accept_content: ['pickle'] } } }).issues[0].key).toBe(
      'celery.accept_content',
    );
  });
});
