/**
 * Integration-project global teardown: stops the run's redis-server (`shutdown nosave`, SIGKILL
 * if that does not work), kills any test subprocess a test file forgot to stop, and removes the
 * run's temp dir. State comes from globalSetup (global, or the state file in os.tmpdir()).
 */
import { spawnSync } from 'node:child_process';
import { RunState, cleanupRun, readState } from './runState';

export default async function globalTeardown(): Promise<void> {
  const state = (globalThis as { __celeriacTestRun?: RunState }).__celeriacTestRun ?? readState();
  if (!state) return;
  // A clean shutdown first; cleanupRun's SIGKILL covers a server that does not answer.
  spawnSync('redis-cli', ['-p', String(state.redisPort), 'shutdown', 'nosave'], { timeout: 5_000 });
  cleanupRun(state);
}
