/**
 * Loading task modules (`-A path/to/tasks.ts` and config worker.tasks). A module registers its
 * tasks by exporting `register(app)` (or a default function), or by exporting a Celeriac `app`
 * whose tasks are then adopted.
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { Celeriac } from './app';

type Registrar = (app: Celeriac) => unknown;

let tsLoaderReady = false;

/** Compiled (dist) runs need tsx's require hook to load a .ts task module. */
function ensureTsLoader(path: string): void {
  if (tsLoaderReady || !/\.[cm]?ts$/.test(path) || process.execArgv.join(' ').includes('tsx')) return;
  if (require.extensions['.ts']) return;
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  (require('tsx/cjs/api') as { register(): void }).register();
  tsLoaderReady = true;
}

/** The absolute path of a task module spec (with or without .ts/.js), as loadTaskModule finds it. */
export function resolveModule(spec: string, baseDir: string): string {
  const abs = resolve(baseDir, spec);
  for (const candidate of [abs, `${abs}.ts`, `${abs}.js`, resolve(abs, 'index.ts'), resolve(abs, 'index.js')]) {
    if (existsSync(candidate) && !candidate.endsWith('/')) return candidate;
  }
  throw new Error(`task module ${JSON.stringify(spec)} not found (looked for ${abs}[.ts|.js])`);
}

export function loadTaskModule(app: Celeriac, spec: string, baseDir = process.cwd()): void {
  const path = resolveModule(spec, baseDir);
  ensureTsLoader(path);
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const mod = require(path) as { register?: Registrar; default?: Registrar | { register?: Registrar }; app?: unknown };
  const register = mod.register ?? (typeof mod.default === 'function' ? mod.default : mod.default?.register);
  if (typeof register === 'function') {
    register(app);
    return;
  }
  if (mod.app instanceof Celeriac) {
    // Built-in celery.* tasks stay this app's own: the module's copies are bound to its app.
    for (const [name, def] of mod.app.tasks) if (!(name.startsWith('celery.') && app.tasks.has(name))) app.tasks.set(name, def);
    return;
  }
  throw new Error(`task module ${path} exports neither register(app), a default function, nor an app`);
}
