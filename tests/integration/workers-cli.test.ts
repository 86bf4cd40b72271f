// `celeriac workers list | stop` against a mixed fleet (two Celeriac workers and one Python Celery
// worker) on Redis (dbs 108-109) and RabbitMQ: list shows each with its uuid, pid and pool size;
// stop --uuid warm-stops only that worker, whose running and reserved tasks are all still done;
// stop --hostname and --all reach Python workers too.
import os from 'node:os';
import { testRedisUrl } from '../helpers/env';
import { celeriacCli, startCeleriacWorker } from '../helpers/celeriacWorker';
import { startPythonWorker } from '../helpers/pyworker';
import type { ProcessHandle } from '../helpers/processes';
import { flushDb } from '../helpers/redis';
import { freshVhost } from '../helpers/rabbit';
import { pyControl, runAll } from '../helpers/control';
import type { WorkerRow } from '../../workers/cli/workers';

const BROKERS = [
  { broker: 'Redis', env: async () => (await flushDb(108), await flushDb(109), { BROKER_URL: testRedisUrl(108), RESULT_BACKEND: testRedisUrl(109) }) },
  { broker: 'RabbitMQ', env: async () => (await flushDb(110), { BROKER_URL: await freshVhost('workers-cli'), RESULT_BACKEND: testRedisUrl(110) }) },
];

describe.each(BROKERS)('celeriac workers ($broker)', ({ broker, env: makeEnv }) => {
  const tag = `${broker.toLowerCase()}-${process.pid}@${os.hostname()}`;
  const names = { a: `cli-a-${tag}`, b: `cli-b-${tag}`, py: `cli-py-${tag}` };
  let env: Record<string, string>;
  let a: ProcessHandle;
  let b: ProcessHandle;
  let py: ProcessHandle;

  const cli = async (...args: string[]) => {
    const out = await celeriacCli(['workers', ...args, '-b', env.BROKER_URL!, '--timeout', '1.5']);
    if (out.code !== 0) throw new Error(`workers ${args.join(' ')} exited ${out.code}: ${out.stderr}`);
    return out.stdout;
  };
  const list = async (): Promise<WorkerRow[]> => JSON.parse(await cli('list', '--json')) as WorkerRow[];

  beforeAll(async () => {
    env = await makeEnv();
    const common = { brokerUrl: env.BROKER_URL!, backendUrl: env.RESULT_BACKEND, concurrency: 2 };
    [a, b, py] = await Promise.all([
      startCeleriacWorker({ ...common, hostname: names.a, extraArgs: ['--prefetch-multiplier', '2'] }),
      startCeleriacWorker({ ...common, hostname: names.b, extraArgs: ['--prefetch-multiplier', '2'] }),
      startPythonWorker({ brokerUrl: env.BROKER_URL!, backendUrl: env.RESULT_BACKEND, hostname: names.py, queues: ['py-only'] }),
    ]);
    await pyControl(env, [], { waitFor: [names.a, names.b, names.py] });
  }, 90_000);

  afterAll(async () => {
    await Promise.all([a, b, py].map((w) => w?.stop()));
  });

  it('list shows every worker: Celeriac ones with uuid, pid and pool size, the Python one too', async () => {
    const rows = await list();
    expect(rows.map((r) => r.hostname)).toEqual([names.a, names.b, names.py].sort());
    const rowA = rows.find((r) => r.hostname === names.a)!;
    expect(rowA).toMatchObject({ pid: a.pid, pool: 2, active: 0 });
    expect(rowA.uuid).toMatch(/^[0-9a-f-]{36}$/);
    expect(rows.find((r) => r.hostname === names.b)!.uuid).not.toBe(rowA.uuid);
    expect(rows.find((r) => r.hostname === names.py)).toMatchObject({ uuid: null, pid: py.pid, pool: 1 });
    expect(await cli('list')).toMatch(new RegExp(`^celery\\s+${names.a.replace(/[.]/g, '\\.')}\\s+${rowA.uuid}\\s+${a.pid}\\s+2\\s+0\\s+0`, 'm'));
  }, 30_000);

  it('stop --uuid warm-stops only that worker and every task still completes once', async () => {
    // 12 two-second tasks over 2 + 2 slots; A is stopped while it runs and holds some of them.
    const run = runAll(env, Array.from({ length: 12 }, (_, i) => ['demo.sleep', [2 + i / 1000]] as [string, unknown[]]));
    await new Promise((r) => setTimeout(r, 1500));
    const uuidA = (await list()).find((r) => r.hostname === names.a)!.uuid!;
    expect(await cli('stop', '--uuid', uuidA)).toBe(`${names.a}: warm shutdown requested\n${names.a}: stopped\n`);
    expect((await a.exited).code).toBe(0);
    expect(a.output()).toMatch(/succeeded in 2\.\d+s/); // it finished what it was running
    const { outcomes } = await run;
    expect(outcomes.map((o) => o.state)).toEqual(Array(12).fill('SUCCESS'));
    expect(outcomes.map((o) => o.result).sort()).toEqual(Array.from({ length: 12 }, (_, i) => 2 + i / 1000).sort());
    expect((await list()).map((r) => r.hostname)).toEqual([names.b, names.py].sort());
  }, 90_000);

  it('stop --hostname reaches a Python worker; stop --all stops the rest', async () => {
    expect(await cli('stop', '--hostname', names.py)).toBe(`${names.py}: warm shutdown requested\n${names.py}: stopped\n`);
    expect((await py.exited).code).toBe(0);
    expect(await cli('stop', '--all', '--no-wait')).toBe(`${names.b}: warm shutdown requested\n`);
    expect((await b.exited).code).toBe(0);
    expect(await cli('list')).toBe('no workers answered\n');
  }, 60_000);
});
