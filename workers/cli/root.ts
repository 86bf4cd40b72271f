import { resolve } from 'node:path';

export { projectRoot } from '../../config';

/**
 * The folder holding workers/ as it runs: the clone's root from source, dist/ when compiled (and
 * in an installed package). Config task paths like './workers/tasks/demo' are looked up here
 * first, so a compiled worker loads the compiled module, never its TypeScript source.
 */
export function codeRoot(): string {
  return resolve(__dirname, '..', '..');
}
