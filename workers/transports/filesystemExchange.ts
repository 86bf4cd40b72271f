/**
 * Exchange binding tables in kombu's control folder: `<control>/<exchange>.exchange` holds a JSON
 * list of [routing_key, pattern, queue] triples (kombu Channel._queue_bind / get_table), newest
 * first. The exchange *type* is not on disk (kombu keeps it in process memory and defaults to
 * 'direct'), so routing here takes the type from what this process declared.
 *
 * kombu serializes writers with flock(); Node has no flock, so we (a) replace the file with an
 * atomic rename, so no reader ever sees half a table, and (b) serialize Celeriac writers with an
 * O_EXCL lock file. A Python writer rewriting the file at the very instant we rename can still lose
 * its update; bindings are written once at startup, so that window is accepted.
 */
import { randomUUID } from 'node:crypto';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { exchangeFilePath } from './filesystemLayout';

export type BindingTriple = [routingKey: string, pattern: string, queue: string];
export type ExchangeKind = 'direct' | 'topic' | 'fanout';

const LOCK_STALE_MS = 5_000;
const LOCK_WAIT_MS = 10_000;
const READ_RETRIES = 5;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function errCode(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | null)?.code;
}

function isTriple(value: unknown): value is BindingTriple {
  return Array.isArray(value) && value.length === 3 && value.every((v) => typeof v === 'string');
}

/** get_table: [] when the file is missing. Retries briefly: a Python writer rewrites in place. */
export async function readExchangeTable(controlFolder: string, exchange: string): Promise<BindingTriple[]> {
  const file = exchangeFilePath(controlFolder, exchange);
  let lastError: unknown;
  for (let attempt = 0; attempt < READ_RETRIES; attempt += 1) {
    let raw: string;
    try {
      raw = await fsp.readFile(file, 'utf8');
    } catch (err) {
      if (errCode(err) === 'ENOENT') return [];
      throw err;
    }
    try {
      const doc: unknown = JSON.parse(raw);
      if (!Array.isArray(doc)) throw new Error('exchange table is not a JSON list');
      // kombu writes None as "" (exchange_queue_t(routing_key or "", ...)); accept null too.
      return doc
        .map((t: unknown) => (Array.isArray(t) ? t.map((v: unknown) => (v == null ? '' : v)) : t))
        .filter(isTriple);
    } catch (err) {
      lastError = err;
      await sleep(10 * (attempt + 1));
    }
  }
  throw new Error(`Cannot read exchange table ${file}: ${(lastError as Error).message}`);
}

async function withLock<T>(lockPath: string, fn: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + LOCK_WAIT_MS;
  for (;;) {
    try {
      const handle = await fsp.open(lockPath, 'wx');
      await handle.writeFile(String(process.pid));
      await handle.close();
      break;
    } catch (err) {
      if (errCode(err) !== 'EEXIST') throw err;
    }
    // A holder that died mid-update leaves the lock behind; updates take milliseconds.
    const age = await fsp.stat(lockPath).then((st) => Date.now() - st.mtimeMs, () => 0);
    if (age > LOCK_STALE_MS) {
      await fsp.unlink(lockPath).catch(() => undefined);
      continue;
    }
    if (Date.now() > deadline) throw new Error(`Timed out waiting for lock ${lockPath}`);
    await sleep(5 + Math.random() * 10);
  }
  try {
    return await fn();
  } finally {
    await fsp.unlink(lockPath).catch(() => undefined);
  }
}

/** kombu _queue_bind: insert the triple at the front unless an equal one is already there. */
export async function bindQueue(controlFolder: string, exchange: string, triple: BindingTriple): Promise<void> {
  const file = exchangeFilePath(controlFolder, exchange);
  await fsp.mkdir(controlFolder, { recursive: true });
  // Hidden names: kombu only ever opens '<exchange>.exchange' by name, never lists the folder.
  const lock = path.join(controlFolder, `.${exchange}.exchange.celeriac-lock`);
  await withLock(lock, async () => {
    const table = await readExchangeTable(controlFolder, exchange);
    if (table.some((t) => t[0] === triple[0] && t[1] === triple[1] && t[2] === triple[2])) return;
    const tmp = path.join(controlFolder, `.${exchange}.exchange.${randomUUID()}.tmp`);
    await fsp.writeFile(tmp, JSON.stringify([triple, ...table]));
    await fsp.rename(tmp, file);
  });
}

/** kombu.utils.text.escape_regex: backslash every character that is not alphanumeric or whitelisted. */
function escapeRegex(text: string, white: string): string {
  return Array.from(text)
    .map((c) => (/[\p{L}\p{N}]/u.test(c) || white.includes(c) ? c : c === '\0' ? '\\000' : `\\${c}`))
    .join('');
}

/** TopicExchange.key_to_pattern: '*' is one word, '#' any run of words. */
export function topicPattern(routingKey: string): string {
  const words = escapeRegex(routingKey, '.#*')
    .split('.')
    .map((w) => (w === '*' ? '[^\\.]+' : w === '#' ? '.*?' : w));
  return `^${words.join('\\.')}$`;
}

/** The triple kombu's prepare_bind produces for this exchange type (pattern only for topic). */
export function bindingTriple(kind: ExchangeKind, routingKey: string, queue: string): BindingTriple {
  return [routingKey, kind === 'topic' ? topicPattern(routingKey) : '', queue];
}

const patternCache = new Map<string, RegExp | null>();

function compiled(pattern: string): RegExp | null {
  let re = patternCache.get(pattern);
  if (re === undefined) {
    try {
      // No 'u' flag: kombu's escapes ('\-', '\_') are identity escapes only in legacy mode.
      re = new RegExp(pattern);
    } catch {
      re = null;
    }
    patternCache.set(pattern, re);
  }
  return re;
}

/** ExchangeType.lookup for each kind, deduplicated like kombu's set comprehension. */
export function routeQueues(kind: ExchangeKind, table: BindingTriple[], routingKey: string): string[] {
  const hits = table.filter(([key, pattern]) => {
    if (kind === 'fanout') return true;
    if (kind === 'topic') return compiled(pattern)?.test(routingKey) ?? false;
    return key === routingKey;
  });
  return [...new Set(hits.map((t) => t[2]).filter((q) => q !== ''))];
}
