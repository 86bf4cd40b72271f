/**
 * `celeriac workflows` (scripts/workflows.ts) as a user runs it: `demo` with nothing but a
 * MongoDB (CELERIAC_MONGO_URL; filesystem broker, in-process worker) ends SUCCESS, then list,
 * show, pause/resume and the errors for an unknown workflow id or registry name.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { MongoClient } from 'mongodb';
import { PROJECT_ROOT, testMongoUrl, testTmpDir } from '../helpers/env';
import type { EmbellishedWorkflow, WorkflowDocument } from '../../workers/workflows';

jest.setTimeout(120_000);

const mongoUrl = testMongoUrl('workflows_cli');
const cwd = testTmpDir('workflows-cli');

function celeriac(args: string[]): Promise<{ stdout: string; stderr: string; code: number | null }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--require', require.resolve('tsx/cjs'), path.join(PROJECT_ROOT, 'scripts', 'celeriac.ts'), 'workflows', ...args], {
      cwd,
      env: { ...process.env, APP_ENV: 'development', CELERIAC_MONGO_URL: mongoUrl },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ stdout, stderr, code }));
  });
}

beforeAll(async () => {
  const client = await MongoClient.connect(mongoUrl);
  await client.db().dropDatabase();
  await client.close();
});

test('demo runs the demo workflow to SUCCESS; list, show, pause and resume read it', async () => {
  const demo = await celeriac(['demo', '--json']);
  expect(demo.code).toBe(0);
  const views = demo.stdout.trim().split('\n').map((l) => JSON.parse(l) as EmbellishedWorkflow);
  const last = views.at(-1)!;
  expect(last).toMatchObject({ name: 'demo', app_id: 'celeriac', status: 'SUCCESS', steps_done: 3, total_steps: 3 });
  expect(last.steps.map((s) => s.last_task_run?.result)).toEqual([['demo > prepare'], ['demo > prepare > process'], ['demo > prepare > process > finish']]);
  // Progress was visible on the way (sca-rhythm's STARTED meta).
  expect(views.some((v) => v.steps.some((s) => s.status === 'STARTED' && typeof (s.last_task_run?.result as { fraction_done?: unknown } | undefined)?.fraction_done === 'number'))).toBe(true);

  const list = await celeriac(['list', '--json']);
  expect((JSON.parse(list.stdout) as WorkflowDocument[]).map((d) => [d._id, d._status])).toContainEqual([last.id, 'SUCCESS']);
  const table = await celeriac(['list', '--status', 'success']);
  expect(table.stdout).toContain(last.id);

  const show = await celeriac(['show', last.id]);
  expect(show.stdout).toContain(`demo ${last.id}: SUCCESS, 3/3 steps done`);
  expect(JSON.parse((await celeriac(['pause', last.id, '--json'])).stdout)).toEqual({ paused: false });
  expect(JSON.parse((await celeriac(['resume', last.id, '--json'])).stdout)).toEqual({ resumed: false });
});

test('an unknown workflow id or registry name: exit 1 with the reason', async () => {
  const missing = await celeriac(['show', 'no-such-id']);
  expect(missing.code).toBe(1);
  expect(missing.stderr).toContain('WFNotFound: Workflow with id no-such-id is not found');
  const unknown = await celeriac(['start', 'no-such-workflow', 'x']);
  expect(unknown.code).toBe(1);
  expect(unknown.stderr).toMatch(/no workflow named "no-such-workflow" in workflows.registry \(known: integrated, stage, delete, demo\)/);
});
