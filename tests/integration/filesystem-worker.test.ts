// The embedded default end to end: Python producer -> filesystem:// -> Celeriac worker ->
// file:// results -> Python AsyncResult, `celeriac call` on the same folders, and a worker killed
// with -9 while holding an acks_late message loses nothing.
import path from 'node:path';
import { testRedisUrl, testTmpDir } from '../helpers/env';
import { pyClient } from '../helpers/python';
import { celeriacCli, startCeleriacWorker } from '../helpers/celeriacWorker';
import { flushDb, redisClient } from '../helpers/redis';

const LEDGER = 46;
const dir = testTmpDir('fs-worker');
const folder = path.join(dir, 'broker');
const resultsUrl = `file://${path.join(dir, 'results')}`;
const transport = { data_folder_in: folder, data_folder_out: folder, control_folder: path.join(dir, 'control') };
const pyEnv = { BROKER_URL: 'filesystem://', RESULT_BACKEND: resultsUrl, BROKER_TRANSPORT_OPTIONS: JSON.stringify(transport) };
const celeriacEnv = {
  CELERIAC_DATA_FOLDER_IN: folder,
  CELERIAC_DATA_FOLDER_OUT: folder,
  CELERIAC_CONTROL_FOLDER: transport.control_folder,
  CELERIAC_TEST_LEDGER_URL: testRedisUrl(LEDGER),
  CELERIAC_VISIBILITY_TIMEOUT: '2',
};

interface Sent {
  id: string;
  state: string;
  result: unknown;
  exc_type: string | null;
  exc_message: string | null;
}

beforeAll(() => flushDb(LEDGER));

it('runs Python-sent tasks and Python reads the results', async () => {
  const worker = await startCeleriacWorker({ brokerUrl: 'filesystem://', backendUrl: resultsUrl, env: celeriacEnv });
  const add = await pyClient<Sent>({ op: 'send', task: 'demo.add', args: [20, 22], wait: true, timeout: 20 }, { env: pyEnv });
  expect([add.state, add.result]).toEqual(['SUCCESS', 42]);
  const fail = await pyClient<Sent>({ op: 'send', task: 'demo.fail', args: ['nope'], wait: true, timeout: 20 }, { env: pyEnv });
  expect([fail.state, fail.exc_type, fail.exc_message]).toEqual(['FAILURE', 'ValueError', 'nope']);

  const call = await celeriacCli(['call', 'demo.add', '2', '3', '-b', 'filesystem://', '--result-backend', resultsUrl, '--wait'], celeriacEnv);
  expect(call.code).toBe(0);
  const [id, value] = call.stdout.trim().split('\n');
  expect(id).toMatch(/^[0-9a-f-]{36}$/);
  expect(value).toBe('5');
  expect((await worker.stop()).code).toBe(0);
});

it('a message held by a worker killed with -9 is finished by the next worker', async () => {
  const first = await startCeleriacWorker({ brokerUrl: 'filesystem://', backendUrl: resultsUrl, app: 'tests/fixtures/tasks.ts', env: celeriacEnv });
  const sent = await pyClient<Sent>({ op: 'send', task: 'test.slow_late', args: ['fs-crash', 3000] }, { env: pyEnv });
  const ledger = redisClient(LEDGER);
  try {
    const deadline = Date.now() + 10_000;
    while (!first.output().includes(`[${sent.id}] received`) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    first.kill('SIGKILL');
    await first.exited;
    expect(await ledger.llen('ledger')).toBe(0); // it never finished

    const second = await startCeleriacWorker({ brokerUrl: 'filesystem://', backendUrl: resultsUrl, app: 'tests/fixtures/tasks.ts', env: celeriacEnv });
    const done = await pyClient<{ state: string; result: unknown }>({ op: 'result', id: sent.id, timeout: 20 }, { env: pyEnv });
    expect([done.state, done.result]).toEqual(['SUCCESS', 'fs-crash']);
    expect(await ledger.llen('ledger')).toBe(1);
    await second.stop();
  } finally {
    await ledger.quit();
  }
});
