/**
 * What each result backend does when a chord is applied: Redis counts header results itself
 * (chord size key, see backends/redis/chord.ts); backends without that (file://) get a
 * celery.chord_unlock task that polls the header; rpc:// and no backend refuse chords, as Celery.
 */
import type { ResultBackend } from '../backends/backend';
import { RedisBackend } from '../backends/redis/redisBackend';
import { PythonError } from '../app/errors';
import type { ApplyChordOptions, CanvasHost, ChordBackend, ResultNode, SignatureDict } from './types';

class RedisChords implements ChordBackend {
  constructor(private readonly backend: RedisBackend) {}

  ensureAllowed(): void {}

  setChordSize(groupId: string, size: number): Promise<void> {
    return this.backend.chords().setSize(groupId, size);
  }

  addToChord(groupId: string): Promise<void> {
    return this.backend.chords().addToChord(groupId);
  }

  async applyChord(groupId: string, results: ResultNode[]): Promise<void> {
    // Only a header with groups in it needs its structure saved; flat headers use the result list.
    if (results.some((r) => 'results' in r)) await this.backend.chords().saveGroup(groupId, [[groupId, null], results.map((r) => r.asTuple())]);
  }
}

class UnlockChords implements ChordBackend {
  constructor(private readonly host: () => CanvasHost) {}

  ensureAllowed(): void {}

  async setChordSize(): Promise<void> {}

  async applyChord(groupId: string, results: ResultNode[], body: SignatureDict, opts: ApplyChordOptions): Promise<void> {
    const bodyOpts = body.options;
    const routing: Record<string, unknown> = {};
    for (const key of ['exchange', 'exchange_type', 'routing_key', 'headers']) if (bodyOpts[key] !== undefined && bodyOpts[key] !== null) routing[key] = bodyOpts[key];
    const kwargs: Record<string, unknown> = {
      interval: opts.interval,
      max_retries: opts.maxRetries,
      result: results.map((r) => r.asTuple()),
      // chord_unlock keeps it for its own retries (Celery passes the default queue's exchange type).
      _chord_unlock_exchange_type: routing.exchange_type ?? 'direct',
    };
    await this.host().send('celery.chord_unlock', [groupId, body], kwargs, {
      countdown: opts.countdown,
      queue: bodyOpts.queue ?? undefined,
      route_name: body.task,
      priority: bodyOpts.priority ?? 0,
      ...routing,
    });
  }
}

class NoChords implements ChordBackend {
  constructor(private readonly why: string) {}

  ensureAllowed(): void {
    throw new PythonError('NotImplementedError', this.why);
  }

  async setChordSize(): Promise<void> {
    this.ensureAllowed();
  }

  async applyChord(): Promise<void> {
    this.ensureAllowed();
  }
}

export function chordBackendFor(backend: ResultBackend | null, host: CanvasHost): ChordBackend {
  if (!backend) return new NoChords('chords need a result backend: none is configured');
  if (backend instanceof RedisBackend) return new RedisChords(backend);
  if (backend.kind === 'rpc') return new NoChords('the rpc:// result backend cannot run chords (results go to the caller only); use Redis');
  return new UnlockChords(() => host);
}
