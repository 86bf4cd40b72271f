/**
 * rq stores a failure as Python's traceback text (traceback.format_exception): readers such as
 * rq-dashboard show it, and tools take its last line as "<type>: <message>". Celeriac writes the
 * JavaScript stack in that shape, the error's Python-style name on the last line.
 */
import { deflateSync } from 'node:zlib';
import { PythonError, TimeLimitExceeded } from '../index';

function typeName(err: Error): string {
  if (err instanceof TimeLimitExceeded) return 'rq.timeouts.JobTimeoutException';
  if (err instanceof PythonError && err.pyModule && err.pyModule !== 'builtins') return `${err.pyModule}.${err.pyType}`;
  return err.name || 'Error';
}

export function excString(err: unknown): string {
  if (!(err instanceof Error)) return `Traceback (most recent call last):\nException: ${String(err)}\n`;
  const message = err instanceof TimeLimitExceeded ? `Task exceeded maximum timeout value (${err.message.replace(/\D+/g, '') || '?'} seconds)` : err.message;
  const frames = (err.stack ?? '')
    .split('\n')
    .filter((line) => /^\s+at /.test(line))
    .map((line) => `  ${line.trim()}`);
  return `Traceback (most recent call last):\n${frames.join('\n')}${frames.length ? '\n' : ''}${typeName(err)}: ${message}\n`;
}

/** What finish.lua stores as the Result's exc_string: base64 of zlib, as rq's Result.serialize. */
export function excPayload(text: string): string {
  return deflateSync(Buffer.from(text, 'utf8')).toString('base64');
}
