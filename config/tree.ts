/** Small helpers for the nested plain objects the loader merges, copies and freezes. */

export type Tree = Record<string, unknown>;

/** Plain objects merge key by key; anything else (arrays included) replaces. */
export function deepMerge(base: Tree, over: Tree): Tree {
  const out: Tree = { ...base };
  for (const [k, v] of Object.entries(over)) {
    if (v === undefined) continue;
    const prev = out[k];
    out[k] = isTree(v) && isTree(prev) ? deepMerge(prev, v) : v;
  }
  return out;
}

export function lookup(tree: Tree, dotted: string): unknown {
  let cur: unknown = tree;
  for (const part of dotted.split('.')) {
    if (!isTree(cur)) return undefined;
    cur = cur[part];
  }
  return cur;
}

export function isTree(v: unknown): v is Tree {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function setPath(tree: Tree, dotted: string, value: unknown): void {
  const parts = dotted.split('.');
  const last = parts.pop() as string;
  let cur = tree;
  for (const part of parts) cur = cur[part] as Tree;
  cur[last] = value;
}

/** Copies plain objects and arrays; other values (RegExp routes, functions) are shared. */
export function cloneTree(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(cloneTree);
  if (isPlainObject(value)) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, cloneTree(v)]));
  return value;
}

/** Freezes plain objects and arrays only: a frozen RegExp could no longer update lastIndex. */
export function deepFreeze(value: unknown): unknown {
  if (Array.isArray(value) || isPlainObject(value)) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}

export function isPlainObject(v: unknown): v is Tree {
  if (!isTree(v)) return false;
  const proto: unknown = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}
