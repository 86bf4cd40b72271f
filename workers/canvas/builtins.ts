/**
 * The tasks every Celery app has (celery/app/builtins.py), registered on every Celeriac app so a
 * Celery producer can send them to Celeriac: celery.ping, celery.backend_cleanup,
 * celery.accumulate (used by replace() with a group), celery.chord_unlock (chords on backends
 * without chord counters), celery.map / celery.starmap / celery.chunks, and the old
 * celery.group / celery.chain / celery.chord entry points.
 */
import type { Celeriac } from '../app/app';
import { bindArguments, type TaskContext } from '../app/task';
import { ChordError, NotRegistered, PythonError, Retry } from '../app/errors';
import { GroupResult, resultFromTuple } from '../producer/groupResult';
import { RemoteTaskError } from '../producer/asyncResult';
import { maybeSignature } from './signature';
import { Chord } from './chord';
import { Group } from './group';
import { Chunks } from './maps';
import { CanvasEnv } from './env';
import { ChordJoin } from './chordJoin';
import { chordErrorFromStack, excRepr } from './errbacks';
import type { AppCanvasHost } from './host';

/** result_chord_retry_interval: how often chord_unlock looks at the header again (seconds). */
const CHORD_RETRY_INTERVAL = 1;

async function envFor(app: Celeriac, ctx: TaskContext): Promise<{ env: CanvasEnv; host: AppCanvasHost }> {
  const env = new CanvasEnv(app, await app.backend(), ctx.hostname);
  return { env, host: env.host({ id: ctx.id, rootId: ctx.request.rootId ?? ctx.id, children: [] }) };
}

/** Call a registered task's function here, as Celery's `task(*args)` does inside map/starmap. */
async function callHere(app: Celeriac, ctx: TaskContext, name: string, args: unknown[]): Promise<unknown> {
  const def = app.tasks.get(name);
  if (!def) throw new NotRegistered(name);
  return def.fn.apply(ctx, bindArguments(def, args, {}));
}

function innerTaskName(task: unknown): string {
  return maybeSignature(task).task;
}

export function registerBuiltins(app: Celeriac): void {
  app.task('celery.ping', () => 'pong');

  app.task('celery.backend_cleanup', async function () {
    // Redis expires results itself; the file and mongodb backends delete what result_expires says is old.
    const backend = (await app.backend()) as { cleanup?: () => Promise<unknown> } | null;
    await backend?.cleanup?.();
    return null;
  });

  app.task('celery.accumulate', function (this: TaskContext, ..._args: unknown[]) {
    const index = this.kwargs.index;
    return typeof index === 'number' ? this.args[index] : [...this.args];
  });

  app.task(
    'celery.chord_unlock',
    async function (this: TaskContext) {
      const [groupId, callback] = this.args as [string, unknown];
      const interval = (this.kwargs.interval as number | null | undefined) ?? CHORD_RETRY_INTERVAL;
      const maxRetries = this.kwargs.max_retries as number | null | undefined;
      const results = (this.kwargs.result as unknown[] | undefined) ?? [];
      const { env, host } = await envFor(app, this);
      const deps = new GroupResult(groupId, results.map((t) => resultFromTuple(t, env.backend)));
      const parent = host.parent;
      const partReturn = new ChordJoin(env).partReturn;
      let ready = false;
      let readyError: unknown;
      try {
        ready = await deps.ready();
      } catch (err) {
        readyError = err;
      }
      if (!ready) {
        try {
          this.retry({ countdown: interval, max_retries: maxRetries ?? undefined, exc: readyError });
        } catch (err) {
          if (err instanceof Retry) throw err;
          // Out of retries: nothing will look at this chord again, so fail its body now.
          await chordErrorFromStack(env, callback, new ChordError(`chord_unlock could not be retried: ${excRepr(err)}`, err), parent, partReturn);
          throw err;
        }
      }
      let values: unknown;
      try {
        values = await deps.get({ timeout: 3 });
      } catch (err) {
        const culprit = err instanceof RemoteTaskError ? err.taskId : null;
        const reason = culprit ? `Dependency ${culprit} raised ${excRepr(err)}` : excRepr(err);
        env.log.error(`Chord '${groupId}' raised: ${reason}`);
        await chordErrorFromStack(env, callback, new ChordError(reason, err), parent, partReturn);
        return null;
      }
      try {
        await maybeSignature(callback).applyVia(host, [values]);
      } catch (err) {
        await chordErrorFromStack(env, callback, new ChordError(`Callback error: ${excRepr(err)}`, err), parent, partReturn);
      }
      return null;
    },
    { ignore_result: true, max_retries: null, default_retry_delay: CHORD_RETRY_INTERVAL },
  );

  const map = async function (this: TaskContext, task: unknown, it: unknown[]) {
    const name = innerTaskName(task);
    const out: unknown[] = [];
    for (const item of it) out.push(await callHere(app, this, name, [item]));
    return out;
  };
  // Celery's producers send map/starmap/chunks arguments as keyword arguments.
  app.task('celery.map', map, { params: ['task', 'it'] });
  // Not a Celery task name: an alias some producers use for celery.map.
  app.task('celery.xmap', map, { params: ['task', 'it'] });

  app.task('celery.starmap', async function (this: TaskContext, task: unknown, it: unknown[][]) {
    const name = innerTaskName(task);
    const out: unknown[] = [];
    for (const item of it) out.push(await callHere(app, this, name, [...item]));
    return out;
  }, { params: ['task', 'it'] });

  app.task('celery.chunks', async function (this: TaskContext, task: unknown, it: unknown[][], n: number) {
    const { host } = await envFor(app, this);
    const result = await new Chunks(maybeSignature(task), it, n).applyVia(host);
    return result.asTuple();
  }, { params: ['task', 'it', 'n'] });

  app.task(
    'celery.group',
    async function (this: TaskContext, tasks: unknown[], result: unknown, groupId: string, partialArgs: unknown[] = []) {
      const { host } = await envFor(app, this);
      for (const t of tasks) await maybeSignature(t).clone(partialArgs).applyVia(host, [], {}, { group_id: groupId, add_to_parent: false });
      return result;
    },
    { params: ['tasks', 'result', 'group_id', 'partial_args', 'add_to_parent'] },
  );

  app.task('celery.chain', () => {
    throw new PythonError('NotImplementedError', 'chain is not a real task');
  });

  app.task(
    'celery.chord',
    async function (this: TaskContext, header: unknown, body: unknown, partialArgs: unknown[] = []) {
      const { host } = await envFor(app, this);
      const tasks = Array.isArray(header) ? header : (maybeSignature(header) as Group).tasks;
      const group = new Group(tasks.map((t) => maybeSignature(t)));
      const bodySig = maybeSignature(body);
      const { interval, countdown, max_retries: maxRetries } = this.kwargs as Record<string, unknown>;
      const result = await new Chord(group, bodySig).run(host, group, bodySig, partialArgs, { interval, countdown: countdown ?? 1, max_retries: maxRetries });
      return result.asTuple();
    },
    { params: ['header', 'body', 'partial_args', 'interval', 'countdown', 'max_retries', 'eager'] },
  );
}
