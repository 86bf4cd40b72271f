/**
 * The climate job log on the MongoDB-wire server (FerretDB: no atomic findOneAndUpdate): claims
 * are unique inserts, so of many workers racing for one job exactly one records it as theirs,
 * also when a quiet job is taken over; and `celeriac jobs list/show` read it from the shell.
 */
import { randomUUID } from 'node:crypto';
import { openMongo, type MongoConnection } from '../../workers';
import { JobLog, type ClaimOutcome } from '../../workers/jobs/log';
import type { JobRequest } from '../../workers/jobs/request';
import { testMongoUrl } from '../helpers/env';
import { celeriacCli } from '../helpers/celeriacWorker';

const MONGO_DB = 'climate_joblog_test';
const REQUEST: JobRequest = {
  datatype: 0,
  operationtype: 5,
  begintime: '01/01/2020',
  endtime: '01/31/2020',
  intervaltype: 0,
  geometry: { type: 'Polygon', coordinates: [[[30, 0], [31, 0], [31, 1], [30, 0]]] },
  from_ui: false,
};

let mongo: MongoConnection;
/** One client per simulated worker, as separate worker processes would have. */
let clients: MongoConnection[] = [];
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

beforeAll(async () => {
  mongo = await openMongo(testMongoUrl(MONGO_DB), { dbName: MONGO_DB, maxAttempts: 3 });
  await mongo.db.dropDatabase();
  clients = await Promise.all(Array.from({ length: 8 }, () => openMongo(testMongoUrl(MONGO_DB), { dbName: MONGO_DB, maxAttempts: 3 })));
});

afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await mongo?.close();
});

/** Several workers, each with its own client, claim at once. */
function race(uuid: string, leaseMs: number, workers: number, round: number): Promise<ClaimOutcome[]> {
  return Promise.all(clients.slice(0, workers).map((c, i) => new JobLog(c.db, leaseMs).claim(uuid, `w${round}-${i}@test`)));
}

test('of eight workers racing for a job, exactly one claims it; after the lease, exactly one takes it over', async () => {
  const leaseMs = 400;
  const log = new JobLog(mongo.db, leaseMs);
  await log.ensureIndexes();
  for (let trial = 0; trial < 3; trial++) {
    const uuid = randomUUID();
    await log.create(uuid, REQUEST);
    const first = await race(uuid, leaseMs, 8, 1);
    const winners1 = first.filter((o) => o.kind === 'claimed');
    expect(winners1).toHaveLength(1);
    expect(first.filter((o) => o.kind === 'busy')).toHaveLength(7);
    const holder = winners1[0].kind === 'claimed' ? winners1[0].claim : null;

    // The holder goes quiet (killed): after the lease, the next race has one winner again.
    await sleep(leaseMs + 200);
    const second = await race(uuid, leaseMs, 8, 2);
    const winners2 = second.filter((o) => o.kind === 'claimed');
    expect(winners2).toHaveLength(1);
    const taker = winners2[0].kind === 'claimed' ? winners2[0] : null;
    expect(taker!.takenOverFrom).toBe(holder!.worker);
    expect(taker!.claim.attempt).toBe(2);

    // The old holder, if it was only slow, finds out and writes nothing.
    expect(await holder!.touch()).toBe(false);
    expect(await log.complete(holder!, { data_file: '/nope' })).toBe(false);
    expect(await log.complete(taker!.claim, { data_file: '/results.json' })).toBe(true);

    const doc = await log.get(uuid);
    expect(doc).toMatchObject({ status: 'Processing_Complete', progress: 100, worker: taker!.claim.worker, results: { data_file: '/results.json' } });
    expect(doc!.attempts.map((a) => [a.attempt, a.worker, a.finished_at !== undefined])).toEqual([
      [1, holder!.worker, false],
      [2, taker!.claim.worker, true],
    ]);
    expect(doc!.warnings).toEqual([expect.stringMatching(new RegExp(`^worker ${holder!.worker} stopped during attempt 1 .* attempt 2 runs on ${taker!.claim.worker}$`))]);
    expect(doc!.request).toEqual(REQUEST);
    // A finished job is never claimed again.
    expect((await race(uuid, leaseMs, 2, 3)).map((o) => o.kind)).toEqual(['done', 'done']);
  }
}, 60_000);

const cli = (args: string[], env: Record<string, string>): ReturnType<typeof celeriacCli> => celeriacCli(args, env);

test('celeriac jobs list / show read the log; an unreachable MongoDB is a clear error', async () => {
  const log = new JobLog(mongo.db, 60_000);
  const uuid = randomUUID();
  await log.create(uuid, REQUEST);
  const env = { CELERIAC_MONGO_URL: testMongoUrl(MONGO_DB), CELERIAC_MONGO_DB: MONGO_DB };
  const list = await cli(['jobs', 'list', '--limit', '50'], env);
  expect(list.code).toBe(0);
  expect(list.stdout.split('\n').find((l) => l.startsWith(uuid))).toMatch(/Waiting_To_Start\s+0\s+dt=0\s+op=5\s+01\/01\/2020-01\/31\/2020/);
  const show = await cli(['jobs', 'show', uuid, '--json'], env);
  expect(show.code).toBe(0);
  expect(JSON.parse(show.stdout)).toMatchObject({ uuid, status: 'Waiting_To_Start', request: { ...REQUEST } });
  const missing = await cli(['jobs', 'show', randomUUID()], env);
  expect(missing.code).toBe(1);
  expect(missing.stderr).toMatch(/no job/);
  const down = await cli(['jobs', 'list'], { CELERIAC_MONGO_URL: 'mongodb://127.0.0.1:9/x' });
  expect(down.code).toBe(1);
  expect(down.stderr).toMatch(/MongoDB at 127\.0\.0\.1:9 is unreachable/);
}, 120_000);
