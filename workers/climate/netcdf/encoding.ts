/** CF packing: stored numbers → values, with _FillValue / missing_value / NaN as missing. */
import type { AttributeValue, NcVariable, VariableEncoding } from '../types';

function numbers(value: AttributeValue | undefined): number[] {
  if (value === undefined || typeof value === 'string') return [];
  return Array.isArray(value) ? value : [value];
}

/** The variable's scale, offset and stored "no data" values, from its attributes. */
export function variableEncoding(variable: NcVariable): VariableEncoding {
  const attrs = variable.attributes;
  const scale = numbers(attrs.scale_factor)[0] ?? 1;
  const offset = numbers(attrs.add_offset)[0] ?? 0;
  const missing = [...numbers(attrs._FillValue), ...numbers(attrs.missing_value)];
  return { scale, offset, missing: [...new Set(missing)] };
}

/**
 * Decode stored numbers in place order into a new array: missing → NaN, others → stored * scale
 * + offset. Fill values are compared as stored (float32 fills were widened exactly to float64).
 */
export function decodeValues<T extends Float64Array | Float32Array = Float64Array>(stored: Float64Array, encoding: VariableEncoding, out?: T): T {
  const { scale, offset, missing } = encoding;
  // `out`: e.g. a Float32Array of the same length, filled in the same pass (no second copy).
  if (out !== undefined && out.length !== stored.length) throw new Error(`decodeValues: out has ${out.length} elements, ${stored.length} stored`);
  const values = out ?? (new Float64Array(stored.length) as T);
  // Two fill values at most in practice: compare them directly, not through includes() per cell.
  const [m0 = NaN, m1 = NaN] = missing;
  const more = missing.length > 2 ? missing.slice(2) : null;
  for (let i = 0; i < stored.length; i++) {
    const s = stored[i];
    if (s !== s || s === m0 || s === m1 || (more !== null && more.includes(s))) values[i] = NaN;
    else values[i] = s * scale + offset;
  }
  return values;
}
