/**
 * The download jobs' files (ClimateSERV operationtype 6, 7, 8), from the clipped grid of each time
 * step: 6 one GeoTIFF per step (float32, nodata -9999, EPSG:4326, north up), 7 one NetCDF4 file
 * with a time axis (h5wasm; dimension scales so netCDF-C and xarray see lat/lon/time), 8 one CSV
 * of every cell in the area. Each is zipped to `<job>.zip` (yazl).
 */
import fs from 'node:fs';
import path from 'node:path';
import yazl from 'yazl';
import type { DownloadKind } from './request';

/** One time step of the request's window: cells outside the area or without data are NaN. */
export interface DownloadGrid {
  /** ISO 8601 UTC instant of the step. */
  date: string;
  /** Cell-centre latitudes of the rows (ascending or descending) and longitudes of the columns (ascending). */
  lats: readonly number[];
  lons: readonly number[];
  /** rows × cols, row-major. */
  values: Float64Array;
}

export const NODATA = -9999;

const compactDate = (iso: string): string => iso.slice(0, 10).replace(/-/g, '');

/** Step between centres; a one-cell axis borrows the other axis's step (square cells), else 1e-3. */
function cellSize(grid: DownloadGrid): { dx: number; dy: number } {
  const step = (a: readonly number[]): number | undefined => (a.length > 1 ? Math.abs(a[1] - a[0]) : undefined);
  const dx = step(grid.lons) ?? step(grid.lats) ?? 1e-3;
  const dy = step(grid.lats) ?? dx;
  return { dx, dy };
}

/** Values with north as the first row (GeoTIFF's and xarray's usual order). */
function northUp(grid: DownloadGrid): { lats: number[]; values: Float64Array } {
  const rows = grid.lats.length;
  const cols = grid.lons.length;
  if (rows < 2 || grid.lats[0] > grid.lats[rows - 1]) return { lats: [...grid.lats], values: grid.values };
  const flipped = new Float64Array(grid.values.length);
  for (let r = 0; r < rows; r++) flipped.set(grid.values.subarray((rows - 1 - r) * cols, (rows - r) * cols), r * cols);
  return { lats: [...grid.lats].reverse(), values: flipped };
}

export async function geotiffBytes(grid: DownloadGrid): Promise<Buffer> {
  const { writeArrayBuffer } = await import('geotiff');
  const { lats, values } = northUp(grid);
  const { dx, dy } = cellSize(grid);
  const data = Float32Array.from(values, (v) => (Number.isNaN(v) ? NODATA : v));
  const buf = await writeArrayBuffer(data, {
    width: grid.lons.length,
    height: lats.length,
    ModelPixelScale: [dx, dy, 0],
    // Raster corner (0, 0) = the north-west corner of the first cell.
    ModelTiepoint: [0, 0, 0, grid.lons[0] - dx / 2, lats[0] + dy / 2, 0],
    GeographicTypeGeoKey: 4326,
    GeogCitationGeoKey: 'WGS 84',
    GTModelTypeGeoKey: 2,
    GTRasterTypeGeoKey: 1,
    GDAL_NODATA: String(NODATA),
  });
  return Buffer.from(buf);
}

export function csvText(grids: readonly DownloadGrid[]): string {
  const lines = ['date,latitude,longitude,value'];
  for (const g of grids) {
    const day = g.date.slice(0, 10);
    g.lats.forEach((lat, r) => {
      g.lons.forEach((lon, c) => {
        const v = g.values[r * g.lons.length + c];
        if (!Number.isNaN(v)) lines.push(`${day},${lat},${lon},${v}`);
      });
    });
  }
  return `${lines.join('\n')}\n`;
}

/**
 * One NetCDF4 file (time, lat, lon). Steps whose grid differs from the first step's are left out
 * and named in the returned warnings (one file has one grid).
 */
export async function writeNetcdf(file: string, grids: readonly DownloadGrid[], variable: string): Promise<string[]> {
  if (grids.length === 0) throw new Error('no time steps to write');
  const h5wasm = (await import('h5wasm/node')).default;
  await h5wasm.ready;
  const first = northUp(grids[0]);
  const lons = [...grids[0].lons];
  const same = (g: DownloadGrid): boolean =>
    g.lons.length === lons.length && g.lats.length === first.lats.length && g.lons.every((v, i) => v === lons[i]) && northUp(g).lats.every((v, i) => v === first.lats[i]);
  const kept = grids.filter(same);
  const warnings = grids.filter((g) => !same(g)).map((g) => `${g.date.slice(0, 10)}: grid differs from the first step's; left out of the NetCDF file`);
  const rows = first.lats.length;
  const cols = lons.length;
  const cube = new Float32Array(kept.length * rows * cols);
  kept.forEach((g, t) => cube.set(Float32Array.from(northUp(g).values), t * rows * cols));
  const f = new h5wasm.File(file, 'w');
  try {
    f.create_attribute('Conventions', 'CF-1.8');
    f.create_attribute('source', 'Celeriac climate job (ClimateSERV operationtype 7)');
    const axes: [string, number[], Record<string, string>][] = [
      ['time', kept.map((g) => Date.parse(g.date) / 86_400_000), { units: 'days since 1970-01-01 00:00:00', calendar: 'standard', standard_name: 'time' }],
      ['lat', first.lats, { units: 'degrees_north', standard_name: 'latitude' }],
      ['lon', lons, { units: 'degrees_east', standard_name: 'longitude' }],
    ];
    for (const [name, values, attrs] of axes) {
      const ds = f.create_dataset({ name, data: Float64Array.from(values), shape: [values.length], dtype: '<d' });
      for (const [k, v] of Object.entries(attrs)) ds.create_attribute(k, v);
      ds.make_scale(name);
    }
    const data = f.create_dataset({
      name: variable,
      data: cube,
      shape: [kept.length, rows, cols],
      dtype: '<f',
      chunks: [1, rows, cols],
      compression: 'gzip',
      compression_opts: 4,
    });
    data.create_attribute('_FillValue', new Float32Array([Number.NaN]), null, '<f');
    axes.forEach(([name], i) => data.attach_scale(i, name));
  } finally {
    f.close();
  }
  return warnings;
}

/** Zips `entries` (name -> file path or bytes) to `zipFile`, atomically (written aside, renamed). */
export async function writeZip(zipFile: string, entries: ReadonlyArray<[string, string | Buffer]>): Promise<void> {
  const zip = new yazl.ZipFile();
  for (const [name, content] of entries) {
    if (typeof content === 'string') zip.addFile(content, name);
    else zip.addBuffer(content, name);
  }
  const tmp = `${zipFile}.part-${process.pid}`;
  await new Promise<void>((resolve, reject) => {
    const out = fs.createWriteStream(tmp);
    out.on('close', resolve);
    out.on('error', reject);
    zip.outputStream.on('error', reject);
    zip.outputStream.pipe(out);
    zip.end();
  });
  await fs.promises.rename(tmp, zipFile);
}

/** Writes the download of `kind` for `grids` into `<dir>/<uuid>.zip`; returns its path and warnings. */
export async function writeDownload(
  dir: string,
  uuid: string,
  kind: DownloadKind,
  grids: readonly DownloadGrid[],
  variable: string,
): Promise<{ zipFile: string; warnings: string[] }> {
  await fs.promises.mkdir(dir, { recursive: true });
  const zipFile = path.join(dir, `${uuid}.zip`);
  let warnings: string[] = [];
  if (kind === 'geotiff') {
    const entries: [string, Buffer][] = [];
    for (const g of grids) entries.push([`${compactDate(g.date)}.tif`, await geotiffBytes(g)]);
    await writeZip(zipFile, entries);
  } else if (kind === 'netcdf') {
    const nc = path.join(dir, `${uuid}.nc`);
    try {
      warnings = await writeNetcdf(nc, grids, variable);
      await writeZip(zipFile, [[`${uuid}.nc`, nc]]);
    } finally {
      await fs.promises.rm(nc, { force: true });
    }
  } else {
    await writeZip(zipFile, [[`${uuid}.csv`, Buffer.from(csvText(grids))]]);
  }
  return { zipFile, warnings };
}
