/**
 * kombu/py-amqp style AMQP URLs -> amqplib connect options. kombu reads the path as the vhost:
 * `amqp://h//` and `amqp://h/` and `amqp://h` all mean vhost '/', `amqp://h/prod` means 'prod'.
 * amqps:// takes Celery's ssl query params (ssl_cert_reqs, ssl_ca_certs, ssl_certfile, ssl_keyfile).
 */
import { isIP } from 'node:net';
import type { Options, SocketOptions } from 'amqplib';
import { maskUrl } from '../../log/mask';
import { tlsOptions } from '../../tls';

export interface AmqpTarget {
  connect: Options.Connect;
  socket: SocketOptions;
}

/** `ssl`: Celery's broker_use_ssl, over the URL's query parameters. */
export function amqpTargetFromUrl(url: string, heartbeatSeconds = 60, ssl: Record<string, unknown> = {}): AmqpTarget {
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
    Object.assign(socket, tlsOptions({ ...Object.fromEntries(u.searchParams), ...ssl }, `amqp url ${maskUrl(url)}`));
    // SNI takes host names only (Node refuses an IP address there).
    if (!isIP(connect.hostname ?? '')) socket.servername = connect.hostname;
  }
  return { connect, socket };
}
