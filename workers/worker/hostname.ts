/** Node names as Celery's celery.utils.nodenames: name@host, with %h %n %d %i %I expansion. */
import { hostname as osHostname } from 'node:os';

export interface NodeNameParts {
  hostname?: string;
  /** Pool process index for %i / %I (0 in the main process). */
  index?: number;
}

/** Expand %h (full host), %n (host without domain), %d (domain), %i / %I (process index), %% . */
export function expandNodeName(template: string, parts: NodeNameParts = {}): string {
  const host = parts.hostname ?? osHostname();
  const dot = host.indexOf('.');
  const short = dot < 0 ? host : host.slice(0, dot);
  const domain = dot < 0 ? '' : host.slice(dot + 1);
  const index = parts.index ?? 0;
  return template.replace(/%([hndiI%])/g, (_m, c: string) => {
    switch (c) {
      case 'h':
        return host;
      case 'n':
        return short;
      case 'd':
        return domain;
      case 'i':
        return String(index);
      case 'I':
        return index ? `-${index}` : '';
      default:
        return '%';
    }
  });
}

/** Celery's default_nodename: a bare name gets 'celery@', a name without host gets this host. */
export function nodeName(template: string, parts: NodeNameParts = {}): string {
  const expanded = expandNodeName(template, parts);
  if (!expanded.includes('@')) return `celery@${expanded || expandNodeName('%h', parts)}`;
  const [name, host] = [expanded.slice(0, expanded.indexOf('@')), expanded.slice(expanded.indexOf('@') + 1)];
  return `${name || 'celery'}@${host || expandNodeName('%h', parts)}`;
}
