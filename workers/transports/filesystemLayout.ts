/**
 * On-disk naming shared with kombu's filesystem transport (kombu/transport/filesystem.py), plus the
 * Celeriac-only bookkeeping area that kombu never looks at.
 *
 * kombu layout (interop contract):
 *   <data_folder_out>/<ms>_<uuid4>.<queue>.msg   one JSON virtual envelope per file, written by _put;
 *                                                <ms> = int(round(time.monotonic() * 1000))
 *   <data_folder_in>/...                         read by _get: sorted(os.listdir()), a file belongs to
 *                                                `queue` iff name.partition('.')[2] == f'{queue}.msg'
 *   <control_folder>/<exchange>.exchange         JSON list of [routing_key, pattern, queue] bindings
 *
 * Celeriac area: everything under `<folder>/.celeriac/`. kombu's filter sees the single entry
 * ".celeriac", whose text after the first dot ("celeriac") never equals "<queue>.msg", so kombu's
 * _get/_size/_purge skip it and nothing in it is ever consumed or counted by Python.
 */
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';

export const CELERIAC_DIR = '.celeriac';
/** Messages claimed (delivered, not yet acked) by one consumer: claims/<owner>/<message file>. */
export const CLAIMS_DIR = 'claims';
/** Files that are not valid envelopes, moved aside with a `<name>.reason` note next to them. */
export const BAD_DIR = 'bad';
/** Publish staging (same filesystem as the target, so the final rename is atomic). */
export const TMP_DIR = 'tmp';

const MSG_SUFFIX = '.msg';

export function celeriacPath(folder: string, ...parts: string[]): string {
  return path.join(folder, CELERIAC_DIR, ...parts);
}

/**
 * Milliseconds on the clock Python's time.monotonic() reads (CLOCK_MONOTONIC on Linux, which is
 * also what process.hrtime uses), so names from both languages interleave in publish order.
 */
function monotonicMs(): number {
  return Number(process.hrtime.bigint() / 1_000_000n);
}

let lastStamp = 0;

/**
 * Strictly increasing per process: kombu breaks same-millisecond ties by a random uuid, which
 * would reorder a burst from one producer. Bumping by 1 ms keeps our own bursts FIFO; the drift is
 * at most the burst length and disappears as soon as the clock catches up.
 */
export function nextStamp(): number {
  const now = monotonicMs();
  lastStamp = now > lastStamp ? now : lastStamp + 1;
  return lastStamp;
}

/** kombu's Channel._put file name: '{ms}_{uuid4}.{queue}.msg'. */
export function messageFileName(queue: string, stamp: number = nextStamp()): string {
  return `${stamp}_${randomUUID()}.${queue}${MSG_SUFFIX}`;
}

/** The queue a file belongs to by kombu's rule (text after the first dot, minus '.msg'), or null. */
export function queueOfFileName(name: string): string | null {
  const dot = name.indexOf('.');
  if (dot < 0) return null;
  const rest = name.slice(dot + 1);
  if (!rest.endsWith(MSG_SUFFIX)) return null;
  return rest.slice(0, -MSG_SUFFIX.length);
}

function leadingDigits(name: string): number {
  let i = 0;
  while (i < name.length && name.charCodeAt(i) >= 48 && name.charCodeAt(i) <= 57) i += 1;
  return i;
}

/**
 * kombu consumes in sorted(os.listdir()) order. For stamps of equal length that is exactly this
 * order; a longer stamp (the monotonic clock gained a digit) sorts after a shorter one here
 * instead of before it, which is the FIFO order kombu intends.
 */
export function compareMessageNames(a: string, b: string): number {
  const da = leadingDigits(a);
  const db = leadingDigits(b);
  if (da !== db && da > 0 && db > 0) return da - db;
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Queue names end up inside file names; refuse what would escape the folder or break the rule. */
export function assertValidQueueName(queue: string): void {
  if (typeof queue !== 'string' || queue.length === 0 || /[/\\\0]/.test(queue)) {
    throw new Error(`Invalid queue name for the filesystem transport: ${JSON.stringify(queue)}`);
  }
}

/** kombu's EXCHANGE_NAME_RE plus its all-dots and Windows device-name rejections. */
const EXCHANGE_NAME_RE = /^[A-Za-z0-9._-]+$/;
const WIN_RESERVED = new Set([
  'CON', 'PRN', 'AUX', 'NUL', 'CONIN$', 'CONOUT$',
  ...'123456789\u00b9\u00b2\u00b3'.split('').flatMap((c) => [`COM${c}`, `LPT${c}`]),
]);

export function isValidExchangeName(exchange: string): boolean {
  if (exchange === '') return true;
  if (!EXCHANGE_NAME_RE.test(exchange)) return false;
  if (/^\.+$/.test(exchange)) return false;
  return !WIN_RESERVED.has(exchange.split('.')[0].toUpperCase());
}

export function exchangeFilePath(controlFolder: string, exchange: string): string {
  if (!isValidExchangeName(exchange)) {
    throw new Error(`Invalid exchange name: ${JSON.stringify(exchange)}`);
  }
  return path.join(controlFolder, `${exchange}.exchange`);
}

/** Who owns a claim folder: pid and host let another worker tell a dead owner from a busy one. */
export interface ClaimOwner {
  pid: number;
  host: string;
  id: string;
}

function safeHost(host: string): string {
  return host.replace(/[^A-Za-z0-9.-]/g, '_') || 'unknown';
}

/** '<pid>@<host>@<id>': '@' cannot occur in the sanitized host, so parsing is unambiguous. */
export function claimFolderName(owner: ClaimOwner): string {
  return `${owner.pid}@${safeHost(owner.host)}@${owner.id}`;
}

export function parseClaimFolderName(name: string): ClaimOwner | null {
  const parts = name.split('@');
  if (parts.length !== 3 || !/^\d+$/.test(parts[0])) return null;
  return { pid: Number(parts[0]), host: parts[1], id: parts[2] };
}

export function localHost(): string {
  return safeHost(os.hostname());
}
