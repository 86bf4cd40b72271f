import { resolve } from 'node:path';
import { projectRoot } from '../../config';
import { resolveModule } from '../app/loadTasks';

export { projectRoot };

/**
 * The folder holding workers/ as it runs: the clone's root from source, dist/ when compiled (and
 * in an installed package). Config task paths like './workers/tasks/demo' are looked up here
 * first, so a compiled worker loads the compiled module, never its TypeScript source.
 */
export function codeRoot(): string {
  return resolve(__dirname, '..', '..');
}

/**
 * The task modules a worker loads: config's worker.tasks (each in the running code's tree first,
 * then in the project), then the -A module from the working directory.
 */
export function taskModulePaths(configured: readonly string[], app?: string): string[] {
  const fromConfig = (spec: string): string => {
    try {
      return resolveModule(spec, codeRoot());
    } catch {
      return resolveModule(spec, projectRoot());
    }
  };
  return [...configured.map(fromConfig), ...(app ? [resolveModule(app, process.cwd())] : [])];
}
