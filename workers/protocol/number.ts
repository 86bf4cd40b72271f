/**
 * A number read from a message (a header, an envelope property): numbers and numeric strings,
 * booleans as 0/1 (as Python's int() takes them); anything else is null. Only those types reach
 * Number(): a JSON object such as {"toString": 0} makes it throw a TypeError, which a malformed
 * message must never raise (found by fuzz-protocol).
 */
export function numberOrNull(v: unknown): number | null {
  if (typeof v !== 'number' && typeof v !== 'string' && typeof v !== 'boolean') return null;
  const n = Number(v);
  return Number.isFinite(n) ? n : null;
}
