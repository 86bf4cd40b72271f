/**
 * Task.add_to_chord (celery/app/task.py): a task of a chord's header adds a signature (or a
 * canvas, e.g. group | task) to that chord. The signature gets the running task's group_id,
 * group_index, chord and root_id; the backend's chord size grows by one (Redis: INCR of the
 * group's `.t` key); then it is sent (lazy: returned unsent, to apply later) and the body waits
 * for it. Other backends have no add_to_chord: NotImplementedError, as in Celery.
 */
import './maps'; // registers every signature kind for fromDict
import { PythonError } from '../app/errors';
import type { TaskRequest } from '../protocol/message';
import { maybeSignature, type Signature } from './signature';
import type { CanvasHost, ResultNode, SignatureDict } from './types';

export async function addToChord(request: TaskRequest, host: CanvasHost, sigIn: Signature | SignatureDict, lazy: boolean): Promise<ResultNode | Signature> {
  const chord = request.embed.chord;
  if (!chord) throw new PythonError('ValueError', 'Current task is not member of any chord');
  if (!host.chords.addToChord) throw new PythonError('NotImplementedError', 'Backend does not support add_to_chord');
  const sig = maybeSignature(sigIn);
  sig.set({ group_id: request.group, group_index: request.groupIndex, chord, root_id: request.rootId });
  const result = sig.freeze(host);
  await host.chords.addToChord(request.group ?? '');
  if (lazy) return sig;
  await sig.applyVia(host);
  return result;
}
