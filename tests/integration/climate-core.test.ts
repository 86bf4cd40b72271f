/**
 * The climate compute core against Python: files written by netCDF4 (tests/interop/
 * climate_data.py), every operation's value equal (1e-6 relative) to netCDF4 + numpy + shapely
 * on the same files; NetCDF4 and classic, fill values, scale/offset, both latitude orders, 0..360
 * longitudes, a MultiPolygon with a hole, a multi-step file, corrupt files as warnings.
 */
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  MISSING_VALUE,
  MaskCache,
  STAT_KEYS,
  compileDatePattern,
  dateFromFileName,
  fileAreaGrids,
  fileAreaValues,
  gridWindow,
  findLatLon,
  geometryBBox,
  listDatedFiles,
  mergeAreaValues,
  openNetcdf,
  planAreaRequest,
  type AreaGeometry,
  type AreaValues,
  type DatedFile,
  type StatOperation,
} from '../../workers/climate';
import { areaValuesOfChunk } from '../../workers/tasks/climate';
import { INTEROP_DIR } from '../helpers/env';
import { runPyJson } from '../helpers/python';

jest.setTimeout(180_000);

interface Manifest {
  nc4: string[];
  corrupt: string[];
  classic: string[];
  /** The same three steps: [NetCDF4, classic CDF-1 with a record dimension]. */
  multistep: string[];
  geometry: AreaGeometry;
}

interface RefStep {
  file: string;
  date: string;
  stats: Record<string, number>;
  validCells: number;
  cells: number;
}

const SCRIPT = path.join(INTEROP_DIR, 'climate_data.py');
const OPERATIONS: StatOperation[] = [0, 1, 2, 3, 4, 5];
let dir: string;
let data: Manifest;

/** Python source that runs climate_data.py with these arguments. */
function py(args: string[]): string {
  return `import runpy, sys; sys.argv = ${JSON.stringify([SCRIPT, ...args])}; runpy.run_path(sys.argv[0], run_name='__main__')`;
}

async function reference(files: DatedFile[], variable: string): Promise<RefStep[]> {
  const request = JSON.stringify({ files, variable, geometry: data.geometry });
  const out = await runPyJson<{ values: RefStep[] }>(py(['reference']), { input: request, timeoutMs: 60_000 });
  return out.values;
}

function dated(paths: string[], pattern?: string): DatedFile[] {
  const compiled = compileDatePattern(pattern);
  return paths.map((p) => ({ path: p, date: (dateFromFileName(path.basename(p), compiled) as Date).toISOString() }));
}

async function ours(files: DatedFile[], variable: string, operation: StatOperation): Promise<AreaValues> {
  const masks = new MaskCache(data.geometry);
  const parts: AreaValues[] = [];
  for (const file of files) parts.push(await fileAreaValues(file, variable, masks, operation));
  return mergeAreaValues(parts);
}

function expectClose(actual: number, expected: number) {
  const tolerance = 1e-6 * Math.max(1, Math.abs(expected));
  expect(Math.abs(actual - expected)).toBeLessThanOrEqual(tolerance);
}

/** Every operation over `files` equals the Python reference, step by step. */
async function compareAll(files: DatedFile[], variable: string): Promise<RefStep[]> {
  const ref = await reference(files, variable);
  expect(ref.length).toBeGreaterThan(0);
  for (const op of OPERATIONS) {
    const got = await ours(files, variable, op);
    expect(got.values.map((v) => [v.date, v.validCells])).toEqual(ref.map((r) => [r.date, r.validCells]));
    got.values.forEach((v, i) => expectClose(v.value, ref[i].stats[STAT_KEYS[op]]));
  }
  return ref;
}

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'celeriac-climate-'));
  data = await runPyJson<Manifest>(py(['generate', dir]), { timeoutMs: 60_000 });
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('reader', () => {
  test('NetCDF4: dimensions, variables, attributes, hyperslab equal to the whole-variable read', async () => {
    const reader = await openNetcdf(data.nc4[0]);
    try {
      expect(reader.format).toBe('netcdf4');
      expect(reader.dimensions()).toEqual([
        { name: 'time', size: 1 },
        { name: 'lat', size: 64 },
        { name: 'lon', size: 120 },
      ]);
      const v = reader.variable('precipitation');
      expect(v).toMatchObject({ dimensions: ['time', 'lat', 'lon'], shape: [1, 64, 120], attributes: { _FillValue: -9999, units: 'mm/day' } });
      const all = reader.readAll('precipitation');
      const slab = reader.readSlab('precipitation', [{ start: 0, count: 1 }, { start: 10, count: 3 }, { start: 100, count: 4 }]);
      expect(Array.from(slab)).toEqual([10, 11, 12].flatMap((r) => Array.from(all.subarray(r * 120 + 100, r * 120 + 104))));
    } finally {
      reader.close();
    }
  });

  test('classic CDF-2: record dimension, packed int16 attributes, hyperslab equal to the whole-variable read', async () => {
    const reader = await openNetcdf(data.classic[0]);
    try {
      expect(reader.format).toBe('classic');
      expect(reader.variable('precip')).toMatchObject({ dimensions: ['time', 'latitude', 'longitude'], shape: [1, 32, 720], attributes: { _FillValue: -32767, missing_value: -32768, scale_factor: 0.1, add_offset: 5 } });
      const all = reader.readAll('precip');
      const slab = reader.readSlab('precip', [{ start: 0, count: 1 }, { start: 5, count: 2 }, { start: 715, count: 5 }]);
      expect(Array.from(slab)).toEqual([5, 6].flatMap((r) => Array.from(all.subarray(r * 720 + 715, r * 720 + 720))));
      expect(all.every((x) => Number.isInteger(x) && x >= -32768 && x <= 32767)).toBe(true);
    } finally {
      reader.close();
    }
  });

  test('0..360 longitudes cut by a bbox crossing 0° read as two column runs, west to east', async () => {
    const reader = await openNetcdf(data.classic[0]);
    try {
      const window = gridWindow(reader, findLatLon(reader, 'precip'), geometryBBox(data.geometry));
      expect(window.cols).toHaveLength(2);
      expect(window.lons[0]).toBeLessThan(0);
      expect(window.lons.every((lon, i) => i === 0 || lon > window.lons[i - 1])).toBe(true);
      expect(window.lats[0]).toBeGreaterThan(window.lats[window.lats.length - 1]); // descending kept
    } finally {
      reader.close();
    }
  });

  test('corrupt, truncated, empty and missing files are NetcdfReadErrors naming the reason', async () => {
    const empty = path.join(dir, 'empty.nc');
    writeFileSync(empty, '');
    const cdf5 = path.join(dir, 'cdf5.nc');
    writeFileSync(cdf5, Buffer.from([0x43, 0x44, 0x46, 5, 0, 0, 0, 0]));
    await expect(openNetcdf(data.corrupt[0])).rejects.toMatchObject({ name: 'NetcdfReadError', reason: expect.stringContaining('truncated') });
    await expect(openNetcdf(data.corrupt[1])).rejects.toMatchObject({ reason: expect.stringContaining('not a NetCDF file') });
    await expect(openNetcdf(empty)).rejects.toMatchObject({ reason: 'empty file' });
    await expect(openNetcdf(cdf5)).rejects.toMatchObject({ reason: expect.stringContaining('CDF-5') });
    await expect(openNetcdf(path.join(dir, 'nope.nc'))).rejects.toMatchObject({ reason: expect.stringContaining('ENOENT') });
  });
});

describe('statistics equal netCDF4 + numpy + shapely', () => {
  test('NetCDF4, ascending latitude, -180..180, fill values, a day with no data (-9999 + warning)', async () => {
    const files = dated(data.nc4);
    const ref = await compareAll(files, 'precipitation');
    expect(ref[0].cells).toBeGreaterThan(100);
    const missingDay = ref.findIndex((r) => r.validCells === 0);
    expect(missingDay).toBe(3);
    const got = await ours(files, 'precipitation', 5);
    expect(got.values[3].value).toBe(MISSING_VALUE);
    expect(got.warnings).toEqual([{ file: files[3].path, date: files[3].date, message: 'no data in the area for this step: value -9999' }]);
  });

  test('classic, packed int16 with scale/offset, _FillValue and missing_value, descending latitude, 0..360', async () => {
    const files = dated(data.classic, 'chirp_%Y.%m.%d.nc');
    const ref = await compareAll(files, 'precip');
    expect(ref.every((r) => r.validCells > 0 && r.validCells < r.cells)).toBe(true);
  });

  test.each([
    ['NetCDF4', 0],
    ['classic CDF-1, record dimension with two interleaved record variables', 1],
  ])('a file with three time steps (CF hours since …): %s', async (_kind, index) => {
    const files = [{ path: data.multistep[index], date: '2020-01-10T00:00:00.000Z' }];
    const ref = await compareAll(files, 'precipitation');
    expect(ref.map((r) => r.date)).toEqual(['2020-01-10T00:00:00.000Z', '2020-01-11T00:00:00.000Z', '2020-01-12T00:00:00.000Z']);
    expect(new Set(ref.map((r) => r.stats.avg)).size).toBe(3);
    const masks = new MaskCache(data.geometry);
    const inRange = await fileAreaValues(files[0], 'precipitation', masks, 5, { begin: '2020-01-11', end: '2020-01-11' });
    expect(inRange.values.map((v) => v.date)).toEqual(['2020-01-11T00:00:00.000Z']);
  });

  test('the mask is computed once per grid and reused across files', async () => {
    const masks = new MaskCache(data.geometry);
    for (const file of dated(data.nc4)) await fileAreaValues(file, 'precipitation', masks, 0);
    expect(masks.size).toBe(1);
    await fileAreaValues(dated(data.classic, 'chirp_%Y.%m.%d.nc')[0], 'precip', masks, 0);
    expect(masks.size).toBe(2);
  });

  test('clipped grids for downloads: NaN outside the area, cell count as the reference', async () => {
    const [file] = dated(data.nc4);
    const { mask, grids, warnings } = await fileAreaGrids(file, 'precipitation', new MaskCache(data.geometry));
    expect(warnings).toEqual([]);
    const [ref] = await reference([file], 'precipitation');
    expect(mask?.cellCount).toBe(ref.cells);
    expect(grids[0].values.filter((v) => !Number.isNaN(v)).length).toBe(ref.validCells);
  });
});

describe('files, dates and chunks', () => {
  test('ClimateSERV default pattern and a configured one; impossible dates rejected', () => {
    const def = compileDatePattern();
    expect(dateFromFileName('ucsb-chirps.20200229T000000Z.global.0.05deg.daily.nc4', def)?.toISOString()).toBe('2020-02-29T00:00:00.000Z');
    expect(dateFromFileName('ucsb-chirps.20200230T000000Z.global.nc4', def)).toBeNull();
    expect(dateFromFileName('ucsb-chirps.20200229T000000Z.global.nc', def)).toBeNull();
    expect(dateFromFileName('emodis_2020_061.tif.nc', compileDatePattern('emodis_%Y_%j*'))?.toISOString()).toBe('2020-03-01T00:00:00.000Z');
    expect(() => compileDatePattern('%Y%q')).toThrow(/unknown token %q/);
    expect(() => compileDatePattern('%m%d')).toThrow(/no %Y/);
  });

  test('listing a folder: by date, inside the day range, bad dates as warnings, missing folder throws', async () => {
    const folder = path.dirname(data.nc4[0]);
    writeFileSync(path.join(folder, 'ucsb-chirps.20201341T000000Z.x.nc4'), '');
    try {
      const { files, warnings } = await listDatedFiles(folder, compileDatePattern(), '2019-12-31', '2020-01-05');
      expect(files.map((f) => f.date.slice(0, 10))).toEqual(['2019-12-31', '2020-01-01', '2020-01-02', '2020-01-03', '2020-01-05']);
      expect(warnings).toEqual([{ file: path.join(folder, 'ucsb-chirps.20201341T000000Z.x.nc4'), message: expect.stringContaining('no valid date') }]);
    } finally {
      rmSync(path.join(folder, 'ucsb-chirps.20201341T000000Z.x.nc4'));
    }
    await expect(listDatedFiles(path.join(dir, 'nowhere'), compileDatePattern())).rejects.toThrow(/cannot be listed/);
  });

  test('a request splits per year, chunks run, corrupt files become warnings, merge is in date order', async () => {
    const folder = path.dirname(data.nc4[0]);
    const plan = await planAreaRequest({ folder, variable: 'precipitation', geometry: data.geometry, operation: 5, begin: '2019-12-01', end: '2020-01-31', chunkSize: 2 });
    expect(plan.years).toEqual([2019, 2020]);
    expect(plan.fileCount).toBe(readdirSync(folder).length);
    expect(plan.chunks.map((c) => c.files.map((f) => f.date.slice(0, 4)))).toEqual([['2019', '2019'], ['2019'], ['2020', '2020'], ['2020', '2020'], ['2020']]);
    // Run the chunks in reverse to show the merge restores date order.
    const parts = [];
    for (const chunk of [...plan.chunks].reverse()) parts.push(JSON.parse(JSON.stringify(await areaValuesOfChunk(chunk))) as AreaValues);
    const merged = mergeAreaValues(parts);
    const ref = await reference(dated(data.nc4), 'precipitation');
    expect(merged.values.map((v) => v.date)).toEqual(ref.map((r) => r.date));
    merged.values.forEach((v, i) => expectClose(v.value, ref[i].stats.avg));
    const skipped = merged.warnings.filter((w) => w.message.startsWith('skipped:'));
    expect(skipped.map((w) => w.file).sort()).toEqual([...data.corrupt].sort());
    expect(skipped.find((w) => w.file === data.corrupt[0])?.message).toMatch(/truncated/);
  });

  test('a file without the variable, and an area outside the grid, are warnings', async () => {
    const [file] = dated(data.nc4);
    const noVar = await fileAreaValues(file, 'ndvi', new MaskCache(data.geometry), 5);
    expect(noVar.values).toEqual([]);
    expect(noVar.warnings[0].message).toMatch(/no variable 'ndvi'/);
    const far: AreaGeometry = { type: 'Polygon', coordinates: [[[100, 40], [101, 40], [101, 41], [100, 40]]] };
    const outside = await fileAreaValues(file, 'precipitation', new MaskCache(far), 5);
    expect(outside.values.map((v) => v.value)).toEqual([MISSING_VALUE]);
    expect(outside.warnings.map((w) => w.message)).toEqual(['the area covers no cell centre of this grid']);
  });
});
