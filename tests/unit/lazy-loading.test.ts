/**
 * Issue #16: the public API (what every task module imports, also inside each pool child) and the
 * child's own entry must not load the broker clients, codecs and drivers they may never use. A
 * fresh node process reports which packages it loaded; the test fails if one of them comes back.
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

const ROOT = join(__dirname, '..', '..');
const LAZY = ['amqplib', 'ioredis', 'mongodb', 'prom-client', 'msgpackr', 'yaml', 'lossless-json', 'pino'];

/** Package names under node_modules/ that a fresh process has loaded after running `code`. */
function packagesLoadedBy(code: string): string[] {
  const report = `${code}; const names = Object.keys(require.cache).map((f) => (/node_modules\\/((@[^/]+\\/)?[^/]+)/.exec(f) || [])[1]).filter(Boolean); console.log(JSON.stringify([...new Set(names)]));`;
  const out = execFileSync(process.execPath, ['-r', 'tsx/cjs', '-e', report], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: '' } });
  return JSON.parse(out.trim().split('\n').pop()!) as string[];
}

describe('lazy loading (issue #16)', () => {
  it('the public API and the pool child entry load none of the lazily loaded packages', () => {
    const loaded = packagesLoadedBy("require('./workers/index.ts'); require('./workers/pool/child.ts')");
    expect(loaded).toContain('commander'); // the probe does see packages
    expect(loaded.filter((name) => LAZY.includes(name))).toEqual([]);
  }, 60_000);

  it('each is loaded by its first use', () => {
    const code = [
      "const s = require('./workers/protocol/serializers.ts')",
      "s.decodeBody(Buffer.from('a: 1'), 'application/x-yaml')",
      "s.decodeBody(s.encodeBody({ a: 1 }, 'msgpack').body, 'application/x-msgpack')",
      "require('./workers/log/logger.ts').createLogger({ level: 'warning' })",
      "require('./workers/redis/connect.ts').connectRedis('redis://127.0.0.1:1/0', { options: { lazyConnect: true } })",
    ].join('; ');
    const loaded = packagesLoadedBy(code);
    expect(loaded).toEqual(expect.arrayContaining(['yaml', 'msgpackr', 'pino', 'ioredis']));
    expect(loaded).not.toContain('amqplib');
    expect(loaded).not.toContain('mongodb');
  }, 60_000);
});
