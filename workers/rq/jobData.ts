/**
 * An rq job as this worker sees it: the job hash claim.lua returned, its zlib'd `data` decoded
 * with rq's JSONSerializer. Pickled data (rq's default serializer) is refused, never unpickled.
 */
import { inflateSync } from 'node:zlib';
import { DEFAULT_JOB_TIMEOUT } from './keys';

/** The job cannot be run here; the reason goes to the failed registry as its exc_info. */
export class RefusedJobError extends Error {
  override name = 'RefusedJobError';
}

export interface RqJob {
  id: string;
  queue: string;
  executionId: string;
  funcName: string;
  args: unknown[];
  kwargs: Record<string, unknown>;
  /** Seconds; null = no limit (rq's -1). */
  timeout: number | null;
  /** rq's heartbeat ttl for this job's execution (Worker.get_heartbeat_ttl). */
  heartbeatTtl: number;
}

export type JobFields = Map<string, Buffer>;

export function fieldsOf(flat: readonly Buffer[]): JobFields {
  const out: JobFields = new Map();
  for (let i = 0; i + 1 < flat.length; i += 2) out.set(flat[i]!.toString(), flat[i + 1]!);
  return out;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** (func_name, instance, args, kwargs) from `data`; throws RefusedJobError with the reason. */
export function decodeCall(data: Buffer | undefined): Pick<RqJob, 'funcName' | 'args' | 'kwargs'> {
  if (!data) throw new RefusedJobError('job hash has no `data` field');
  let raw: Buffer;
  try {
    raw = inflateSync(data);
  } catch {
    raw = data; // rq's restore() accepts uncompressed data too
  }
  // Pickle protocol 2+ starts with PROTO (0x80): rq's default PickleSerializer.
  if (raw[0] === 0x80) {
    throw new RefusedJobError(
      'job data is pickle-serialized (rq\'s default serializer); Celeriac runs only jobs enqueued with serializer=JSONSerializer and never unpickles',
    );
  }
  let call: unknown;
  try {
    call = JSON.parse(raw.toString('utf8'));
  } catch (err) {
    throw new RefusedJobError(`job data is not JSON (enqueue with serializer=JSONSerializer): ${(err as Error).message}`);
  }
  if (!Array.isArray(call) || call.length !== 4) throw new RefusedJobError('job data must be JSON [func_name, instance, args, kwargs]');
  const [funcName, instance, args, kwargs] = call as unknown[];
  if (typeof funcName !== 'string' || !funcName) throw new RefusedJobError('job data: func_name must be a non-empty string');
  if (instance !== null) throw new RefusedJobError(`job data: ${funcName} is a method of an instance; Celeriac runs functions by name only`);
  if (!Array.isArray(args)) throw new RefusedJobError('job data: args must be a list');
  if (!isRecord(kwargs)) throw new RefusedJobError('job data: kwargs must be an object');
  return { funcName, args, kwargs };
}

/** rq's job.timeout (or the queue default); -1 means none. */
export function timeoutOf(fields: JobFields): number | null {
  const raw = fields.get('timeout')?.toString();
  const t = raw ? Number(raw) : DEFAULT_JOB_TIMEOUT;
  if (!Number.isFinite(t)) return DEFAULT_JOB_TIMEOUT;
  return t === -1 ? null : t;
}
