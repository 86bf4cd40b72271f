/** The lat/lon grid of a variable and the window of it that a request's bbox covers. */
import { decodeValues, variableEncoding } from './netcdf/encoding';
import type { AreaGeometry, BBox, GridWindow, NcReader, Span } from './types';

const LAT_NAMES = ['lat', 'latitude', 'y', 'nav_lat'];
const LON_NAMES = ['lon', 'longitude', 'x', 'nav_lon'];

/** The bbox of a Polygon/MultiPolygon (outer rings suffice: holes lie inside them). */
export function geometryBBox(geometry: AreaGeometry): BBox {
  const polygons = geometry.type === 'Polygon' ? [geometry.coordinates] : geometry.coordinates;
  const box = { west: Infinity, south: Infinity, east: -Infinity, north: -Infinity };
  for (const polygon of polygons) {
    for (const [lon, lat] of polygon[0] ?? []) {
      box.west = Math.min(box.west, lon);
      box.east = Math.max(box.east, lon);
      box.south = Math.min(box.south, lat);
      box.north = Math.max(box.north, lat);
    }
  }
  if (!Number.isFinite(box.west)) throw new Error('geometry has no coordinates');
  return box;
}

/** −180 ≤ result < 180. */
export function normaliseLon(lon: number): number {
  return ((((lon + 180) % 360) + 360) % 360) - 180;
}

export interface LatLonNames {
  lat: string;
  lon: string;
  /** Dimensions before lat/lon (usually ['time'] or none), slowest first. */
  leading: string[];
}

function isAxis(reader: NcReader, dim: string, names: string[], units: string, standardName: string): boolean {
  if (names.includes(dim.toLowerCase())) return true;
  const attrs = reader.variable(dim)?.attributes ?? {};
  return attrs.units === units || attrs.standard_name === standardName;
}

/**
 * Find the latitude and longitude dimensions of a variable: they must be its last two, in
 * (lat, lon) order, each with a coordinate variable. Throws with the reason otherwise.
 */
export function findLatLon(reader: NcReader, variable: string): LatLonNames {
  const meta = reader.variable(variable);
  if (!meta) throw new Error(`no variable '${variable}' (variables: ${reader.variables().map((v) => v.name).join(', ')})`);
  const dims = meta.dimensions;
  if (dims.length < 2) throw new Error(`'${variable}' has ${dims.length} dimension(s), not a lat/lon grid`);
  const [lat, lon] = dims.slice(-2);
  const latOk = isAxis(reader, lat, LAT_NAMES, 'degrees_north', 'latitude');
  const lonOk = isAxis(reader, lon, LON_NAMES, 'degrees_east', 'longitude');
  if (!latOk || !lonOk) {
    if (isAxis(reader, lat, LON_NAMES, 'degrees_east', 'longitude')) throw new Error(`'${variable}' is stored (lon, lat); only (…, lat, lon) grids are supported`);
    throw new Error(`'${variable}' has dimensions (${dims.join(', ')}): its last two must be latitude and longitude`);
  }
  for (const axis of [lat, lon]) if (!reader.variable(axis)) throw new Error(`no coordinate variable for dimension '${axis}'`);
  return { lat, lon, leading: dims.slice(0, -2) };
}

/** Maximal runs of consecutive indices. */
function runs(indices: number[]): Span[] {
  const out: Span[] = [];
  for (const i of indices) {
    const last = out[out.length - 1];
    if (last && last.start + last.count === i) last.count++;
    else out.push({ start: i, count: 1 });
  }
  return out;
}

function gridKey(latSize: number, latFirst: number, latLast: number, lonSize: number, lonFirst: number, lonLast: number): string {
  return `${latSize}:${latFirst}:${latLast}|${lonSize}:${lonFirst}:${lonLast}`;
}

/** The grid's identity from the coordinate sizes and end points (four one-value reads). */
export function gridKeyOf(reader: NcReader, names: LatLonNames): string {
  const ends = (name: string): [number, number, number] => {
    const size = reader.variable(name)?.shape[0] ?? 0;
    if (size === 0) return [0, NaN, NaN];
    return [size, reader.readSlab(name, [{ start: 0, count: 1 }])[0], reader.readSlab(name, [{ start: size - 1, count: 1 }])[0]];
  };
  return gridKey(...ends(names.lat), ...ends(names.lon));
}

/**
 * The window of the variable's grid whose cell centres lie in the bbox (edges included). Reads
 * only the two coordinate variables.
 */
export function gridWindow(reader: NcReader, names: LatLonNames, bbox: BBox): GridWindow {
  const lat = reader.readAll(names.lat);
  const lon = reader.readAll(names.lon);
  const rowIndices: number[] = [];
  lat.forEach((y, i) => {
    if (y >= bbox.south && y <= bbox.north) rowIndices.push(i);
  });
  const rowRuns = runs(rowIndices);
  if (rowRuns.length > 1) throw new Error(`latitude '${names.lat}' is not monotonic`);
  const rows = rowRuns[0] ?? { start: 0, count: 0 };
  const colIndices: number[] = [];
  lon.forEach((x, i) => {
    const n = normaliseLon(x);
    if (n >= bbox.west && n <= bbox.east) colIndices.push(i);
  });
  // A 0..360 grid cut by a bbox crossing 0° gives two runs: order them west to east.
  const cols = runs(colIndices).sort((a, b) => normaliseLon(lon[a.start]) - normaliseLon(lon[b.start]));
  return {
    latName: names.lat,
    lonName: names.lon,
    rows,
    cols,
    lats: Array.from(lat.subarray(rows.start, rows.start + rows.count)),
    lons: cols.flatMap((c) => Array.from(lon.subarray(c.start, c.start + c.count), normaliseLon)),
    gridKey: gridKey(lat.length, lat[0], lat[lat.length - 1], lon.length, lon[0], lon[lon.length - 1]),
  };
}

/**
 * The window's values at one index of the leading dimensions (e.g. [timeIndex]): rows × cols,
 * row-major, decoded (scale/offset applied, missing values as NaN).
 */
export function readWindow(reader: NcReader, variable: string, window: GridWindow, leading: number[]): Float64Array {
  const meta = reader.variable(variable);
  if (!meta) throw new Error(`no variable '${variable}'`);
  const width = window.lons.length;
  const out = new Float64Array(window.rows.count * width);
  if (out.length === 0) return out;
  const encoding = variableEncoding(meta);
  const head = leading.map((start) => ({ start, count: 1 }));
  let offset = 0;
  for (const cols of window.cols) {
    const slab = decodeValues(reader.readSlab(variable, [...head, window.rows, cols]), encoding);
    for (let r = 0; r < window.rows.count; r++) out.set(slab.subarray(r * cols.count, (r + 1) * cols.count), r * width + offset);
    offset += cols.count;
  }
  return out;
}
