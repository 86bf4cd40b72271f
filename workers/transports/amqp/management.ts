/**
 * Unacked counts from RabbitMQ's management HTTP API, which AMQP itself does not give (queue.declare
 * passive answers ready messages and consumers only). Read as Flower reads it with `--broker_api`
 * (flower/utils/broker.py): the queue's vhost comes from the broker URL, and the user and password
 * from the API URL, else from the broker URL. Differences: one queue is asked for
 * (`GET <api>/queues/<vhost>/<name>`, not the vhost's whole list), the vhost is always
 * percent-encoded ('/' as %2F: Flower sends `queues//`, which the API answers with the queues of
 * every vhost), and an API URL without a trailing slash still ends in `/api/`.
 * The numbers are the management plugin's samples (every collect_statistics_interval, 5 s by
 * default), so they trail the queue by a few seconds.
 */
import type { MissingCount } from '../transport';
import { maskUrl } from '../../log/mask';
import { amqpTargetFromUrl } from './url';

/** Flower gives the API 1 s to connect and 2 s to answer; one bound for both here. */
const REQUEST_TIMEOUT_MS = 5_000;

export const NO_BROKER_API: MissingCount = {
  scope: 'broker',
  reason: "unacked needs RabbitMQ's management API: set broker_api (env CELERIAC_BROKER_API), e.g. http://guest:guest@localhost:15672/api/",
};

interface ApiRequest {
  /** Without credentials (fetch refuses a URL that carries them). */
  url: string;
  authorization: string;
  /** For messages: the URL as configured (password masked), with the queue's path. */
  shown: string;
}

/** The request for `queue` on the vhost of `brokerUrl`. */
export function managementRequest(brokerApi: string, brokerUrl: string, queue: string): ApiRequest {
  const broker = amqpTargetFromUrl(brokerUrl).connect;
  const api = new URL(brokerApi.trim());
  if (!api.pathname.endsWith('/')) api.pathname += '/';
  const user = api.username ? decodeURIComponent(api.username) : (broker.username ?? 'guest');
  const password = api.password ? decodeURIComponent(api.password) : (broker.password ?? 'guest');
  const path = `queues/${encodeURIComponent(broker.vhost ?? '/')}/${encodeURIComponent(queue)}`;
  const shown = maskUrl(new URL(path, api).toString());
  api.username = '';
  api.password = '';
  return { url: new URL(path, api).toString(), authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`, shown };
}

/** RabbitMQ's error body: {"error": "not_authorized", "reason": "Login failed"}. */
async function errorText(res: Response): Promise<string> {
  try {
    const body = (await res.json()) as { error?: unknown; reason?: unknown };
    return [body.error, body.reason].filter((x) => typeof x === 'string' && x !== '').join(': ');
  } catch {
    return '';
  }
}

function failure(req: ApiRequest, what: string): MissingCount {
  return { scope: 'queue', reason: `management API ${req.shown}: ${what}` };
}

/** Why fetch itself failed, in a few words (undici hides the socket error in `cause`). */
function fetchFailure(err: unknown): string {
  const e = err as Error & { cause?: { code?: string; message?: string } };
  if (e.name === 'TimeoutError' || e.name === 'AbortError') return `no answer within ${REQUEST_TIMEOUT_MS / 1000} s`;
  const cause = e.cause?.code ?? e.cause?.message;
  return `cannot reach it (${cause ?? e.message})`;
}

/** messages_unacknowledged of one queue, or why it cannot be had (never throws). */
export async function unackedFromApi(brokerApi: string, brokerUrl: string, queue: string): Promise<number | MissingCount> {
  let req: ApiRequest;
  try {
    req = managementRequest(brokerApi, brokerUrl, queue);
  } catch (err) {
    return { scope: 'broker', reason: `broker_api ${maskUrl(brokerApi)}: ${(err as Error).message}` };
  }
  let res: Response;
  try {
    res = await fetch(req.url, { headers: { authorization: req.authorization, accept: 'application/json' }, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
  } catch (err) {
    return failure(req, fetchFailure(err));
  }
  if (!res.ok) {
    const detail = await errorText(res);
    const hint = res.status === 401 ? ' (check the user and password of broker_api)' : res.status === 404 ? ' (no such vhost or queue there, or not the management API)' : '';
    return failure(req, `${res.status} ${res.statusText}${detail ? ` (${detail})` : ''}${hint}`);
  }
  let body: { messages_unacknowledged?: unknown };
  try {
    body = (await res.json()) as { messages_unacknowledged?: unknown };
  } catch {
    return failure(req, 'answered something that is not JSON (not the management API?)');
  }
  // A queue the statistics collector has not sampled yet has no message counts at all.
  if (typeof body.messages_unacknowledged !== 'number') return failure(req, 'no statistics for this queue yet');
  return body.messages_unacknowledged;
}
