/**
 * Configuration loader. Precedence, lowest to highest:
 *   1. common.ts                  defaults and development values
 *   2. <APP_ENV>.ts               deep-merged over common (found by name: add stage.ts, set APP_ENV=stage)
 *   3. environment variables      CELERY_BROKER_URL, CELERY_RESULT_BACKEND, CELERIAC_* (schema `env`)
 *   4. `overrides`                from code, e.g. CLI flags
 * A `.env` file at the project root feeds step 3 (and APP_ENV); a real environment variable wins.
 * The result is validated by the convict schema and deeply frozen.
 */
import fs from 'fs';
import path from 'path';
import convict from 'convict';
import dotenv from 'dotenv';
import { ConfigError, issuesFromConvict } from './errors';
import { schema } from './schema';
import { cloneTree, deepFreeze, deepMerge, isTree, lookup, setPath } from './tree';
import type { Tree } from './tree';
import type { Config, DeepPartial } from './types';

export type { Config, DeepPartial, DatasetsConfig } from './types';
export { ConfigError } from './errors';
export type { ConfigIssue } from './errors';

export interface LoadConfigOptions {
  /** Applied last, over everything else. Undefined leaves are ignored (unset CLI flags). */
  overrides?: DeepPartial<Config>;
  /** Override file name; default: env APP_ENV, else 'development'. */
  appEnv?: string;
  /** .env path; default `<project root>/.env` (optional). An explicit path must exist; null = none. */
  envFile?: string | null;
  /** Environment to read; default process.env. Never written to. */
  env?: NodeJS.ProcessEnv;
  /** Folder holding common and the override files; default this folder. For tests. */
  configDir?: string;
}

const DEFAULT_APP_ENV = 'development';
const APP_ENV_RE = /^[a-z0-9_-]+$/;
/** Modules in this folder that are not environments. */
const RESERVED = new Set(['common', 'index', 'schema', 'types', 'formats', 'errors', 'tree']);

export function loadConfig(opts: LoadConfigOptions = {}): Config {
  const env = effectiveEnv(opts.env ?? process.env, opts.envFile);
  const dir = opts.configDir ?? __dirname;
  const appEnv = opts.appEnv ?? env.APP_ENV ?? DEFAULT_APP_ENV;
  checkAppEnv(appEnv);

  let files = requireTree(dir, 'common', { key: 'configDir', value: dir });
  // 'development' is the implicit default: its file is optional, any other name must exist.
  const envTree = requireTree(dir, appEnv, appEnv === DEFAULT_APP_ENV ? null : { key: 'APP_ENV', value: appEnv });
  if (envTree !== null) files = deepMerge(files, envTree);

  checkJsonEnv(env);
  // args: [] so convict never reads process.argv (the CLI owns it). load() re-applies the
  // environment after the files, which gives step 3 precedence over steps 1-2.
  const cfg = convict<Config>(schema, { env, args: [] });
  cfg.load(files);
  applyOverrides(cfg, (opts.overrides ?? {}) as Tree, schema as unknown as Tree, []);

  const stashed = stashOpaque(cfg);
  try {
    cfg.validate({ allowed: 'strict', output: () => undefined });
  } catch (err) {
    const props = cfg.getProperties() as unknown as Tree;
    throw new ConfigError(issuesFromConvict((err as Error).message, (k) => lookup(props, k)));
  }
  const result = cfg.getProperties() as unknown as Tree;
  for (const [dotted, value] of stashed) setPath(result, dotted, cloneTree(value));
  return deepFreeze(result) as unknown as Config;
}

/** Dotted paths of the schema's free-form objects (format Object), e.g. celery.task_routes. */
const OPAQUE_PATHS: readonly string[] = (function collect(node: Tree, at: string[]): string[] {
  return Object.entries(node).flatMap(([k, child]) => {
    if (!isTree(child)) return [];
    if (!('default' in child)) return collect(child, [...at, k]);
    return child.format === Object ? [[...at, k].join('.')] : [];
  });
})(schema as unknown as Tree, []);

/** Environment variables of free-form objects (e.g. CELERIAC_CLIMATE_DATASETS), which hold JSON. */
const JSON_ENV: readonly [string, string][] = OPAQUE_PATHS.flatMap((dotted) => {
  const leaf = lookup(schema as unknown as Tree, dotted) as { env?: unknown } | undefined;
  return typeof leaf?.env === 'string' ? [[dotted, leaf.env] as [string, string]] : [];
});

/** convict would JSON.parse these and throw a bare SyntaxError: name the variable instead. */
function checkJsonEnv(env: NodeJS.ProcessEnv): void {
  for (const [dotted, name] of JSON_ENV) {
    const raw = env[name];
    if (raw === undefined) continue;
    try {
      JSON.parse(raw);
    } catch (err) {
      throw ConfigError.of(`${dotted} (env ${name})`, raw, `must be JSON: ${(err as Error).message}`);
    }
  }
}

/**
 * convict's validate() walks every nested key by splitting on '.', so it crashes on Celery's
 * task_routes, whose keys are dotted task names ('proj.tasks.add'). Free-form objects have
 * nothing to validate inside anyway: swap each one for {} while convict validates, and hand the
 * real values back for the result. Non-objects stay in place so convict reports them.
 */
function stashOpaque(cfg: convict.Config<Config>): Map<string, Tree> {
  const props = cfg.getProperties() as unknown as Tree;
  const stashed = new Map<string, Tree>();
  for (const dotted of OPAQUE_PATHS) {
    const value = lookup(props, dotted);
    if (isTree(value)) {
      stashed.set(dotted, value);
      cfg.set(dotted, {});
    }
  }
  return stashed;
}

/** .env values under the real environment; empty strings count as unset (`X=` in compose files). */
function effectiveEnv(env: NodeJS.ProcessEnv, envFile: string | null | undefined): NodeJS.ProcessEnv {
  let fromFile: Record<string, string> = {};
  if (envFile !== null) {
    const file = envFile ?? path.join(projectRoot(), '.env');
    if (fs.existsSync(file)) fromFile = dotenv.parse(fs.readFileSync(file));
    else if (envFile !== undefined) throw ConfigError.of('envFile', file, 'file not found');
  }
  const merged: NodeJS.ProcessEnv = { ...fromFile, ...env };
  return Object.fromEntries(Object.entries(merged).filter(([, v]) => v !== undefined && v !== ''));
}

/**
 * Where `.env` and config task paths are read from: the nearest folder above this file with a
 * package.json (a clone, from source or from dist/). Once installed as a dependency that folder is
 * node_modules/celeriac, which is not the user's project: then it is the working directory.
 */
export function projectRoot(): string {
  let dir = path.resolve(__dirname, '..');
  while (!fs.existsSync(path.join(dir, 'package.json'))) {
    const parent = path.dirname(dir);
    if (parent === dir) return process.cwd();
    dir = parent;
  }
  return dir.split(path.sep).includes('node_modules') ? process.cwd() : dir;
}

function checkAppEnv(name: string): void {
  if (!APP_ENV_RE.test(name)) {
    throw ConfigError.of('APP_ENV', name, 'must match [a-z0-9_-]+ (it names a file in config/)');
  }
  if (RESERVED.has(name)) {
    throw ConfigError.of('APP_ENV', name, `is reserved (config/${name}.ts is not an environment)`);
  }
}

/** Which setting to blame when a required file is missing. */
interface Blame {
  key: string;
  value: string;
}

/**
 * The plain object exported (default or module.exports) by `<dir>/<name>`. A missing file is an
 * error naming the path, blamed on `ifMissing`; with `ifMissing` null it is simply skipped.
 */
function requireTree(dir: string, name: string, ifMissing: Blame): Tree;
function requireTree(dir: string, name: string, ifMissing: Blame | null): Tree | null;
function requireTree(dir: string, name: string, ifMissing: Blame | null): Tree | null {
  const base = path.join(dir, name);
  let file: string;
  try {
    file = require.resolve(base);
  } catch {
    if (ifMissing === null) return null;
    throw ConfigError.of(ifMissing.key, ifMissing.value, `no config file ${base}.ts (or .js)`);
  }
  let mod: unknown;
  try {
    // Loaded by name at run time so a new environment file needs no code change.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    mod = require(file);
  } catch (err) {
    throw ConfigError.of(name, file, `failed to load: ${(err as Error).message}`);
  }
  const tree = (mod as { default?: unknown }).default ?? mod;
  if (!isTree(tree)) throw ConfigError.of(name, file, 'must export an object (export default { ... })');
  return tree;
}

/**
 * Apply code overrides with set(), not load(): load() re-imports the environment afterwards,
 * which would let an env var beat an explicit CLI flag. Descends only through schema groups,
 * so a free-form object (task_routes) is replaced whole.
 */
function applyOverrides(cfg: convict.Config<Config>, over: Tree, node: Tree | undefined, at: string[]): void {
  for (const [k, v] of Object.entries(over)) {
    if (v === undefined) continue;
    const child = node?.[k];
    const childGroup = isTree(child) && !('default' in child) ? child : undefined;
    if (childGroup !== undefined && isTree(v)) applyOverrides(cfg, v, childGroup, [...at, k]);
    else cfg.set([...at, k].join('.'), v);
  }
}

/**
 * broker_url as one string: Celery allows a list for failover, which kombu joins with ';' (the
 * form every transport parses).
 */
export function brokerUrlOf(config: Pick<Config, 'celery'>): string {
  return [config.celery.broker_url].flat().join(';');
}
