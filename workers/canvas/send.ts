/**
 * From Celery's apply_async options (as a signature carries them) to one published message:
 * links become the embed's callbacks/errbacks, `chain`/`chord` go in the embed, group_id and
 * group_index become the group headers, routing follows queue, then task routes (by route_name,
 * which celery.map/starmap/chunks set to the inner task's name), then the default queue.
 */
import type { Celeriac, SendOptions } from '../app/app';
import { argsRepr, pyRepr } from '../protocol/repr';
import { listOption, serialize } from './signature';
import type { ParentTask, SigOptions } from './types';

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}

function num(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

/** null when empty, as Celery's maybe_list(None) leaves the embed's callbacks/errbacks. */
function linkList(v: unknown): unknown[] | null {
  const list = listOption(v);
  return list.length ? (serialize(list) as unknown[]) : null;
}

/**
 * Arguments as they go into the body (signatures as dicts, whatever the serializer) and their
 * repr headers, made from the signatures themselves so they print as Python prints them.
 */
export function messageArgs(args: readonly unknown[], kwargs: Record<string, unknown>): { args: unknown[]; kwargs: Record<string, unknown>; headers: Record<string, string> } {
  return {
    args: serialize(args) as unknown[],
    kwargs: serialize(kwargs) as Record<string, unknown>,
    headers: { argsrepr: argsRepr(args), kwargsrepr: pyRepr(kwargs) },
  };
}

export function sendOptionsFor(app: Celeriac, name: string, options: SigOptions, fallbackReplyTo: string, parent: ParentTask | null): SendOptions {
  const def = app.tasks.get(name);
  const routeName = str(options.route_name) ?? name;
  const route = app.routeFor(routeName, str(options.queue) ?? def?.options.queue);
  // A task sent from a running task inherits its root and has it as parent (Celery's send_task).
  const rootId = str(options.root_id) ?? (parent ? (parent.rootId ?? parent.id) : undefined);
  const parentId = str(options.parent_id) ?? parent?.id;
  const timeLimit = options.time_limit ?? null;
  const softTimeLimit = options.soft_time_limit ?? null;
  const chain = options.chain;
  return {
    id: str(options.task_id),
    countdown: num(options.countdown),
    eta: (options.eta as Date | string | undefined) ?? null,
    expires: (options.expires as Date | string | number | undefined) ?? null,
    retries: num(options.retries) ?? 0,
    priority: num(options.priority) ?? route.priority,
    rootId,
    parentId,
    group: str(options.group_id) ?? null,
    groupIndex: num(options.group_index) ?? null,
    // The timelimit header is [hard, soft], as Celery's as_task_v2 writes it.
    timeLimit: [num(timeLimit ?? def?.options.time_limit) ?? null, num(softTimeLimit ?? def?.options.soft_time_limit) ?? null],
    // A registered task's own options apply, as Celery applies its exec options.
    ignoreResult: (options.ignore_result ?? def?.options.ignore_result) === true,
    shadow: str(options.shadow) ?? null,
    replyTo: str(options.reply_to) ?? fallbackReplyTo,
    queue: route.queue,
    exchange: str(options.exchange),
    routingKey: str(options.routing_key),
    embed: {
      callbacks: linkList(options.link),
      errbacks: linkList(options.link_error),
      chain: chain === undefined || chain === null ? null : (serialize(chain) as unknown[]),
      chord: options.chord === undefined || options.chord === null ? null : serialize(options.chord),
    },
    headers: { replaced_task_nesting: num(options.replaced_task_nesting) ?? 0 },
  };
}
