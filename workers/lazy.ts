/**
 * A package loaded on first use instead of at start. The worker ships codecs and clients it
 * rarely needs (amqplib on a Redis broker, yaml/msgpackr for non-JSON bodies, mongodb, prom-client
 * without --metrics-port); loading each only when used keeps them out of the idle worker's memory
 * and start-up time (issue #16: docs/benchmarks.md, "Performance pass"). Pair it with an
 * `import type` of the same package so the call sites keep their types.
 */
import { createRequire } from 'node:module';

const load = createRequire(__filename);

/** `const yaml = lazyModule<typeof import('yaml')>('yaml');` then `yaml().parse(...)` when needed. */
export function lazyModule<T>(name: string): () => T {
  let loaded: T | undefined;
  return () => (loaded ??= load(name) as T);
}
