/** Open a NetCDF file with the right reader, chosen by its magic bytes, not its name. */
import { closeSync, openSync, readSync } from 'node:fs';
import type { NcReader } from '../types';
import { ClassicReader, loadNetcdfjs } from './classic';
import { Hdf5Reader, hdf5Reason, loadH5wasm } from './hdf5';

/** A file that cannot be read as NetCDF; callers turn it into a warning. */
export class NetcdfReadError extends Error {
  override readonly name = 'NetcdfReadError';
  constructor(readonly path: string, readonly reason: string) {
    super(`${path}: ${reason}`);
  }
}

const HDF5_MAGIC = Buffer.from([0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a]);

function magic(path: string): Buffer {
  const fd = openSync(path, 'r');
  try {
    const buffer = Buffer.alloc(8);
    const n = readSync(fd, buffer, 0, 8, 0);
    return buffer.subarray(0, n);
  } finally {
    closeSync(fd);
  }
}

function reason(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * Open a NetCDF4/HDF5 (h5wasm) or classic CDF-1/CDF-2 (netcdfjs) file. Throws NetcdfReadError
 * for a missing, empty, truncated or non-NetCDF file, or a CDF-5 file (netcdfjs cannot read it).
 */
export async function openNetcdf(path: string): Promise<NcReader> {
  let head: Buffer;
  try {
    head = magic(path);
  } catch (error) {
    throw new NetcdfReadError(path, reason(error));
  }
  if (head.equals(HDF5_MAGIC)) {
    const h5 = await loadH5wasm();
    let file: InstanceType<typeof h5.File> | null = null;
    try {
      file = new h5.File(path, 'r');
      if (file.file_id < 0n) throw new Error('HDF5 could not open it');
      return new Hdf5Reader(path, file, h5);
    } catch (error) {
      try {
        if (file && file.file_id >= 0n) file.close();
      } catch {
        // already unusable; the read error below is what matters
      }
      throw new NetcdfReadError(path, `not a readable NetCDF4/HDF5 file (${hdf5Reason(error)})`);
    }
  }
  if (head.subarray(0, 3).toString('latin1') === 'CDF') {
    if (head[3] === 5) throw new NetcdfReadError(path, 'CDF-5 (64-bit data) classic files are not supported: netcdfjs reads CDF-1 and CDF-2; convert with `nccopy -k nc4`');
    const lib = await loadNetcdfjs();
    try {
      return new ClassicReader(path, lib);
    } catch (error) {
      throw new NetcdfReadError(path, `not a readable classic NetCDF file (${reason(error)})`);
    }
  }
  throw new NetcdfReadError(path, head.length === 0 ? 'empty file' : 'not a NetCDF file (neither HDF5 nor CDF magic bytes)');
}

/** Load (compile) both reader libraries now, e.g. when a worker starts, not on the first file. */
export async function preloadNetcdfLibraries(): Promise<void> {
  await Promise.all([loadH5wasm(), loadNetcdfjs()]);
}
