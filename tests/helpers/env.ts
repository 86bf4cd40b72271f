/**
 * Where the integration infrastructure lives, as set up by tests/setup/globalSetup.ts.
 *
 *   testRedisUrl(db: number): string   redis://127.0.0.1:<port>/<db> on the run's one redis-server
 *                                      (dbs 0..127 exist; give each test file its own numbers and
 *                                      flushDb() them in beforeEach/beforeAll: files run serially)
 *   testRedisPort(): number
 *   testAmqpPort(): number             AMQP port of the run's one RabbitMQ node (127.0.0.1 only)
 *   testAmqpUrl(vhost = '/'): string   amqp://guest:guest@127.0.0.1:<port>/<vhost, URL-encoded>,
 *                                      the form both kombu and amqplib read ("/" gives `...//`);
 *                                      create the vhost first: see rabbit.ts freshVhost()
 *   testRabbit(): RabbitConfig         node name, base dir and ports, for rabbit.ts
 *   testMongoUrl(db: string): string   mongodb://127.0.0.1:<port>/<db> on the run's one MongoDB-wire
 *                                      server (FerretDB: see tests/setup/mongoServer.ts for what it
 *                                      lacks); give each test file its own database names
 *   pythonBin(): string                absolute path of the interop venv python
 *   scaPythonBin(): string             python of .venv-sca: sca-rhythm 0.6.15 on Celery 5.2.x
 *   celeryBin(): string                the venv's `celery` command
 *   testTmpDir(name: string): string   a fresh, empty dir under the run's temp dir (removed at teardown)
 *   PROJECT_ROOT, INTEROP_DIR          absolute paths of the repo root and tests/interop
 *
 * Everything throws a clear error when called outside the `integration` jest project.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { RabbitConfig } from '../setup/rabbitServer';

export const PROJECT_ROOT = path.resolve(__dirname, '..', '..');
export const INTEROP_DIR = path.join(PROJECT_ROOT, 'tests', 'interop');

function required(name: string): string {
  const value = process.env[name];
  if (!value) {
    throw new Error(
      `${name} is not set: integration helpers need tests/setup/globalSetup.ts. ` +
        'Run through `npm test` or `npx jest --selectProjects integration`.',
    );
  }
  return value;
}

export function testRedisPort(): number {
  return Number(required('CELERIAC_TEST_REDIS_PORT'));
}

export function testRedisUrl(db: number): string {
  if (!Number.isInteger(db) || db < 0 || db > 127) throw new Error(`redis db must be 0..127, got ${db}`);
  return `redis://127.0.0.1:${testRedisPort()}/${db}`;
}

export function testAmqpPort(): number {
  return Number(required('CELERIAC_TEST_AMQP_PORT'));
}

export function testAmqpUrl(vhost = '/'): string {
  if (!vhost) throw new Error('vhost must not be empty');
  const encoded = vhost === '/' ? '/' : encodeURIComponent(vhost);
  return `amqp://guest:guest@127.0.0.1:${testAmqpPort()}/${encoded}`;
}

export function testRabbit(): RabbitConfig {
  return {
    base: required('CELERIAC_TEST_RABBIT_DIR'),
    node: required('CELERIAC_TEST_RABBIT_NODE'),
    port: testAmqpPort(),
    distPort: Number(required('CELERIAC_TEST_RABBIT_DIST_PORT')),
    epmdPort: Number(required('CELERIAC_TEST_RABBIT_EPMD_PORT')),
    tlsPort: Number(required('CELERIAC_TEST_AMQPS_PORT')),
  };
}

/** amqps:// URL of the run's RabbitMQ TLS listener for `vhost`, trusting the test CA. */
export function testAmqpsUrl(vhost: string): string {
  const ca = encodeURIComponent(required('CELERIAC_TEST_TLS_CA'));
  return `amqps://guest:guest@127.0.0.1:${required('CELERIAC_TEST_AMQPS_PORT')}/${encodeURIComponent(vhost)}?ssl_cert_reqs=required&ssl_ca_certs=${ca}`;
}

export function testTlsCa(): string {
  return required('CELERIAC_TEST_TLS_CA');
}

export function testMongoUrl(db: string): string {
  if (!/^[A-Za-z0-9_-]{1,60}$/.test(db)) throw new Error(`mongo database name must be 1-60 of [A-Za-z0-9_-], got ${JSON.stringify(db)}`);
  return `${required('CELERIAC_TEST_MONGO_URL')}/${db}`;
}

export function testMongoPort(): number {
  return Number(required('CELERIAC_TEST_MONGO_PORT'));
}

export function scaPythonBin(): string {
  return required('CELERIAC_TEST_SCA_PYTHON');
}

export function pythonBin(): string {
  return required('CELERIAC_TEST_PYTHON');
}

export function celeryBin(): string {
  return path.join(path.dirname(pythonBin()), 'celery');
}

export function testTmpDir(name: string): string {
  const safe = name.replace(/[^A-Za-z0-9_.-]+/g, '_').slice(0, 60) || 'tmp';
  return fs.mkdtempSync(path.join(required('CELERIAC_TEST_TMP'), `${safe}-`));
}
