// `celeriac worker --statedb <file>` (Celery's -S / worker_state_db): the revoked set survives a
// restart. Revoked from real Python Celery's app.control; Redis broker db 27, results db 28.
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { testRedisUrl, testTmpDir } from '../helpers/env';
import { pyClient } from '../helpers/python';
import { startCeleriacWorker } from '../helpers/celeriacWorker';
import type { ProcessHandle } from '../helpers/processes';
import { flushDb, withRedis } from '../helpers/redis';
import { pyControl } from '../helpers/control';

const BROKER_DB = 27;
const BACKEND_DB = 28;

describe('--statedb keeps revoked task ids across a restart', () => {
  const hostname = `statedb-${process.pid}@${os.hostname()}`;
  const env = { BROKER_URL: '', RESULT_BACKEND: '' };
  let statedb: string;
  let worker: ProcessHandle | null = null;

  const start = (): Promise<ProcessHandle> =>
    startCeleriacWorker({ brokerUrl: env.BROKER_URL, backendUrl: env.RESULT_BACKEND, hostname, concurrency: 2, extraArgs: ['--statedb', statedb] });
  const state = async (id: string): Promise<string> => (await pyClient<{ state: string }>({ op: 'state', id }, { env })).state;

  beforeAll(async () => {
    await flushDb(BROKER_DB);
    await flushDb(BACKEND_DB);
    env.BROKER_URL = testRedisUrl(BROKER_DB);
    env.RESULT_BACKEND = testRedisUrl(BACKEND_DB);
    statedb = path.join(testTmpDir('statedb'), 'worker.state');
  });

  afterAll(async () => {
    await worker?.stop().catch(() => undefined);
  });

  it('an id revoked before a warm restart is still revoked after it: its task is discarded as REVOKED', async () => {
    worker = await start();
    const id = randomUUID();
    const [revoked] = await pyControl(env, [['control', 'revoke', [id], {}]], { destination: [hostname], waitFor: [hostname] });
    expect(revoked).toEqual([{ [hostname]: { ok: `tasks {'${id}'} flagged as revoked` } }]);
    // Celery marks an id nobody holds as REVOKED at once: forget that, so the REVOKED seen after
    // the restart can only come from the restarted worker discarding the task.
    expect(await state(id)).toBe('REVOKED');
    await withRedis(BACKEND_DB, (r) => r.del(`celery-task-meta-${id}`));
    expect(await state(id)).toBe('PENDING');

    expect(await worker.stop()).toEqual({ code: 0, signal: null }); // SIGTERM: warm shutdown
    worker = await start();

    const [afterRestart] = (await pyControl(env, [['inspect', 'revoked', [], {}]], { destination: [hostname], waitFor: [hostname] })) as [Record<string, string[]>];
    expect(afterRestart[hostname]).toEqual([id]);

    const sent = await pyClient<{ id: string; state: string }>({ op: 'send', task: 'demo.add', args: [1, 2], options: { task_id: id }, wait: true, timeout: 15 }, { env });
    expect(sent).toMatchObject({ id, state: 'REVOKED' });
    await worker.waitForOutput(`Discarding revoked task: demo.add[${id}]`);
    // Other tasks run as usual.
    const other = await pyClient<{ state: string; result: unknown }>({ op: 'send', task: 'demo.add', args: [2, 2], wait: true, timeout: 15 }, { env });
    expect(other).toMatchObject({ state: 'SUCCESS', result: 4 });
    expect(worker.output()).not.toContain(`demo.add[${id}] succeeded`);
  });
});
