import { deflateSync, gzipSync } from 'node:zlib';
import { pack } from 'msgpackr';
import { buildTaskMessage, parseTaskMessage, InvalidMessageError } from '../../workers/protocol/message';
import { decodeBody, decompress, ContentError, MAX_DECOMPRESSED_BYTES, stringifyJson, parseJson } from '../../workers/protocol/serializers';
import { argsRepr, pyRepr } from '../../workers/protocol/repr';
import type { BrokerMessage } from '../../workers/transports/transport';
import { replacement } from '../../workers/canvas/replace';
import { signature } from '../../workers/canvas/signature';

function v2(body: unknown, headers: Record<string, unknown> = {}, contentType = 'application/json'): BrokerMessage {
  const raw = contentType === 'application/x-msgpack' ? pack(body) : Buffer.from(JSON.stringify(body));
  return {
    body: raw,
    contentType,
    contentEncoding: 'utf-8',
    headers: { task: 'demo.add', id: 'id-1', retries: 0, timelimit: [null, null], ...headers },
    properties: { correlation_id: 'id-1', reply_to: 'r-1' },
  };
}

describe('protocol v2', () => {
  it('parses headers and [args, kwargs, embed]', () => {
    const req = parseTaskMessage(
      v2([[2, 3], { z: 'é' }, { callbacks: null, errbacks: null, chain: null, chord: null }], {
        eta: '2030-01-01T00:00:00+00:00',
        expires: '2030-01-02T00:00:00',
        root_id: 'root',
        parent_id: 'parent',
        group: 'g',
        group_index: 2,
        timelimit: [1.5, 3],
        retries: 4,
        ignore_result: true,
      }),
    );
    expect(req).toMatchObject({ protocol: 2, id: 'id-1', task: 'demo.add', args: [2, 3], kwargs: { z: 'é' }, retries: 4 });
    expect(req.eta?.toISOString()).toBe('2030-01-01T00:00:00.000Z');
    expect(req.expires?.toISOString()).toBe('2030-01-02T00:00:00.000Z'); // naive = UTC
    expect(req.timeLimit).toEqual([1.5, 3]);
    expect([req.rootId, req.parentId, req.group, req.groupIndex]).toEqual(['root', 'parent', 'g', 2]);
    expect(req.ignoreResult).toBe(true);
    expect(req.replyTo).toBe('r-1');
  });

  it('reads numeric headers given as numbers or numeric strings; any other type counts as absent, never a crash', () => {
    const req = parseTaskMessage(v2([[], {}, null], { group_index: '3', retries: '2', timelimit: ['1.5', 'x'] }));
    expect([req.groupIndex, req.retries, req.timeLimit]).toEqual([3, 2, [1.5, null]]);
    // From JSON: {"toString": 0} made Number() throw a TypeError instead of parsing or refusing.
    const odd = { toString: 0 };
    const req2 = parseTaskMessage(v2([[], {}, null], { group_index: odd, retries: odd, timelimit: [odd, [7]] }));
    expect([req2.groupIndex, req2.retries, req2.timeLimit]).toEqual([null, 0, [null, null]]);
  });

  it("keeps the producer's eta/expires strings (microseconds) and the message properties, as Celery's request", () => {
    const req = parseTaskMessage(v2([[], {}, null], { eta: '2030-01-01T00:00:00.123456+00:00', expires: '2030-01-02T00:00:00.654321' }));
    expect(req.etaIso).toBe('2030-01-01T00:00:00.123456+00:00');
    expect(req.expiresIso).toBe('2030-01-02T00:00:00.654321+00:00'); // naive = UTC
    expect(req.properties).toEqual({ correlation_id: 'id-1', reply_to: 'r-1' });
    // A retry re-sends the same string, not one rebuilt from a millisecond Date.
    const { message } = buildTaskMessage('demo.add', [], {}, { expires: req.expiresIso });
    expect(message.headers.expires).toBe('2030-01-02T00:00:00.654321+00:00');
  });

  it('accepts a body without embed and msgpack bodies', () => {
    expect(parseTaskMessage(v2([[1], {}])).embed.callbacks).toBeNull();
    expect(parseTaskMessage(v2([[1, 'x'], { k: [1, 2] }, {}], {}, 'application/x-msgpack')).kwargs).toEqual({ k: [1, 2] });
  });

  it('parses yaml bodies with the safe core schema', () => {
    const msg = v2(null);
    msg.contentType = 'application/x-yaml';
    msg.body = Buffer.from('- [1, two]\n- {a: null}\n- {}\n');
    expect(parseTaskMessage(msg)).toMatchObject({ args: [1, 'two'], kwargs: { a: null } });
  });

  it('reads protocol v1 messages (everything in the body)', () => {
    const msg = v2({ task: 'demo.add', id: 'v1-id', args: [1, 2], kwargs: {}, retries: 1, eta: null, taskset: 'gs' });
    msg.headers = {};
    expect(parseTaskMessage(msg)).toMatchObject({ protocol: 1, id: 'v1-id', task: 'demo.add', args: [1, 2], retries: 1, group: 'gs' });
  });

  it.each([
    ['a non-list body', { not: 'a list' }, /body must be/],
    ['args not a list', ['x', {}], /args must be a list/],
    ['kwargs not a dict', [[], []], /kwargs must be a dict/],
  ])('rejects %s with a reason', (_name, body, reason) => {
    expect(() => parseTaskMessage(v2(body))).toThrow(reason);
  });

  it('rejects a missing id, a bad eta and malformed JSON', () => {
    expect(() => parseTaskMessage(v2([[], {}], { id: undefined }))).toThrow(InvalidMessageError);
    expect(() => parseTaskMessage(v2([[], {}], { eta: 'not a date' }))).toThrow(/eta is not a valid date/);
    const bad = v2(null);
    bad.body = Buffer.from('[[1, 2], {');
    expect(() => parseTaskMessage(bad)).toThrow(/malformed json/);
  });

  it('refuses pickle without deserializing it', () => {
    expect(() => decodeBody(Buffer.from('\x80\x04K\x01.'), 'application/x-python-serialize')).toThrow(/refusing to deserialize pickle/);
    expect(() => decodeBody(Buffer.from('{}'), 'application/x-unknown')).toThrow(ContentError);
  });

  it('honours accept_content', () => {
    expect(() => decodeBody(Buffer.from('[]'), 'application/x-yaml', new Set(['json']))).toThrow(/not in accept_content/);
  });

  it('decompresses zlib and gzip bodies and caps bombs', () => {
    const body = Buffer.from(JSON.stringify([[1], {}, {}]));
    expect(decompress(deflateSync(body), 'application/x-gzip').equals(body)).toBe(true);
    expect(decompress(gzipSync(body), 'gzip').equals(body)).toBe(true);
    const bomb = deflateSync(Buffer.alloc(MAX_DECOMPRESSED_BYTES + 1024));
    expect(() => decompress(bomb, 'zlib')).toThrow(/cannot decompress/);
    expect(() => decompress(body, 'application/x-bz2')).toThrow(/unsupported compression/);
  });

  it('revives kombu JSON type markers and writes them back', () => {
    const v = parseJson('{"b": {"__type__": "bytes", "__value__": "hi"}, "d": {"__type__": "datetime", "__value__": "2030-01-01T00:00:00"}}') as Record<string, unknown>;
    expect(Buffer.isBuffer(v.b) && v.b.toString()).toBe('hi');
    expect(v.d).toBe('2030-01-01T00:00:00');
    expect(JSON.parse(stringifyJson({ b: Buffer.from('hi') }))).toEqual({ b: { __type__: 'base64', __value__: 'aGk=' } });
  });
});

describe('building messages', () => {
  it('builds what Celery 5 sends and parses back', () => {
    const { id, message } = buildTaskMessage('demo.add', [2, 3], { z: 'é' }, { countdown: 10, expires: 60, priority: 5, retries: 2 });
    expect(message.headers).toMatchObject({ lang: 'py', task: 'demo.add', id, root_id: id, parent_id: null, retries: 2, argsrepr: '(2, 3)', kwargsrepr: "{'z': 'é'}" });
    expect(message.properties).toMatchObject({ correlation_id: id, priority: 5, delivery_mode: 2 });
    expect(String(message.headers.eta)).toMatch(/\+00:00$/);
    const req = parseTaskMessage(message);
    expect(req.eta!.getTime() - Date.now()).toBeGreaterThan(9000);
    expect(req.expires!.getTime() - Date.now()).toBeGreaterThan(59000);
    expect(req.embed).toEqual({ callbacks: null, errbacks: null, chain: null, chord: null });
  });

  it('compresses when asked', () => {
    const { message } = buildTaskMessage('demo.echo', ['x'.repeat(1000)], {}, { compression: true });
    expect(message.headers.compression).toBe('application/x-gzip');
    expect(parseTaskMessage(message).args[0]).toBe('x'.repeat(1000));
  });
});

describe('python repr', () => {
  it('prints like Python', () => {
    expect(argsRepr([1])).toBe('(1,)');
    expect(argsRepr([])).toBe('()');
    expect(pyRepr({ a: [true, null, 1.5, "it's"] })).toBe(`{'a': [True, None, 1.5, "it's"]}`);
    expect(pyRepr('x'.repeat(5000)).length).toBe(1024);
  });
});

describe('Python ints beyond 2**53', () => {
  it('parse as BigInt, small ints stay numbers, and write back as digits', () => {
    const v = parseJson('[9007199254740993, 3, 1.5, -12345678901234567890, "1234567890123456789"]') as unknown[];
    expect(v).toEqual([9007199254740993n, 3, 1.5, -12345678901234567890n, '1234567890123456789']);
    expect(stringifyJson({ n: 9007199254740993n, d: new Date(0) })).toBe('{"n":9007199254740993,"d":{"__type__":"datetime","__value__":"1970-01-01T00:00:00.000Z"}}');
  });
  it('survive msgpack both ways', () => {
    const msg = v2(null, {}, 'application/x-msgpack');
    msg.body = pack([[9007199254740993n], {}, {}]);
    expect(parseTaskMessage(msg).args).toEqual([9007199254740993n]);
  });
});

describe('Task.replace nesting', () => {
  const request = (nesting: unknown) => {
    const { message } = buildTaskMessage('demo.add', [1, 2]);
    message.headers.replaced_task_nesting = nesting;
    return parseTaskMessage(message);
  };

  it('counts one more than the message says; anything but a number counts as none (an object never throws)', () => {
    const nestingOf = (r: ReturnType<typeof request>): unknown => (replacement(r, signature('demo.add', [3, 4])).signature.options as Record<string, unknown>).replaced_task_nesting;
    expect(nestingOf(request(2))).toBe(3);
    expect(nestingOf(request(undefined))).toBe(1);
    expect(nestingOf(request({ toString: 0 }))).toBe(1);
  });
});
