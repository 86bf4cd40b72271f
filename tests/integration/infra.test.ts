// Proves the integration infrastructure (tests/setup, tests/helpers, tests/interop) works end to
// end against the real redis-server and real Python Celery, and that its helpers report failure
// instead of hiding it. Uses redis dbs 1 and 2.
import fs from 'node:fs';
import net from 'node:net';
import { pythonBin, testRedisPort, testRedisUrl, testTmpDir } from '../helpers/env';
import { startProcess } from '../helpers/processes';
import { pyClient, runPyJson, runPython } from '../helpers/python';
import { startPythonWorker } from '../helpers/pyworker';
import { flushDb, withRedis } from '../helpers/redis';
import type { SendReply } from '../helpers/pyReplies';

const PRODUCER_DB = 1;
const WORKER_DB = 2;

function rawPing(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: '127.0.0.1', port }, () => sock.write('PING\r\n'));
    sock.once('data', (d) => {
      sock.destroy();
      resolve(d.toString('latin1'));
    });
    sock.once('error', reject);
  });
}

beforeAll(async () => {
  await flushDb(PRODUCER_DB);
  await flushDb(WORKER_DB);
});

describe('servers', () => {
  it('redis-server answers PING on the exported port', async () => {
    expect(await rawPing(testRedisPort())).toBe('+PONG\r\n');
    expect(process.env.CELERIAC_TEST_REDIS_URL).toBe(`redis://127.0.0.1:${testRedisPort()}`);
    expect(testRedisUrl(5)).toBe(`redis://127.0.0.1:${testRedisPort()}/5`);
  });

  it('the venv python imports celery 5.7.0', async () => {
    const info = await runPyJson<{ celery: string; kombu: string; prefix: string }>(
      'import celery, kombu, sys, json; print(json.dumps({"celery": celery.__version__, "kombu": kombu.__version__, "prefix": sys.prefix}))',
    );
    expect(info).toMatchObject({ celery: '5.7.0', kombu: '5.7.0' });
    expect(pythonBin().startsWith(info.prefix)).toBe(true);
  });

  it('testTmpDir gives a fresh empty directory each time', () => {
    const a = testTmpDir('infra');
    const b = testTmpDir('infra');
    expect(a).not.toBe(b);
    expect(fs.readdirSync(a)).toEqual([]);
  });
});

describe('Python producer -> redis', () => {
  it('client.py send puts one kombu envelope for demo.add on the `celery` list', async () => {
    const url = testRedisUrl(PRODUCER_DB);
    const reply = await pyClient<SendReply>(
      { op: 'send', task: 'demo.add', args: [2, 3], wait: false },
      { env: { BROKER_URL: url, RESULT_BACKEND: url } },
    );
    expect(reply.id).toMatch(/^[0-9a-f-]{36}$/);
    await withRedis(PRODUCER_DB, async (r) => {
      expect(await r.llen('celery')).toBe(1);
      const envelope = JSON.parse((await r.lindex('celery', 0)) as string);
      expect(envelope.headers.task).toBe('demo.add');
      expect(envelope.headers.id).toBe(reply.id);
      expect(envelope['content-type']).toBe('application/json');
    });
  });
});

describe('Python worker (pyworker.ts)', () => {
  it('runs py.add sent through client.py and stops cleanly on SIGTERM', async () => {
    const url = testRedisUrl(WORKER_DB);
    const worker = await startPythonWorker({ brokerUrl: url, backendUrl: url });
    const reply = await pyClient<SendReply>(
      { op: 'send', task: 'py.add', args: [2, 3], wait: true, timeout: 20 },
      { env: { BROKER_URL: url, RESULT_BACKEND: url } },
    );
    expect(reply).toMatchObject({ state: 'SUCCESS', result: 5, exc_type: null });

    const failed = await pyClient<SendReply>(
      { op: 'send', task: 'py.fail', args: ['boom'], wait: true, timeout: 20 },
      { env: { BROKER_URL: url, RESULT_BACKEND: url } },
    );
    expect(failed).toMatchObject({ state: 'FAILURE', exc_type: 'ValueError', exc_message: 'boom' });

    expect(await worker.stop()).toEqual({ code: 0, signal: null });
    expect(worker.output()).toMatch(/Task py\.add\[[0-9a-f-]+\] succeeded/);
  });
});

describe('helpers fail loudly', () => {
  it('runPyJson rejects with the Python traceback', async () => {
    await expect(runPyJson('raise RuntimeError("nope")')).rejects.toThrow(/RuntimeError: nope/);
    await expect(runPyJson('print("not json")')).rejects.toThrow(/not JSON/);
  });

  it('runPython reports the exit code and times out', async () => {
    expect((await runPython('import sys; sys.exit(3)')).code).toBe(3);
    await expect(runPython('import time; time.sleep(10)', { timeoutMs: 300 })).rejects.toThrow(/timed out/);
  });

  it('waitReady rejects when the process exits before it is ready, with its output', async () => {
    const p = startProcess('sh', ['-c', 'echo starting; exit 4'], { readyPattern: /never/ });
    await expect(p.waitReady()).rejects.toThrow(/exited .*"code":4[\s\S]*starting/);
  });

  it('waitReady rejects on timeout and stop() kills the process group', async () => {
    const p = startProcess('sh', ['-c', 'sleep 30 & sleep 30'], { readyPattern: /never/, timeoutMs: 200 });
    await expect(p.waitReady()).rejects.toThrow(/not ready after 200 ms/);
    expect(await p.stop(2_000)).toEqual({ code: null, signal: 'SIGTERM' });
  });
});
