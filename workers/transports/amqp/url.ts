/**
 * kombu/py-amqp style AMQP URLs -> amqplib connect options. kombu reads the path as the vhost:
 * `amqp://h//` and `amqp://h/` and `amqp://h` all mean vhost '/', `amqp://h/prod` means 'prod'.
 * amqps:// takes Celery's ssl query params (ssl_cert_reqs, ssl_ca_certs, ssl_certfile, ssl_keyfile).
 */
import { readFileSync } from 'node:fs';
import type { Options, SocketOptions } from 'amqplib';

export interface AmqpTarget {
  connect: Options.Connect;
  socket: SocketOptions;
}

export function amqpTargetFromUrl(url: string, heartbeatSeconds = 60): AmqpTarget {
  const u = new URL(url.replace(/^pyamqp:/, 'amqp:'));
  const tls = u.protocol === 'amqps:';
  const rawVhost = u.pathname.slice(1);
  const vhost = rawVhost === '' ? '/' : decodeURIComponent(rawVhost);
  const connect: Options.Connect = {
    protocol: tls ? 'amqps' : 'amqp',
    hostname: u.hostname || 'localhost',
    port: u.port ? Number(u.port) : tls ? 5671 : 5672,
    username: u.username ? decodeURIComponent(u.username) : 'guest',
    password: u.password ? decodeURIComponent(u.password) : 'guest',
    vhost,
    heartbeat: heartbeatSeconds,
  };
  const socket: SocketOptions = { noDelay: true };
  if (tls) {
    const q = u.searchParams;
    const reqs = (q.get('ssl_cert_reqs') ?? 'required').toLowerCase();
    socket.rejectUnauthorized = !/none/.test(reqs);
    const ca = q.get('ssl_ca_certs');
    if (ca) socket.ca = [readFileSync(ca)];
    const cert = q.get('ssl_certfile');
    if (cert) socket.cert = readFileSync(cert);
    const key = q.get('ssl_keyfile');
    if (key) socket.key = readFileSync(key);
    socket.servername = connect.hostname;
  }
  return { connect, socket };
}
