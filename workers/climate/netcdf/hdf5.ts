/** NetCDF4 (HDF5) files through h5wasm: metadata from HDF5 dimension scales, hyperslab reads. */
import type * as H5 from 'h5wasm/node' with { 'resolution-mode': 'import' };
import type { AttributeValue, NcDimension, NcReader, NcVariable, Span } from '../types';

type H5Module = typeof H5;

let loaded: Promise<H5Module> | null = null;

/** h5wasm is ESM-only and compiles its wasm once per process: load it lazily, once. */
export function loadH5wasm(): Promise<H5Module> {
  loaded ??= import('h5wasm/node').then(async (mod) => {
    const module = await mod.ready;
    // HDF5 errors become JS exceptions (turned into warnings) instead of dumps on stderr.
    module.activate_throwing_error_handler();
    return mod;
  });
  return loaded;
}

/** HDF5 bookkeeping attributes that netCDF-C writes and a NetCDF reader does not show. */
const HIDDEN_ATTRIBUTES = new Set(['CLASS', 'NAME', 'DIMENSION_LIST', 'REFERENCE_LIST', '_Netcdf4Dimid', '_Netcdf4Coordinates', '_NCProperties', '_nc3_strict']);

function attributeValue(value: unknown): AttributeValue | undefined {
  if (typeof value === 'string' || typeof value === 'number') return value;
  if (typeof value === 'bigint') return Number(value);
  if (ArrayBuffer.isView(value) && !(value instanceof DataView)) {
    const list = Array.from(value as unknown as ArrayLike<number | bigint>, Number);
    return list.length === 1 ? list[0] : list;
  }
  if (Array.isArray(value) && value.every((v) => typeof v === 'string')) return value.join('');
  return undefined;
}

function attributesOf(entity: H5.Dataset | H5.Group): Record<string, AttributeValue> {
  const out: Record<string, AttributeValue> = {};
  for (const [name, attribute] of Object.entries(entity.attrs)) {
    if (HIDDEN_ATTRIBUTES.has(name)) continue;
    const value = attributeValue(attribute.value);
    if (value !== undefined) out[name] = value;
  }
  return out;
}

/** The innermost reason of an HDF5 error stack ("... in H5F__super_read(): truncated file: ..."). */
export function hdf5Reason(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  const lines = text.split('\n').map((l) => /\bin \w+\(\): (.+)$/.exec(l)?.[1]).filter((l): l is string => !!l);
  return lines.length ? lines[lines.length - 1] : text.split('\n')[0];
}

function baseName(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

function toFloat64(data: unknown): Float64Array {
  if (data instanceof Float64Array) return data;
  if (data instanceof BigInt64Array || data instanceof BigUint64Array) return Float64Array.from(data, Number);
  // The typed-array constructor converts natively (Float64Array.from with a map function is ~20x slower).
  if (ArrayBuffer.isView(data) && !(data instanceof DataView)) return new Float64Array(data as unknown as ArrayLike<number>);
  if (Array.isArray(data)) return Float64Array.from(data, Number);
  if (typeof data === 'number') return Float64Array.of(data);
  throw new Error(`unexpected data of type ${typeof data}`);
}

/** A variable's metadata, or null for an HDF5 dataset that netCDF hides (a bare dimension). */
function describe(dataset: H5.Dataset): NcVariable | null {
  const shape = dataset.shape ?? [];
  const name = baseName(dataset.path);
  const isDimension = 'CLASS' in dataset.attrs && dataset.get_scale_name() !== null;
  if (isDimension && String(dataset.attrs.NAME?.value ?? '').startsWith('This is a netCDF dimension but not a netCDF variable')) return null;
  const dimensions = isDimension && shape.length === 1 ? [name] : shape.map((_, i) => {
    const scales = dataset.get_attached_scales(i);
    return scales.length > 0 ? baseName(scales[0]) : `phony_dim_${i}`;
  });
  return { name, dimensions, shape: [...shape], attributes: attributesOf(dataset) };
}

/**
 * Metadata is read on demand, per variable: a request touches three variables (data, lat, lon)
 * of files that may hold many, and every HDF5 call costs a trip into wasm.
 */
export class Hdf5Reader implements NcReader {
  readonly format = 'netcdf4';
  private readonly described = new Map<string, NcVariable | null>();
  private all: NcVariable[] | null = null;
  private names: string[] | null = null;

  constructor(readonly path: string, private readonly file: H5.File, private readonly h5: H5Module) {}

  /** The root's member names, read once (each read decodes strings out of wasm memory). */
  private keys(): string[] {
    this.names ??= this.file.keys();
    return this.names;
  }

  dimensions(): NcDimension[] {
    const dims = new Map<string, number>();
    for (const v of this.variables()) v.dimensions.forEach((d, i) => dims.set(d, v.shape[i]));
    // Bare dimensions (no coordinate variable) are hidden datasets: their size is their length.
    for (const key of this.keys()) {
      const entity = this.file.get(key);
      if (entity instanceof this.h5.Dataset && !dims.has(key) && this.variable(key) === undefined) dims.set(key, entity.shape?.[0] ?? 0);
    }
    // netCDF's own order (definition order) is kept in each dimension scale's _Netcdf4Dimid.
    const id = (name: string): number => {
      const entity = this.keys().includes(name) ? this.file.get(name) : null;
      const value = entity instanceof this.h5.Dataset ? entity.attrs._Netcdf4Dimid?.value : undefined;
      return typeof value === 'number' ? value : Number.MAX_SAFE_INTEGER;
    };
    return [...dims].map(([name, size]) => ({ name, size, id: id(name) })).sort((a, b) => a.id - b.id).map(({ name, size }) => ({ name, size }));
  }

  variables(): NcVariable[] {
    this.all ??= this.keys().map((key) => this.variable(key)).filter((v): v is NcVariable => v !== undefined);
    return this.all;
  }

  variable(name: string): NcVariable | undefined {
    if (!this.described.has(name)) {
      const entity = this.keys().includes(name) ? this.file.get(name) : null;
      this.described.set(name, entity instanceof this.h5.Dataset ? describe(entity) : null);
    }
    return this.described.get(name) ?? undefined;
  }

  attributes(): Record<string, AttributeValue> {
    return attributesOf(this.file);
  }

  private dataset(name: string): H5.Dataset {
    const entity = this.file.get(name);
    if (!(entity instanceof this.h5.Dataset)) throw new Error(`no variable '${name}'`);
    return entity;
  }

  readAll(name: string): Float64Array {
    return toFloat64(this.dataset(name).value);
  }

  readSlab(name: string, spans: Span[]): Float64Array {
    const dataset = this.dataset(name);
    const shape = dataset.shape ?? [];
    if (spans.length !== shape.length) throw new Error(`'${name}' has ${shape.length} dimensions, ${spans.length} spans given`);
    return toFloat64(dataset.slice(spans.map((s) => [s.start, s.start + s.count])));
  }

  close(): void {
    this.file.close();
  }
}
