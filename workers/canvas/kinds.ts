/** Type guards for the kinds of signature, by subtask_type (as Celery's from_dict dispatches). */
import type { Signature } from './signature';
import type { Chain } from './chain';
import type { Group } from './group';
import type { Chord } from './chord';

export function isChain(s: unknown): s is Chain {
  return (s as Signature | null)?.subtaskType === 'chain' && 'tasks' in (s as object);
}

export function isGroup(s: unknown): s is Group {
  return (s as Signature | null)?.subtaskType === 'group' && 'tasks' in (s as object);
}

export function isChord(s: unknown): s is Chord {
  return (s as Signature | null)?.subtaskType === 'chord' && 'body' in (s as object);
}

/** A group of one task behaves as that task (Celery's maybe_unroll_group). */
export function maybeUnrollGroup(s: Signature): Signature {
  return isGroup(s) && s.tasks.length === 1 ? s.tasks[0]! : s;
}

export function isEmptyGroup(s: unknown): boolean {
  return isGroup(s) && s.tasks.length === 0;
}

/** A chain whose first step is not a group: a chord may hand it its tail (see Chord.unrollBody). */
export function isChainLedByTask(body: unknown): boolean {
  return isChain(body) && body.tasks.length > 0 && !isGroup(body.tasks[0]);
}
