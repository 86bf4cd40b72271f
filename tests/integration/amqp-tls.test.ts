// amqps:// against the run's RabbitMQ TLS listener (a test CA made by openssl): a Python producer
// with broker_use_ssl -> Celeriac worker over amqps:// (ssl_ca_certs, ssl_cert_reqs=required) ->
// rpc:// results over the same TLS connection settings; and a worker that does not trust the
// certificate stops with one clear error instead of retrying forever.
import { testAmqpsUrl, testTlsCa } from '../helpers/env';
import { freshVhost } from '../helpers/rabbit';
import { pyClient } from '../helpers/python';
import { startCeleriacWorker } from '../helpers/celeriacWorker';
import { startProcess } from '../helpers/processes';
import { PROJECT_ROOT } from '../helpers/env';
import path from 'node:path';

const VHOST = 'amqp-tls';

interface Sent {
  id: string;
  state: string;
  result: unknown;
  exc_type: string | null;
}

beforeAll(async () => {
  await freshVhost(VHOST);
});

it('runs Python-sent tasks over amqps:// with rpc:// results', async () => {
  const url = testAmqpsUrl(VHOST);
  const worker = await startCeleriacWorker({ brokerUrl: url, backendUrl: 'rpc://', concurrency: 2 });
  // Python reaches the same listener with Celery's own TLS setting (no query parameters).
  const pyEnv = {
    BROKER_URL: url.replace(/\?.*$/, ''),
    RESULT_BACKEND: 'rpc://',
    BROKER_USE_SSL: JSON.stringify({ ca_certs: testTlsCa(), cert_reqs: 'required' }),
  };
  const add = await pyClient<Sent>({ op: 'send', task: 'demo.add', args: [40, 2], wait: true, timeout: 20 }, { env: pyEnv });
  expect([add.state, add.result]).toEqual(['SUCCESS', 42]);
  const fail = await pyClient<Sent>({ op: 'send', task: 'demo.fail', args: ['tls'], wait: true, timeout: 20 }, { env: pyEnv });
  expect([fail.state, fail.exc_type]).toEqual(['FAILURE', 'ValueError']);
  expect((await worker.stop()).code).toBe(0);
});

it('a worker that does not trust the certificate fails to start with one clear line', async () => {
  const untrusted = testAmqpsUrl(VHOST).replace(/&ssl_ca_certs=[^&]*/, '');
  const cli = path.join(PROJECT_ROOT, 'workers', 'cli', 'main.ts');
  const handle = startProcess(process.execPath, ['-r', 'tsx/cjs', cli, 'worker', '-b', untrusted, '--result-backend', ''], {
    cwd: PROJECT_ROOT,
    env: { APP_ENV: 'development' },
  });
  const exit = await handle.exited;
  expect(exit.code).toBe(1);
  const out = handle.output();
  expect(out).toMatch(/worker could not start: .*(self[- ]signed|certificate)/i);
  expect(out.match(/could not start/g)).toHaveLength(1);
});
