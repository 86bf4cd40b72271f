/**
 * Debian's Chromium driven by playwright-core (no browser download: the system binary).
 *
 *   launchChromium(): Promise<BrowserContext>   headless, a fresh --user-data-dir under the run's
 *                                               temp dir, 1440x760; close() it when done.
 * Throws (never skips) when /usr/bin/chromium is missing: scripts/test.sh installs it.
 */
import fs from 'node:fs';
import { chromium, type BrowserContext } from 'playwright-core';
import { testTmpDir } from './env';

export const CHROMIUM = '/usr/bin/chromium';

// The flags from /work/shared/ENVIRONMENT.md (Playwright adds --headless itself): no sandbox as
// root in a container, no GPU, and nothing that phones home or updates itself during a test.
const FLAGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run', '--disable-component-update', '--disable-sync'];

export async function launchChromium(): Promise<BrowserContext> {
  if (!fs.existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} not found: install Debian's chromium (scripts/test.sh does: apt-get install chromium)`);
  }
  // launchPersistentContext is how Playwright takes a user data dir (it refuses --user-data-dir in args).
  return chromium.launchPersistentContext(testTmpDir('chromium-profile'), {
    executablePath: CHROMIUM,
    headless: true,
    args: FLAGS,
    viewport: { width: 1440, height: 760 },
    timeout: 30_000,
  });
}
