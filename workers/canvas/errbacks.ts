/**
 * After a failure (celery/backends/base.py mark_as_failure and friends): errbacks, old style
 * (sent as tasks with the failed task's id) or new style (called here with request, exception,
 * traceback); the rest of a chain failed with the same error; a failed chord's body failed with
 * a ChordError and its errbacks called.
 */
import './maps'; // registers every signature kind for fromDict
import { createContext } from '../worker/context';
import { bindArguments } from '../app/task';
import { ChordError } from '../app/errors';
import type { TaskRequest } from '../protocol/message';
import { pyRepr } from '../protocol/repr';
import { serializeException } from '../backends/meta';
import { Signature, listOption, maybeSignature } from './signature';
import { Group } from './group';
import { isGroup } from './kinds';
import type { CanvasEnv } from './env';
import type { ParentTask, SignatureDict } from './types';

/** What a new-style errback receives as `request` (the failed task's request, as Celery's Context). */
export interface ErrbackRequest {
  id: string;
  task: string;
  args: unknown[];
  kwargs: Record<string, unknown>;
  root_id: string | null;
  parent_id: string | null;
  group: string | null;
  group_index: number | null;
  errbacks: unknown[];
  hostname: string | null;
}

export function errbackRequest(r: TaskRequest, hostname: string | null): ErrbackRequest {
  return {
    id: r.id,
    task: r.task,
    args: r.args,
    kwargs: r.kwargs,
    root_id: r.rootId,
    parent_id: r.parentId,
    group: r.group,
    group_index: r.groupIndex,
    errbacks: r.embed.errbacks ?? [],
    hostname,
  };
}

/** repr() of an exception as Python prints it: ValueError('boom'). */
export function excRepr(exc: unknown): string {
  const s = serializeException(exc);
  return `${s.exc_type}(${s.exc_message.map((m) => pyRepr(m)).join(', ')})`;
}

/** A request for a task this worker did not receive (a chord body failed on its behalf). */
function requestFor(req: ErrbackRequest): TaskRequest {
  return {
    protocol: 2, id: req.id, task: req.task, args: req.args, kwargs: req.kwargs,
    embed: { callbacks: null, errbacks: req.errbacks, chain: null, chord: null },
    retries: 0, eta: null, expires: null, etaIso: null, expiresIso: null, rootId: req.root_id, parentId: req.parent_id, group: req.group, groupIndex: req.group_index,
    timeLimit: [null, null], argsrepr: pyRepr(req.args), kwargsrepr: pyRepr(req.kwargs), origin: null, ignoreResult: false,
    shadow: null, replyTo: null, correlationId: req.id, headers: {}, properties: {},
  };
}

/** Run a new-style errback here, as Celery calls it in the failing task's worker. */
async function callInline(env: CanvasEnv, sig: Signature, req: ErrbackRequest, exc: unknown, traceback: string | null): Promise<void> {
  const def = env.app.tasks.get(sig.task)!;
  const [args, kwargs] = sig.merge([req, exc, traceback], {});
  const ctx = createContext({
    request: requestFor(req),
    options: def.options,
    hostname: env.hostname,
    deliveryInfo: { exchange: '', routing_key: '', priority: 0, redelivered: false },
    signal: () => new AbortController().signal,
    updateState: async () => undefined,
    canvasHost: async () => env.host({ id: req.id, rootId: req.root_id ?? req.id, children: [] }),
  });
  await def.fn.apply(ctx, bindArguments(def, args, kwargs));
}

/**
 * Celery's _call_task_errbacks: an errback task registered here with errback_signature 'new' is
 * called now with (request, exc, traceback); every other one (unknown here, or old style) is sent
 * as a task with the failed task's id as its argument.
 */
export async function callErrbacks(env: CanvasEnv, req: ErrbackRequest, exc: unknown, traceback: string | null, parent: ParentTask | null): Promise<void> {
  const oldStyle: Signature[] = [];
  for (const eb of req.errbacks) {
    const sig = maybeSignature(eb);
    const def = env.app.tasks.get(sig.task);
    if (def && env.app.taskOptions(def).errback_signature === 'new') {
      try {
        await callInline(env, sig, req, exc, traceback);
      } catch (err) {
        env.log.error(`Errback ${sig.task} raised an exception: ${excRepr(err)}`);
      }
    } else {
      oldStyle.push(sig);
    }
  }
  if (!oldStyle.length) return;
  await new Group(oldStyle).applyVia(env.host(parent), [req.id], {}, { parent_id: req.id, root_id: req.root_id ?? req.id });
}

/**
 * Celery's _fail_chain: every later step of a failed chain stores the same failure (so the
 * chain's result fails), and a step that ends a chord header reports to that chord.
 */
export async function failChain(env: CanvasEnv, chain: unknown, exc: unknown, traceback: string | null, partReturn: (r: ChordMember, state: string, exc: unknown) => Promise<void>): Promise<void> {
  const pending = [...listOption(chain)];
  while (pending.length) {
    const elem = pending.shift() as SignatureDict;
    const options = (elem.options ?? {}) as Record<string, unknown>;
    const id = typeof options.task_id === 'string' ? options.task_id : null;
    const group = typeof options.group_id === 'string' ? options.group_id : null;
    const inChord = 'chord' in options;
    let alreadyFailed = false;
    if (inChord && id && env.backend) {
      const state = (await env.backend.get(id))?.status;
      alreadyFailed = state === 'FAILURE' || state === 'REVOKED';
    }
    if (id) await env.storeFailure(id, exc, traceback, { group, parentId: (options.parent_id as string | undefined) ?? null, replyTo: (options.reply_to as string | undefined) ?? null });
    if (inChord && !alreadyFailed && id) {
      await partReturn({ id, group, groupIndex: typeof options.group_index === 'number' ? options.group_index : null, chord: options.chord }, 'FAILURE', exc);
    }
    if (elem.subtask_type === 'chord') {
      const body = (elem.kwargs as Record<string, unknown> | undefined)?.body;
      if (body) pending.push(body);
    }
  }
}

/** What chord bookkeeping needs from a header member. */
export interface ChordMember {
  id: string;
  group: string | null;
  groupIndex: number | null;
  chord: unknown;
}

/**
 * Celery's chord_error_from_stack: the chord's body fails with `exc` (a ChordError), its errbacks
 * are called; a group body fails member by member with the original error.
 */
export async function chordErrorFromStack(env: CanvasEnv, callbackIn: unknown, exc: ChordError, parent: ParentTask | null, partReturn: (r: ChordMember, state: string, exc: unknown) => Promise<void>): Promise<void> {
  const callback = maybeSignature(callbackIn);
  if (isGroup(callback)) {
    await groupChordError(env, callback, exc, parent);
    await failChain(env, callback.options.chain, exc, null, partReturn);
    return;
  }
  const id = callback.id || (callback.options.task_id = env.host().uuid());
  const req: ErrbackRequest = {
    id, task: callback.task, args: callback.args, kwargs: callback.kwargs, root_id: null, parent_id: null, group: null, group_index: null,
    errbacks: listOption(callback.options.link_error), hostname: env.hostname,
  };
  try {
    await callErrbacks(env, req, exc, null, parent);
  } finally {
    await env.storeFailure(id, exc, null, { replyTo: (callback.options.reply_to as string | undefined) ?? null, children: childrenOf(parent) });
  }
  await failChain(env, callback.options.chain, exc, null, partReturn);
}

/**
 * What Celery stores as `children` of a result it fails on another task's behalf: the running
 * task's request.children (backend.current_task_children()), which by then hold the errback
 * group just sent, so a caller can follow body.children[0].children[0] to the errback's result.
 */
function childrenOf(parent: ParentTask | null): unknown[] {
  return parent ? parent.children.map((r) => r.asTuple()) : [];
}

/** A chord whose body is a group: each member fails with the header's own error, with its errbacks. */
async function groupChordError(env: CanvasEnv, body: Group, exc: ChordError, parent: ParentTask | null): Promise<void> {
  const original = exc.original ?? exc;
  const host = env.host(parent);
  const groupErrbacks = listOption(body.options.link_error);
  const frozen = body.freeze(host);
  for (let i = 0; i < frozen.results.length; i++) {
    const member = frozen.results[i]!;
    const task = body.tasks[i];
    const errbacks = [...listOption(task?.options.link_error), ...groupErrbacks];
    const req: ErrbackRequest = { id: member.id, task: task?.task ?? 'unknown', args: [], kwargs: {}, root_id: null, parent_id: null, group: null, group_index: null, errbacks, hostname: env.hostname };
    try {
      await callErrbacks(env, req, original, null, parent);
    } catch {
      // Celery goes on with the other members whatever an errback does.
    }
    await env.storeFailure(member.id, original, null, { children: childrenOf(parent) });
  }
  if (frozen.id) await env.storeFailure(frozen.id, original, null, { children: childrenOf(parent) });
}
