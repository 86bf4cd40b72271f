/**
 * Node TLS options from Celery's TLS settings, wherever they come from: rediss:// query
 * parameters (ssl_cert_reqs, ssl_ca_certs, ssl_certfile, ssl_keyfile), amqps:// query parameters
 * (same names), and the broker_use_ssl / redis_backend_use_ssl config objects (the same keys, or
 * py-amqp's cert_reqs, ca_certs, certfile, keyfile). Only "none" turns verification off;
 * "optional" verifies like "required" (a server always presents a certificate).
 */
import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';

const CERT_REQS: Record<string, boolean> = {
  none: false, cert_none: false, '0': false,
  optional: true, cert_optional: true, '1': true,
  required: true, cert_required: true, '2': true,
};
const FILES = { ca: 'ca_certs', cert: 'certfile', key: 'keyfile' } as const;

/** A setting by its Celery name with or without the `ssl_` prefix. */
function setting(settings: Record<string, unknown>, name: string): unknown {
  return settings[`ssl_${name}`] ?? settings[name];
}

/** `where` names the URL or config key in error messages (already masked by the caller). */
export function tlsOptions(settings: Record<string, unknown>, where: string): ConnectionOptions {
  const reqs = setting(settings, 'cert_reqs');
  const verify = reqs === undefined || reqs === null ? true : CERT_REQS[String(reqs).toLowerCase()];
  if (verify === undefined) {
    throw new Error(`${where}: ssl_cert_reqs must be none, optional or required (or CERT_NONE, CERT_OPTIONAL, CERT_REQUIRED), got ${JSON.stringify(reqs)}`);
  }
  const tls: ConnectionOptions = verify ? {} : { rejectUnauthorized: false };
  for (const [option, name] of Object.entries(FILES)) {
    const file = setting(settings, name);
    if (typeof file !== 'string' || !file) continue;
    try {
      tls[option as keyof typeof FILES] = readFileSync(file);
    } catch (err) {
      throw new Error(`${where}: cannot read ssl_${name} ${file}: ${(err as Error).message}`, { cause: err });
    }
  }
  return tls;
}
