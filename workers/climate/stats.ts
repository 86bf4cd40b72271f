/** ClimateSERV's area statistics over the masked cells of one time step. */
import type { CellMask, StatKey, StatOperation } from './types';
import { MISSING_VALUE } from './types';

/** operationtype → JSON key of the value. */
export const STAT_KEYS: Readonly<Record<StatOperation, StatKey>> = { 0: 'max', 1: 'min', 2: 'median', 3: 'range', 4: 'sum', 5: 'avg' };

export function isStatOperation(value: unknown): value is StatOperation {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= 5;
}

export function statKey(operation: StatOperation): StatKey {
  return STAT_KEYS[operation];
}

export interface AreaStatistic {
  /** The statistic, or MISSING_VALUE when no cell of the area has data. */
  value: number;
  validCells: number;
}

function median(sorted: Float64Array): number {
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/**
 * The statistic over the cells inside the mask that have data (NaN = missing is skipped, never
 * counted as 0). `values` is the window's decoded grid (readWindow).
 */
export function areaStatistic(values: Float64Array, mask: CellMask, operation: StatOperation): AreaStatistic {
  const { inside } = mask;
  if (values.length !== inside.length) throw new Error(`grid has ${values.length} cells, mask ${inside.length}`);
  let n = 0;
  let sum = 0;
  let min = Infinity;
  let max = -Infinity;
  const kept = operation === 2 ? new Float64Array(mask.cellCount) : null;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (inside[i] === 0 || Number.isNaN(v)) continue;
    if (kept) kept[n] = v;
    n++;
    sum += v;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  if (n === 0) return { value: MISSING_VALUE, validCells: 0 };
  switch (operation) {
    case 0:
      return { value: max, validCells: n };
    case 1:
      return { value: min, validCells: n };
    case 2:
      return { value: median((kept as Float64Array).subarray(0, n).sort()), validCells: n };
    case 3:
      return { value: max - min, validCells: n };
    case 4:
      return { value: sum, validCells: n };
    case 5:
      return { value: sum / n, validCells: n };
    default:
      throw new Error(`operationtype ${String(operation)} is not a statistic (0-5)`);
  }
}
