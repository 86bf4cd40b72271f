/**
 * Task.replace (celery/app/task.py): the running task hands its id, its callbacks and errbacks,
 * its chord membership and the rest of its chain to a new signature, then ends without a result.
 */
import './maps'; // registers every signature kind for fromDict
import { randomUUID } from 'node:crypto';
import { PythonError, Replace } from '../app/errors';
import type { TaskRequest } from '../protocol/message';
import { numberOrNull } from '../protocol/number';
import { AsyncResult } from '../producer/asyncResult';
import { GroupResult } from '../producer/groupResult';
import { Signature, maybeSignature, signature } from './signature';
import { pipe } from './chain';
import { isChain, isGroup } from './kinds';
import type { CanvasHost, SignatureDict } from './types';

/** Freezing here only fixes ids: nothing is sent from inside the task. */
function freezingHost(replyTo: string): CanvasHost {
  return {
    oid: replyTo,
    uuid: () => randomUUID(),
    send: () => Promise.reject(new Error('replace() sends after the task returns')),
    result: (id) => new AsyncResult(id, null),
    groupResult: (id, results) => new GroupResult(id, results),
    chords: { ensureAllowed: () => undefined, setChordSize: async () => undefined, applyChord: async () => undefined },
    parent: null,
  };
}

export function replacement(request: TaskRequest, input: Signature | SignatureDict): Replace {
  let sig = maybeSignature(input, true);
  if ('chord' in sig.options) throw new PythonError('ImproperlyConfigured', 'A signature replacing a task must not be part of a chord', 'celery.exceptions');
  if (isChain(sig) && !sig.tasks.length) throw new PythonError('ImproperlyConfigured', 'Cannot replace with an empty chain', 'celery.exceptions');
  const accumulate = (): Signature => signature('celery.accumulate', [], { index: 0 });
  // A group's results are gathered into one (a chord with celery.accumulate) so links still apply.
  if (isGroup(sig)) sig = pipe(sig, accumulate());
  if (isChain(sig) && isGroup(sig.tasks[sig.tasks.length - 1])) {
    sig.tasks = [...sig.tasks.slice(0, -1), pipe(sig.tasks[sig.tasks.length - 1]!, accumulate())];
  }
  for (const cb of request.embed.callbacks ?? []) sig.link(maybeSignature(cb));
  for (const eb of request.embed.errbacks ?? []) sig.linkError(maybeSignature(eb));
  if (isChain(sig) && 'link' in sig.options) {
    // The callbacks belong after the chain's last task, not on the chain (they would run twice).
    sig.tasks[sig.tasks.length - 1]!.extendListOption('link', sig.options.link);
    delete sig.options.link;
  }
  // The replacement takes this task's id, so results already handed out stay valid. Its reply_to
  // is this task's caller's (Celery uses the worker's own, which no rpc:// caller reads).
  sig.freeze(freezingHost(request.replyTo ?? randomUUID()), { id: request.id });
  const nesting = (numberOrNull(request.headers.replaced_task_nesting) ?? 0) + 1;
  sig.set({ chord: request.embed.chord, group_id: request.group, group_index: request.groupIndex, root_id: request.rootId, replaced_task_nesting: nesting });
  if (isChain(sig)) for (const t of sig.tasks) t.set({ replaced_task_nesting: nesting });
  for (const t of [...(request.embed.chain ?? [])].reverse()) {
    const step = maybeSignature(t).set({ replaced_task_nesting: nesting });
    sig = pipe(sig, step);
  }
  return new Replace(sig.toDict());
}

