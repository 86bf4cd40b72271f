/**
 * workers/mongodb/connect.ts against the run's real MongoDB-wire server (FerretDB), and against
 * a port where nothing listens yet: openMongo waits, logs the outage once with the host and a
 * masked password, and connects once a server appears there.
 */
import { startProcess } from '../helpers/processes';
import { testMongoUrl, testTmpDir } from '../helpers/env';
import { freePort } from '../setup/redisServer';
import { MONGO_SERVER_BIN } from '../setup/mongoServer';
import { openMongo, MongoUnavailableError } from '../../workers';

function recorder(): { lines: string[]; logger: { info(m: string): void; warn(m: string): void } } {
  const lines: string[] = [];
  return { lines, logger: { info: (m) => lines.push(`info ${m}`), warn: (m) => lines.push(`warn ${m}`) } };
}

test('connects to the database named in the URL and round-trips a document', async () => {
  const conn = await openMongo(testMongoUrl('connect_named'));
  try {
    expect(conn.db.databaseName).toBe('connect_named');
    const col = conn.db.collection<{ _id: string; n: number; at: Date }>('probe');
    await col.deleteMany({});
    const at = new Date('2026-01-02T03:04:05.678Z');
    await col.insertOne({ _id: 'a', n: 1, at });
    expect(await col.findOne({ _id: 'a' })).toEqual({ _id: 'a', n: 1, at });
  } finally {
    await conn.close();
  }
});

test('waits for a server that is not up yet: one warning naming the host, then connected', async () => {
  const port = await freePort();
  const url = `mongodb://127.0.0.1:${port}/late`;
  const { lines, logger } = recorder();
  const pending = openMongo(url, { logger, maxDelayMs: 1_000, clientOptions: { serverSelectionTimeoutMS: 300 } });
  await new Promise((r) => setTimeout(r, 2_500));
  expect(lines.filter((l) => l.startsWith('warn'))).toHaveLength(1);
  expect(lines[0]).toContain(`127.0.0.1:${port}`);
  const server = startProcess(MONGO_SERVER_BIN, ['-port', String(port), '-dir', testTmpDir('mongo-late')], { readyPattern: /^ready /m });
  await server.waitReady();
  const conn = await pending;
  try {
    await conn.db.collection('x').insertOne({ ok: true });
    expect(await conn.db.collection('x').countDocuments()).toBe(1);
    expect(lines.filter((l) => l.startsWith('info'))).toHaveLength(1);
  } finally {
    await conn.close();
    await server.stop();
  }
});

test('gives up after maxAttempts with an error that names the host and masks the password', async () => {
  const port = await freePort();
  const err = await openMongo(`mongodb://u:hunter2@127.0.0.1:${port}/x`, {
    maxAttempts: 2,
    maxDelayMs: 100,
    clientOptions: { serverSelectionTimeoutMS: 200 },
  }).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(MongoUnavailableError);
  expect((err as Error).message).toContain(`MongoDB at 127.0.0.1:${port} is unreachable`);
  expect((err as Error).message).toContain('u:**@');
  expect((err as Error).message).not.toContain('hunter2');
});

test('rejected credentials fail at once (not retried), password masked', async () => {
  // The test server has no users: FerretDB answers AuthenticationFailed, as MongoDB does for a
  // wrong password, and the driver labels it ResetPool like a network error.
  const url = testMongoUrl('auth').replace('mongodb://', 'mongodb://celeriac:s3cret@') + '?authSource=admin';
  const { lines, logger } = recorder();
  const err = await openMongo(url, { logger, clientOptions: { serverSelectionTimeoutMS: 2_000 } }).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(MongoUnavailableError);
  expect((err as Error).message).toContain('celeriac:**@');
  expect((err as Error).message).toMatch(/authentication/i);
  expect((err as Error).message).not.toContain('s3cret');
  expect(lines).toEqual([]);
});

test('a URL that is not mongodb:// is refused at once', async () => {
  await expect(openMongo('redis://127.0.0.1:6379/0')).rejects.toThrow(/not a MongoDB URL/);
});
