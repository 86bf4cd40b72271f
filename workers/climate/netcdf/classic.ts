/**
 * Classic NetCDF (CDF-1, CDF-2) files: netcdfjs parses the header; values are read straight from
 * the file at the offsets the header gives, one run per window row, so a request never reads the
 * whole grid (netcdfjs itself only reads whole variables from a whole-file buffer).
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import type { NetCDFReader } from 'netcdfjs' with { 'resolution-mode': 'import' };

type NetcdfjsModule = typeof import('netcdfjs', { with: { 'resolution-mode': 'import' } });

let loaded: Promise<NetcdfjsModule> | null = null;

/** netcdfjs is ESM-only: load it once, lazily. */
export function loadNetcdfjs(): Promise<NetcdfjsModule> {
  loaded ??= import('netcdfjs');
  return loaded;
}
import type { AttributeValue, NcDimension, NcReader, NcVariable, Span } from '../types';

type HeaderVariable = NetCDFReader['variables'][number];

/** Bytes per value and a big-endian reader for each classic type. */
const TYPES: Record<string, { size: number; read: (view: DataView, at: number) => number }> = {
  byte: { size: 1, read: (v, at) => v.getInt8(at) },
  char: { size: 1, read: (v, at) => v.getUint8(at) },
  short: { size: 2, read: (v, at) => v.getInt16(at, false) },
  int: { size: 4, read: (v, at) => v.getInt32(at, false) },
  float: { size: 4, read: (v, at) => v.getFloat32(at, false) },
  double: { size: 8, read: (v, at) => v.getFloat64(at, false) },
};

function readAt(fd: number, position: number, length: number): Buffer {
  const buffer = Buffer.alloc(length);
  let done = 0;
  while (done < length) {
    const n = readSync(fd, buffer, done, length - done, position + done);
    if (n === 0) throw new Error(`file ends before byte ${position + length} (truncated?)`);
    done += n;
  }
  return buffer;
}

/** Parse the header from the file's first bytes, reading more until it fits. */
function parseHeader(lib: NetcdfjsModule, fd: number, fileSize: number): NetCDFReader {
  for (let length = Math.min(fileSize, 1 << 16); ; length = Math.min(fileSize, length * 4)) {
    try {
      return new lib.NetCDFReader(readAt(fd, 0, length));
    } catch (error) {
      if (length >= fileSize || !(error instanceof RangeError || /offset|out of range|bounds/i.test(String(error)))) throw error;
    }
  }
}

function attributeValue(value: unknown): AttributeValue | undefined {
  if (typeof value === 'string' || typeof value === 'number') return value;
  if (Array.isArray(value)) return value.length === 1 ? Number(value[0]) : value.map(Number);
  return undefined;
}

function attributesOf(list: readonly { name: string; value: unknown }[]): Record<string, AttributeValue> {
  const out: Record<string, AttributeValue> = {};
  for (const { name, value } of list) {
    const v = attributeValue(value);
    if (v !== undefined) out[name] = v;
  }
  return out;
}

export class ClassicReader implements NcReader {
  readonly format = 'classic';
  private readonly header: NetCDFReader;
  private readonly variableList: NcVariable[];
  private readonly fd: number;

  constructor(readonly path: string, lib: NetcdfjsModule) {
    this.fd = openSync(path, 'r');
    try {
      this.header = parseHeader(lib, this.fd, fstatSync(this.fd).size);
    } catch (error) {
      closeSync(this.fd);
      throw error;
    }
    const dims = this.header.dimensions;
    const recordLength = this.header.recordDimension.length;
    const recordId = this.header.recordDimension.id;
    this.variableList = this.header.variables.map((v) => ({
      name: v.name,
      dimensions: v.dimensions.map((id) => dims[id].name),
      shape: v.dimensions.map((id) => (id === recordId ? recordLength : dims[id].size)),
      attributes: attributesOf(v.attributes as { name: string; value: unknown }[]),
    }));
  }

  dimensions(): NcDimension[] {
    const { id, length } = this.header.recordDimension;
    return this.header.dimensions.map((d, i) => ({ name: d.name, size: i === id ? length : d.size }));
  }

  variables(): NcVariable[] {
    return this.variableList;
  }

  variable(name: string): NcVariable | undefined {
    return this.variableList.find((v) => v.name === name);
  }

  attributes(): Record<string, AttributeValue> {
    return attributesOf(this.header.globalAttributes);
  }

  readAll(name: string): Float64Array {
    const variable = this.variable(name);
    if (!variable) throw new Error(`no variable '${name}'`);
    return this.readSlab(name, variable.shape.map((size) => ({ start: 0, count: size })));
  }

  readSlab(name: string, spans: Span[]): Float64Array {
    const meta = this.variable(name);
    const raw = this.header.variables.find((v) => v.name === name);
    if (!meta || !raw) throw new Error(`no variable '${name}'`);
    const type = TYPES[raw.type];
    if (!type) throw new Error(`'${name}' has unsupported type ${raw.type}`);
    const shape = meta.shape;
    if (spans.length !== shape.length) throw new Error(`'${name}' has ${shape.length} dimensions, ${spans.length} spans given`);
    spans.forEach((s, i) => {
      if (s.start < 0 || s.count < 0 || s.start + s.count > shape[i]) throw new Error(`span ${s.start}+${s.count} outside '${meta.dimensions[i]}' (size ${shape[i]})`);
    });
    const total = spans.reduce((n, s) => n * s.count, 1);
    const out = new Float64Array(total);
    if (total === 0) return out;
    if (spans.length === 0) return this.readRun(raw, type, 0, 1, out, 0);
    const last = spans.length - 1;
    // Values along the last dimension are contiguous, except in a 1-D record variable: there the
    // only dimension is the record one, and each record sits a record step apart.
    const contiguousLast = !(raw.record && spans.length === 1);
    const runLength = contiguousLast ? spans[last].count : 1;
    const index = spans.map((s) => s.start);
    for (let written = 0; written < total; written += runLength) {
      this.readRun(raw, type, this.elementOffset(raw, shape, index), runLength, out, written);
      for (let d = contiguousLast ? last - 1 : last; d >= 0; d--) {
        if (++index[d] < spans[d].start + spans[d].count) break;
        index[d] = spans[d].start;
      }
    }
    return out;
  }

  /** Byte offset of an element; record variables interleave one record of each per record step. */
  private elementOffset(raw: HeaderVariable, shape: number[], index: number[]): number {
    const size = TYPES[raw.type].size;
    const first = raw.record ? 1 : 0;
    let linear = 0;
    for (let d = first; d < shape.length; d++) linear = linear * shape[d] + index[d];
    const recordBase = raw.record ? index[0] * (this.header.recordDimension.recordStep ?? 0) : 0;
    return raw.offset + recordBase + linear * size;
  }

  private readRun(raw: HeaderVariable, type: (typeof TYPES)[string], offset: number, count: number, out: Float64Array, at: number): Float64Array {
    const bytes = readAt(this.fd, offset, count * type.size);
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    for (let i = 0; i < count; i++) out[at + i] = type.read(view, i * type.size);
    return out;
  }

  close(): void {
    closeSync(this.fd);
  }
}
