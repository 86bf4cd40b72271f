/**
 * Pure parts of the dataset work: the Bioloop config profile, the datasets.* defaults, the pm2
 * apps, fnmatch as Python's fnmatchcase, Bioloop's stage alias, the steps' progress writes and md5File.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../../config';
import { StepProgress } from '../../workers/datasets/progress';
import { stageAlias, stagingPath, archivePath } from '../../workers/datasets/layout';
import { fnmatchcase } from '../../workers/datasets/watch';
import { md5File } from '../../workers/datasets/tree';

test("APP_ENV=bioloop is Bioloop's celeryconfig.py", () => {
  const cfg = loadConfig({ appEnv: 'bioloop', envFile: null, env: {} });
  expect(cfg.celery).toMatchObject({
    task_acks_late: true,
    task_reject_on_worker_lost: true,
    worker_prefetch_multiplier: 1,
    worker_max_tasks_per_child: 1,
    task_track_started: true,
    task_time_limit: 86400,
    task_soft_time_limit: 86400 - 600,
    task_queue_max_priority: 10,
    result_extended: true,
    result_expires: 0,
    task_default_queue: 'celeriac.q',
  });
  expect(cfg.worker).toMatchObject({ queues: ['celeriac.q'], tasks: ['./workers/tasks/bioloop'], pool: 'processes', optimization: 'fair' });
  // The default profile is untouched.
  expect(loadConfig({ envFile: null, env: {} }).celery.task_acks_late).toBe(false);
});

test('datasets.* settings come from the environment and are validated', () => {
  const cfg = loadConfig({ envFile: null, env: { CELERIAC_DATASETS_WATCH_ROOT: '/srv/incoming', CELERIAC_DATASETS_RECENCY_THRESHOLD: '60' } });
  expect(cfg.datasets).toMatchObject({ watch_root: '/srv/incoming', recency_threshold_seconds: 60, workflow: 'integrated', type: 'RAW_DATA' });
  expect(() => loadConfig({ envFile: null, env: { CELERIAC_DATASETS_POLL_INTERVAL: 'soon' } })).toThrow(/datasets.poll_interval_seconds/);
});

test('the dataset pm2 apps are opt-in', () => {
  const file = require.resolve('../../ecosystem.config.js');
  const names = (): string[] => {
    jest.resetModules();
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- a CommonJS config file, re-read per env
    return (require(file) as { apps: { name: string }[] }).apps.map((a) => a.name);
  };
  const before = process.env.CELERIAC_PM2_DATASETS;
  try {
    delete process.env.CELERIAC_PM2_DATASETS;
    expect(names()).toEqual(['celeriac-worker', 'celeriac-climate-api', 'celeriac-fleet-report']);
    process.env.CELERIAC_PM2_DATASETS = '1';
    expect(names()).toEqual(['celeriac-worker', 'celeriac-climate-api', 'celeriac-fleet-report', 'celeriac-watch', 'celeriac-purge-stale-workflows']);
  } finally {
    if (before === undefined) delete process.env.CELERIAC_PM2_DATASETS;
    else process.env.CELERIAC_PM2_DATASETS = before;
  }
});

test.each([
  ['.snapshots', '.snapshots', true],
  ['run.tmp', '*.tmp', true],
  ['run.tmp.x', '*.tmp', false],
  ['a1', 'a[0-9]', true],
  ['ab', 'a[!b]', false],
  ['ac', 'a[!b]', true],
  ['a(b)+', 'a(b)+', true],
  ['abc', 'a?c', true],
  ['.hidden', '*', true],
])('fnmatchcase(%j, %j) is %s, as in Python', (name, pattern, expected) => {
  expect(fnmatchcase(name, pattern)).toBe(expected);
});

test("stage alias is Bioloop's deterministic_uuid(id + name + salt), and the staging layout", () => {
  const ds = { _id: '42', name: 'run1', type: 'RAW_DATA', metadata: {} };
  const expected = createHash('sha256').update('42run1pepper').digest('hex').slice(0, 32);
  expect(stageAlias(ds, 'pepper')).toBe(expected);
  const paths = { watch_root: '/w', archive_dir: '/a', bundle_dir: '/b', staging_dir: '/s', download_dir: '/d', stage_alias_salt: 'pepper' };
  expect(stagingPath(paths, ds)).toEqual({ dir: `/s/${expected}/run1`, alias: expected });
  expect(stagingPath(paths, { ...ds, metadata: { stage_alias: 'kept' } }).dir).toBe('/s/kept/run1');
  expect(archivePath(paths, ds)).toBe('/a/RAW_DATA/run1.tar');
});

test("step progress writes sca-rhythm's fields, skips reports while one is being written, never throws", async () => {
  const seen: Record<string, unknown>[] = [];
  let release: () => void = () => undefined;
  const p = new StepProgress((m) => {
    seen.push(m as Record<string, unknown>);
    return new Promise<void>((r) => (release = r));
  }, 'md5', 1000);
  p.update(100);
  p.update(200); // the first write is still in flight: skipped, not queued
  expect(seen).toEqual([{ name: 'md5', fraction_done: 0.1, done: 100, total: 1000, units: 'bytes', time_remaining_sec: 1e100, wt_avg_rate: null, avg_rate: null }]);
  release();
  const failing = new StepProgress(() => Promise.reject(new Error('backend down')), 'x', null);
  expect(() => failing.update(1)).not.toThrow();
  await new Promise((r) => setTimeout(r, 10));
});

describe('md5File (double-buffered reads)', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'celeriac-md5-'));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it.each([0, 1, 1 << 20, (1 << 20) + 1, 2.5 * (1 << 20)])('a file of %i bytes hashes as crypto does, chunks summing to its size', async (size) => {
    const content = Buffer.alloc(size);
    for (let i = 0; i < size; i++) content[i] = (i * 31 + 7) & 0xff;
    const file = path.join(dir, `f${size}`);
    fs.writeFileSync(file, content);
    let seen = 0;
    expect(await md5File(file, (n) => (seen += n))).toBe(createHash('md5').update(content).digest('hex'));
    expect(seen).toBe(size);
  });

  it('stops at an abort and at a throwing progress callback, and reports a missing file', async () => {
    const file = path.join(dir, 'big');
    fs.writeFileSync(file, Buffer.alloc(5 << 20, 1));
    const ac = new AbortController();
    let chunks = 0;
    await expect(md5File(file, () => { if (++chunks === 2) ac.abort(); }, ac.signal)).rejects.toMatchObject({ name: 'AbortError' });
    expect(chunks).toBe(2);
    await expect(md5File(file, () => { throw new Error('progress store down'); })).rejects.toThrow('progress store down');
    await expect(md5File(path.join(dir, 'gone'))).rejects.toMatchObject({ code: 'ENOENT' });
  });
});
