// redisOptionsFromUrl: Celery-style redis URLs -> ioredis options (db, credentials, unix sockets,
// rediss:// with Celery's ssl_* query parameters read into Node tls options).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { redisOptionsFromUrl } from '../../workers/redis/connect';

let dir: string;
let ca: string;
let cert: string;
let key: string;

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'celeriac-redis-url-'));
  [ca, cert, key] = ['ca.pem', 'client.pem', 'client.key'].map((name) => {
    const file = path.join(dir, name);
    fs.writeFileSync(file, `-----BEGIN ${name}-----\n`);
    return file;
  }) as [string, string, string];
});

afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('redisOptionsFromUrl', () => {
  it('reads host, port and db number', () => {
    expect(redisOptionsFromUrl('redis://cache.local:6380/7')).toEqual({ host: 'cache.local', port: 6380, db: 7 });
  });

  it('defaults to 127.0.0.1:6379 and no db', () => {
    expect(redisOptionsFromUrl('redis://')).toEqual({ host: '127.0.0.1', port: 6379 });
    expect(redisOptionsFromUrl('redis://h/')).toEqual({ host: 'h', port: 6379 });
  });

  it('rejects a database that is not a number, without showing the password', () => {
    expect(() => redisOptionsFromUrl('redis://:pw@h/abc')).toThrow(/database must be a number.*"abc"/);
    expect(() => redisOptionsFromUrl('redis://:pw@h/abc')).not.toThrow(/pw/);
  });

  it('reads a password alone and username + password, percent-decoded', () => {
    expect(redisOptionsFromUrl('redis://:s%40cret@h:1/0')).toMatchObject({ password: 's@cret', db: 0 });
    expect(redisOptionsFromUrl('redis://:s%40cret@h:1/0').username).toBeUndefined();
    expect(redisOptionsFromUrl('redis://app:p%2Fw@h:1/2')).toMatchObject({ username: 'app', password: 'p/w', db: 2 });
  });

  it('reads unix sockets in both spellings, with the db as a query parameter', () => {
    expect(redisOptionsFromUrl('redis+socket:///run/redis/redis.sock?virtual_host=3')).toEqual({ path: '/run/redis/redis.sock', db: 3 });
    expect(redisOptionsFromUrl('unix:///tmp/r.sock?db=4')).toEqual({ path: '/tmp/r.sock', db: 4 });
    expect(redisOptionsFromUrl('redis+socket://:pw@/tmp/r.sock')).toEqual({ path: '/tmp/r.sock', password: 'pw' });
    expect(redisOptionsFromUrl('unix://app@/tmp/r.sock?db=1&password=pw')).toEqual({ path: '/tmp/r.sock', db: 1, username: 'app', password: 'pw' });
  });

  it("takes redis-py's ?password= when the URL has none", () => {
    expect(redisOptionsFromUrl('redis://h/0?password=q%26w')).toMatchObject({ db: 0, password: 'q&w' });
    expect(redisOptionsFromUrl('redis://:url@h/0?password=query').password).toBe('url');
  });

  it('redis:// has no tls', () => {
    expect(redisOptionsFromUrl('redis://h/0?ssl_cert_reqs=required').tls).toBeUndefined();
  });

  it('rediss:// verifies the server by default and for required/optional', () => {
    expect(redisOptionsFromUrl('rediss://h:6380/0').tls).toEqual({});
    for (const reqs of ['required', 'CERT_REQUIRED', 'optional', 'CERT_OPTIONAL']) {
      expect(redisOptionsFromUrl(`rediss://h:6380/0?ssl_cert_reqs=${reqs}`).tls).toEqual({});
    }
  });

  it('rediss:// with ssl_cert_reqs none (either spelling) turns verification off', () => {
    for (const reqs of ['none', 'CERT_NONE']) {
      expect(redisOptionsFromUrl(`rediss://h:6380/0?ssl_cert_reqs=${reqs}`).tls).toEqual({ rejectUnauthorized: false });
    }
  });

  it('rediss:// rejects an unknown ssl_cert_reqs value, masking the password', () => {
    const build = (): unknown => redisOptionsFromUrl('rediss://:topsecret@h/0?ssl_cert_reqs=maybe');
    expect(build).toThrow(/ssl_cert_reqs must be none, optional or required.*"maybe"/);
    expect(build).not.toThrow(/topsecret/);
  });

  it('rediss:// reads ssl_ca_certs, ssl_certfile and ssl_keyfile into tls ca/cert/key', () => {
    const q = `ssl_cert_reqs=required&ssl_ca_certs=${encodeURIComponent(ca)}&ssl_certfile=${encodeURIComponent(cert)}&ssl_keyfile=${encodeURIComponent(key)}`;
    const opts = redisOptionsFromUrl(`rediss://:pw@127.0.0.1:6380/1?${q}`);
    expect(opts).toMatchObject({ host: '127.0.0.1', port: 6380, db: 1, password: 'pw' });
    expect(opts.tls?.rejectUnauthorized).toBeUndefined();
    expect(String(opts.tls?.ca)).toBe('-----BEGIN ca.pem-----\n');
    expect(String(opts.tls?.cert)).toBe('-----BEGIN client.pem-----\n');
    expect(String(opts.tls?.key)).toBe('-----BEGIN client.key-----\n');
  });

  it('rediss:// keeps a CA file with verification off when ssl_cert_reqs is none', () => {
    const opts = redisOptionsFromUrl(`rediss://h/0?ssl_cert_reqs=none&ssl_ca_certs=${ca}`);
    expect(opts.tls?.rejectUnauthorized).toBe(false);
    expect(String(opts.tls?.ca)).toContain('ca.pem');
  });

  it('rediss:// names the parameter and file it cannot read', () => {
    const missing = path.join(dir, 'nope.pem');
    expect(() => redisOptionsFromUrl(`rediss://:pw@h/0?ssl_cert_reqs=required&ssl_ca_certs=${missing}`)).toThrow(
      new RegExp(`cannot read ssl_ca_certs ${missing.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: ENOENT`),
    );
  });
});
