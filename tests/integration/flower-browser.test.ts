// Flower's own web pages, in a real browser (Debian's Chromium via playwright-core), watching a
// Celeriac worker started with -E on Redis (broker db 6, results db 7): the Workers page lists it
// online, its worker page renders from the worker's inspect replies, and the Tasks page shows
// one succeeded and one failed task. Writes docs/img/flower-workers.png and flower-tasks.png
// (the screenshots in README.md) on every run.
import fs from 'node:fs';
import path from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { PROJECT_ROOT, testRedisUrl } from '../helpers/env';
import { launchChromium } from '../helpers/chromium';
import { startCeleriacWorker } from '../helpers/celeriacWorker';
import { startFlower, waitFor, type Flower } from '../helpers/flower';
import type { ProcessHandle } from '../helpers/processes';
import { pyClient } from '../helpers/python';
import { flushDb } from '../helpers/redis';

const BROKER_DB = 6;
const BACKEND_DB = 7;
const IMG_DIR = path.join(PROJECT_ROOT, 'docs', 'img');
// A fixed, readable name: it appears in the committed screenshots.
const HOSTNAME = 'celeriac@flower-demo';

describe('Flower web UI (Chromium) on a Celeriac worker', () => {
  let flower: Flower;
  let worker: ProcessHandle;
  let browser: BrowserContext;
  let page: Page;
  const pageErrors: string[] = [];
  let addId: string;
  let failId: string;

  beforeAll(async () => {
    await flushDb(BROKER_DB);
    await flushDb(BACKEND_DB);
    const env = { BROKER_URL: testRedisUrl(BROKER_DB), RESULT_BACKEND: testRedisUrl(BACKEND_DB) };
    flower = await startFlower({ brokerUrl: env.BROKER_URL, backendUrl: env.RESULT_BACKEND });
    worker = await startCeleriacWorker({ brokerUrl: env.BROKER_URL, backendUrl: env.RESULT_BACKEND, hostname: HOSTNAME, concurrency: 2, extraArgs: ['-E'] });
    await waitFor('worker online in Flower', async () => ((await flower.get<Record<string, boolean>>('/api/workers?status=1'))[HOSTNAME] ? true : undefined));

    const out = await pyClient<{ results: { out: { id: string } }[] }>(
      { op: 'batch', commands: [{ op: 'send', task: 'demo.add', args: [2, 3] }, { op: 'send', task: 'demo.fail', args: ['boom'] }] },
      { env },
    );
    [addId, failId] = out.results.map((r) => r.out.id) as [string, string];
    await waitFor('both tasks finished in Flower', async () => {
      const t = await flower.get<Record<string, { state: string }>>('/api/tasks');
      return t[addId]?.state === 'SUCCESS' && t[failId]?.state === 'FAILURE' ? true : undefined;
    });

    browser = await launchChromium();
    page = await browser.newPage();
    // A page that throws would still render a table: its script errors fail the test too.
    page.on('pageerror', (err) => pageErrors.push(err.message));
    fs.mkdirSync(IMG_DIR, { recursive: true });
  });

  afterAll(async () => {
    await browser?.close().catch(() => undefined);
    await worker?.stop().catch(() => undefined);
    await flower?.process.stop().catch(() => undefined);
  });

  it('the Workers page lists the Celeriac worker as online', async () => {
    await page.goto(`${flower.url}/workers`);
    // The table's row for the worker (Flower's DataTable, filled from the event state).
    const row = page.locator('tr', { hasText: HOSTNAME });
    await row.first().waitFor({ timeout: 15_000 });
    expect(await row.count()).toBe(1);
    // Columns: worker, status, active, processed, failed, succeeded, load average (whitespace
    // dropped: a narrow column wraps the name at the '@').
    const cells = (await row.locator('td').allInnerTexts()).map((t) => t.replace(/\s+/g, ''));
    expect(cells.slice(0, 6)).toEqual([HOSTNAME, 'Online', '0', '2', '1', '1']);
    await page.screenshot({ path: path.join(IMG_DIR, 'flower-workers.png') });
    expect(pageErrors).toEqual([]);
  });

  it("the worker's page renders its pool from the inspect replies", async () => {
    await page.goto(`${flower.url}/worker/${encodeURIComponent(HOSTNAME)}`);
    await page.locator('#workername').waitFor({ timeout: 15_000 });
    expect(await page.locator('#workername').innerText()).toBe(HOSTNAME);
    // stats.pool['max-concurrency'] = the -c 2 the worker runs with.
    expect(await page.locator('#tab-pool').innerText()).toMatch(/Max.concurrency\s+2\b/i);
    expect(pageErrors).toEqual([]);
  });

  it('the Tasks page shows one succeeded and one failed task', async () => {
    await page.goto(`${flower.url}/tasks`);
    const okRow = page.locator('tr', { hasText: addId });
    const failRow = page.locator('tr', { hasText: failId });
    await okRow.waitFor({ timeout: 15_000 });
    await failRow.waitFor({ timeout: 15_000 });
    // Columns: name, uuid, state, received, runtime, worker (a long name may wrap at the '@').
    const cells = async (row: typeof okRow): Promise<string[]> => (await row.locator('td').allInnerTexts()).map((t) => t.replace(/\s+/g, ''));
    expect(await cells(okRow)).toEqual(['demo.add', addId, 'SUCCESS', expect.any(String), expect.stringMatching(/ms$/), HOSTNAME]);
    expect(await cells(failRow)).toEqual(['demo.fail', failId, 'FAILURE', expect.any(String), '', HOSTNAME]);
    await page.screenshot({ path: path.join(IMG_DIR, 'flower-tasks.png') });
    expect(pageErrors).toEqual([]);
  });
});
