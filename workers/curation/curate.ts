/**
 * `climate.curate`'s work: one regridded file's variables into the store at their time indices.
 * The file is read one store chunk at a time (never a whole variable), and each chunk's slab is
 * written with one zarrita `set`; a file whose steps fill whole chunks never reads the store.
 */
import { endianness } from 'node:os';
import { decodeTimes, decodeValues, openNetcdf, variableEncoding, type NcVariable } from '../climate';
import { timeIndex, type CurationSettings, type StoreVariable } from './settings';
import { arrayShape, loadZarrita, openVariable, writeWholeChunk } from './store';

export interface CuratedVariable {
  name: string;
  /** Variable name in the file (differs when it was matched by its short_name). */
  source: string;
  steps: number;
  /** Store time indices written, first..last. */
  first: number;
  last: number;
}

export interface CurateResult {
  file: string;
  variables: CuratedVariable[];
  /** Bytes of float32 values written. */
  bytes: number;
}

/** The file's variables that the store holds, by `short_name` attribute or by name. */
function matchVariables(vars: NcVariable[], timeDim: string, settings: CurationSettings): { v: NcVariable; target: StoreVariable }[] {
  const out: { v: NcVariable; target: StoreVariable }[] = [];
  for (const v of vars) {
    if (v.dimensions[0] !== timeDim || v.dimensions.length < 2) continue;
    const short = typeof v.attributes.short_name === 'string' ? v.attributes.short_name : undefined;
    const target = settings.variables.find((s) => s.name === short) ?? settings.variables.find((s) => s.name === v.name);
    if (target) out.push({ v, target });
  }
  return out;
}

/** Runs of file steps whose store indices are consecutive and in one chunk: [fileStart, count, storeStart]. */
export function chunkRuns(indices: number[], timeChunk: number): [number, number, number][] {
  const runs: [number, number, number][] = [];
  for (let k = 0; k < indices.length; k++) {
    const last = runs[runs.length - 1];
    const t = indices[k];
    if (last && last[2] + last[1] === t && Math.floor(last[2] / timeChunk) === Math.floor(t / timeChunk)) last[1] += 1;
    else runs.push([k, 1, t]);
  }
  return runs;
}

const LITTLE_ENDIAN = endianness() === 'LE';

/** A whole time chunk: one chunk file, or one per level (the level's rows gathered from the slab). */
async function writeChunks(settings: CurationSettings, target: StoreVariable, chunk: number, data: Float32Array, count: number, cell: number): Promise<void> {
  const zeros = settings.grid.map(() => 0);
  if (!target.levels) return writeWholeChunk(settings, target.name, [chunk, ...zeros], data);
  const grid = cell / settings.levels;
  for (let level = 0; level < settings.levels; level++) {
    const part = new Float32Array(count * grid);
    for (let k = 0; k < count; k++) part.set(data.subarray(k * cell + level * grid, k * cell + (level + 1) * grid), k * grid);
    await writeWholeChunk(settings, target.name, [chunk, level, ...zeros], part);
  }
}

export async function curateFile(path: string, settings: CurationSettings): Promise<CurateResult> {
  const { zarr } = await loadZarrita();
  const reader = await openNetcdf(path);
  try {
    const timeDim = ['time', 'valid_time'].find((n) => reader.variable(n) !== undefined);
    if (timeDim === undefined) throw new Error(`${path}: no time variable`);
    const times = decodeTimes(reader, timeDim);
    const indices = times.map((ms) => timeIndex(settings, ms));
    const off = indices.findIndex((i) => i < 0);
    if (off >= 0) throw new Error(`${path}: step ${new Date(times[off]).toISOString()} is not on the store's time axis`);
    const matched = matchVariables(reader.variables(), timeDim, settings);
    if (matched.length === 0) throw new Error(`${path}: none of its variables is in curation.variables/level_variables`);
    const result: CurateResult = { file: path, variables: [], bytes: 0 };
    for (const { v, target } of matched) {
      const { shape } = arrayShape(settings, target);
      const inner = shape.slice(1);
      if (v.shape.length !== shape.length || v.shape.slice(1).some((n, i) => n !== inner[i])) {
        throw new Error(`${path}: '${v.name}' is ${v.shape.join('x')} per file, the store's '${target.name}' is time x ${inner.join('x')}`);
      }
      const arr = await openVariable(settings, target.name);
      const encoding = variableEncoding(v);
      const plain = encoding.scale === 1 && encoding.offset === 0 && encoding.missing.length === 0;
      const cell = inner.reduce((a, b) => a * b, 1);
      const strides = inner.map((_, i) => inner.slice(i + 1).reduce((a, b) => a * b, 1));
      for (const [fileStart, count, storeStart] of chunkRuns(indices, settings.timeChunk)) {
        const stored = reader.readSlab(v.name, [{ start: fileStart, count }, ...inner.map((n) => ({ start: 0, count: n }))]);
        // The typed-array constructor converts natively; an unpacked variable without fill values needs no decoding (NaN stays NaN).
        const data = plain ? new Float32Array(stored) : decodeValues(stored, encoding, new Float32Array(stored.length));
        result.bytes += data.byteLength;
        if (count === settings.timeChunk && storeStart % count === 0 && LITTLE_ENDIAN) {
          await writeChunks(settings, target, storeStart / count, data, count, cell);
          continue;
        }
        await zarr.set(arr, [zarr.slice(storeStart, storeStart + count), ...inner.map(() => null)], { data, shape: [count, ...inner], stride: [cell, ...strides] });
      }
      result.variables.push({ name: target.name, source: v.name, steps: indices.length, first: Math.min(...indices), last: Math.max(...indices) });
    }
    return result;
  } finally {
    reader.close();
  }
}
