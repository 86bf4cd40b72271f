// Python Celery producer (celery/kombu 5.7, tests/interop/client.py) -> real Celeriac worker over a
// real redis-server -> Python AsyncResult: arguments and payloads (kwargs, nested JSON, unicode,
// 1 MB), msgpack and yaml task serializers, exceptions, unknown tasks, ignore_result, and the raw
// celery-task-meta document. Uses redis dbs 10 (broker) and 11 (results).
import { createHash } from 'node:crypto';
import { testRedisUrl } from '../helpers/env';
import { type ProcessHandle } from '../helpers/processes';
import { pyClient, runPyJson } from '../helpers/python';
import { startCeleriacWorker } from '../helpers/celeriacWorker';
import { flushDb, withRedis } from '../helpers/redis';
import type { GetReply, ResultReply, SendReply } from '../helpers/pyReplies';

const BROKER_DB = 10;
const BACKEND_DB = 11;

let worker: ProcessHandle;

function pyEnv(): Record<string, string> {
  return { BROKER_URL: testRedisUrl(BROKER_DB), RESULT_BACKEND: testRedisUrl(BACKEND_DB) };
}

/** Python send_task + AsyncResult.get() in one client.py run. */
function sendAndWait(task: string, args: unknown[], kwargs: Record<string, unknown> = {}, options: Record<string, unknown> = {}): Promise<SendReply> {
  return pyClient<SendReply>({ op: 'send', task, args, kwargs, options, wait: true, timeout: 20 }, { env: pyEnv() });
}

function sha256(s: string): string {
  return createHash('sha256').update(s, 'utf8').digest('hex');
}

beforeAll(async () => {
  await flushDb(BROKER_DB);
  await flushDb(BACKEND_DB);
  worker = await startCeleriacWorker({
    brokerUrl: testRedisUrl(BROKER_DB),
    backendUrl: testRedisUrl(BACKEND_DB),
    concurrency: 4,
  });
});

afterAll(async () => {
  await worker?.stop();
});

describe('Python producer -> Celeriac worker -> Python AsyncResult: arguments', () => {
  it('positional args: demo.add(2, 3) == 5', async () => {
    const reply = await sendAndWait('demo.add', [2, 3]);
    expect(reply).toMatchObject({ state: 'SUCCESS', result: 5, exc_type: null });
  });

  it("kwargs: demo.add(x=2, y=3) == 5 and mixed demo.add(40, y=2) == 42", async () => {
    expect(await sendAndWait('demo.add', [], { x: 2, y: 3 })).toMatchObject({ state: 'SUCCESS', result: 5 });
    expect(await sendAndWait('demo.add', [40], { y: 2 })).toMatchObject({ state: 'SUCCESS', result: 42 });
  });

  it('nested JSON (dicts in lists in dicts, null, booleans, floats) round-trips exactly', async () => {
    const value = {
      outer: [
        { inner: { n: null, t: true, f: false, pi: 3.14159, neg: -0.5, tiny: 1e-7, big: 12345678901234 } },
        [1, [2, { deep: ['x', { deeper: [null, false, 2.5] }] }]],
        { empty_dict: {}, empty_list: [], zero: 0, empty_str: '' },
      ],
      flag: true,
      nothing: null,
    };
    const reply = await sendAndWait('demo.echo', [value]);
    expect(reply.state).toBe('SUCCESS');
    expect(reply.result).toEqual(value);
  });

  it('unicode (accents, emoji incl. ZWJ sequences, CJK) in values and keys round-trips', async () => {
    const value = {
      accents: 'héllo wörld — ñ ç à é ü ß',
      emoji: '😀🚀 👨‍👩‍👧 🏳️‍🌈',
      cjk: '中文字符 日本語 한국어',
      'clé-😀-キー': ['値', 'Ω≈ç√∫', '\u0000 nul and \t tab \n newline "quotes" \\ backslash'],
    };
    const reply = await sendAndWait('demo.echo', [value]);
    expect(reply.state).toBe('SUCCESS');
    expect(reply.result).toEqual(value);
  });

  it('a 1 MB string is echoed back intact (length and sha256)', async () => {
    // Deterministic pseudo-random ASCII, with multi-byte characters at both ends and the middle.
    let seed = 12345;
    const chars: string[] = [];
    const alphabet = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,;:!?-_/';
    for (let i = 0; i < 1024 * 1024; i++) {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      chars.push(alphabet[seed % alphabet.length]!);
    }
    chars[0] = 'é';
    chars[512 * 1024] = '中';
    const big = `${chars.join('')}😀`;
    expect(big.length).toBe(1024 * 1024 + 2);

    const reply = await sendAndWait('demo.echo', [big]);
    expect(reply.state).toBe('SUCCESS');
    expect(typeof reply.result).toBe('string');
    const echoed = reply.result as string;
    expect(echoed.length).toBe(big.length);
    expect(sha256(echoed)).toBe(sha256(big));
  });
});

describe('Python producer -> Celeriac worker: Python number types survive the round trip', () => {
  // A real Celery worker returns exactly what it was sent (checked against the Python worker of
  // tests/interop/pyapp.py: py.echo gives back 1.0 as 1.0 and 2**53 + 1 unchanged). The values are
  // built in Python, since JSON from TS cannot express 1.0 or integers beyond 2**53.
  async function echoRepr(expr: string): Promise<{ sent: string; got: string; equal: boolean }> {
    return runPyJson<{ sent: string; got: string; equal: boolean }>(
      [
        'import json',
        'from pyapp import app',
        `value = ${expr}`,
        'got = app.send_task("demo.echo", args=[value]).get(timeout=20)',
        'print(json.dumps({"sent": repr(value), "got": repr(got), "equal": got == value}))',
      ].join('\n'),
      { env: pyEnv() },
    );
  }

  it('integers beyond 2**53 come back exactly', async () => {
    const reply = await echoRepr('[2**53 + 1, 12345678901234567890, -(2**63) - 1]');
    expect(reply.sent).toBe('[9007199254740993, 12345678901234567890, -9223372036854775809]');
    expect(reply.got).toBe(reply.sent);
    expect(reply.equal).toBe(true);
  });

  // JavaScript has one number type, so a float with no fraction cannot stay a float: 1.0 comes
  // back as the int 1 (equal in Python, but `isinstance(x, float)` changes). Documented in the
  // README; this test pins the exact, documented conversion.
  it('floats with integral values come back equal, as ints (documented limitation)', async () => {
    const reply = await echoRepr('{"one": 1.0, "list": [100.0, 2.5], "nested": {"three": 3.0}}');
    expect(reply.sent).toBe("{'one': 1.0, 'list': [100.0, 2.5], 'nested': {'three': 3.0}}");
    expect(reply.got).toBe("{'one': 1, 'list': [100, 2.5], 'nested': {'three': 3}}");
    expect(reply.equal).toBe(true);
  });
});

describe('Python producer -> Celeriac worker: task serializers', () => {
  const payload = { list: [1, 2.5, null, true, false], text: 'héllo 😀 中文', nested: { a: [{ b: 'c' }] } };

  it.each(['msgpack', 'yaml'])('send_task(..., serializer=%s) runs and round-trips', async (serializer) => {
    const add = await sendAndWait('demo.add', [], { x: 20, y: 22 }, { serializer });
    expect(add).toMatchObject({ state: 'SUCCESS', result: 42, exc_type: null });
    const echo = await sendAndWait('demo.echo', [payload], {}, { serializer });
    expect(echo.state).toBe('SUCCESS');
    expect(echo.result).toEqual(payload);
  });
});

describe('Python producer -> Celeriac worker: failures', () => {
  it("demo.fail('boom') makes Python's .get() raise builtins.ValueError('boom')", async () => {
    const sent = await pyClient<SendReply>({ op: 'send', task: 'demo.fail', args: ['boom'] }, { env: pyEnv() });
    const got = await pyClient<GetReply>({ op: 'get', id: sent.id, timeout: 20 }, { env: pyEnv() });
    expect(got).toMatchObject({
      state: 'FAILURE',
      exc_type: 'ValueError',
      exc_module: 'builtins',
      exc_message: 'boom',
      exc_args: ['boom'],
    });
    // issubclass(type(exc), builtins.ValueError)
    expect(got.exc_mro).toContain('builtins.ValueError');

    const meta = await pyClient<ResultReply>({ op: 'result', id: sent.id }, { env: pyEnv() });
    expect(meta.state).toBe('FAILURE');
    expect(meta.info).toEqual({ exc_type: 'ValueError', exc_message: 'boom' });
    expect(meta.traceback).toMatch(/^Traceback \(most recent call last\):/);
  });

  it('an unknown task name: Python sees FAILURE with celery.exceptions.NotRegistered', async () => {
    const sent = await pyClient<SendReply>({ op: 'send', task: 'demo.does_not_exist', args: [1] }, { env: pyEnv() });
    const got = await pyClient<GetReply>({ op: 'get', id: sent.id, timeout: 20 }, { env: pyEnv() });
    expect(got).toMatchObject({
      state: 'FAILURE',
      exc_type: 'NotRegistered',
      exc_module: 'celery.exceptions',
      exc_args: ['demo.does_not_exist'],
    });
    // Celery's NotRegistered is a KeyError: str() quotes the name.
    expect(got.exc_message).toBe("'demo.does_not_exist'");
    expect(got.exc_mro).toContain('builtins.KeyError');
    // Celery's on_unknown_task stores the failure without a traceback.
    const meta = await pyClient<ResultReply>({ op: 'result', id: sent.id }, { env: pyEnv() });
    expect(meta.traceback).toBeNull();
    await worker.waitForOutput(/Received unregistered task of type 'demo\.does_not_exist'/);
  });
});

describe('Python producer -> Celeriac worker: result storage', () => {
  it('ignore_result=True: the task runs but nothing is stored under celery-task-meta-<id>', async () => {
    const ignored = await pyClient<SendReply>(
      { op: 'send', task: 'demo.echo', args: ['ignored-value'], options: { ignore_result: true } },
      { env: pyEnv() },
    );
    // A normal task sent after it, to know the worker got that far.
    const after = await sendAndWait('demo.echo', ['after-ignored']);
    expect(after).toMatchObject({ state: 'SUCCESS', result: 'after-ignored' });
    const ran = new RegExp(`Task demo\\.echo\\[${ignored.id}\\] succeeded in [0-9.e-]+s: 'ignored-value'`);
    await worker.waitForOutput(ran);

    await withRedis(BACKEND_DB, async (r) => {
      expect(await r.exists(`celery-task-meta-${ignored.id}`)).toBe(0);
      expect(await r.exists(`celery-task-meta-${after.id}`)).toBe(1);
    });
    const state = await pyClient<{ state: string }>({ op: 'state', id: ignored.id }, { env: pyEnv() });
    expect(state.state).toBe('PENDING');
  });

  it('celery-task-meta-<id> has exactly the Celery document shape, Python datetime and a ~1 day TTL', async () => {
    const before = Date.now();
    const reply = await sendAndWait('demo.add', [], { x: 2, y: 3 });
    expect(reply).toMatchObject({ state: 'SUCCESS', result: 5 });

    await withRedis(BACKEND_DB, async (r) => {
      const key = `celery-task-meta-${reply.id}`;
      const raw = await r.get(key);
      expect(raw).not.toBeNull();
      const doc = JSON.parse(raw as string) as Record<string, unknown>;
      expect(Object.keys(doc).sort()).toEqual(['children', 'date_done', 'result', 'status', 'task_id', 'traceback']);
      expect(doc).toMatchObject({ status: 'SUCCESS', result: 5, traceback: null, children: [], task_id: reply.id });
      // datetime.now(timezone.utc).isoformat(), e.g. 2026-11-22T22:04:31.498135+00:00
      const dateDone = doc.date_done as string;
      expect(dateDone).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00$/);
      const doneMs = Date.parse(dateDone.replace(/(\.\d{3})\d{3}\+00:00$/, '$1Z'));
      expect(doneMs).toBeGreaterThanOrEqual(before - 1000);
      expect(doneMs).toBeLessThanOrEqual(Date.now() + 1000);
      // result_expires defaults to 1 day (86400 s), set with SETEX.
      const ttl = await r.ttl(key);
      expect(ttl).toBeGreaterThan(86400 - 60);
      expect(ttl).toBeLessThanOrEqual(86400);
    });
  });
});
