/**
 * ClimateSERV's submitDataRequest parameters, checked. Every rule names the parameter it is
 * about, so the API can answer 400 with a message a script author can act on. Pure: no I/O.
 */
import area from '@turf/area';
import kinks from '@turf/kinks';
import type { MultiPolygon, Polygon, Position } from 'geojson';
import type { Dataset } from './datasets';

/** ClimateSERV's operation ids, with the key its JSON answers use. */
export const OPERATIONS = {
  0: 'max',
  1: 'min',
  2: 'median',
  3: 'range',
  4: 'sum',
  5: 'avg',
  6: 'download',
  7: 'netcdf',
  8: 'csv',
} as const;
export type OperationId = keyof typeof OPERATIONS;
export type StatisticKey = (typeof OPERATIONS)[0 | 1 | 2 | 3 | 4 | 5];
export type DownloadKind = 'geotiff' | 'netcdf' | 'csv';

export function isDownload(op: OperationId): op is 6 | 7 | 8 {
  return op >= 6;
}

export const DOWNLOAD_KIND: Readonly<Record<6 | 7 | 8, DownloadKind>> = { 6: 'geotiff', 7: 'netcdf', 8: 'csv' };

/** A validated request, as stored in the job log and sent to the job task. */
export interface JobRequest {
  datatype: number;
  operationtype: OperationId;
  /** MM/DD/YYYY, as given. */
  begintime: string;
  endtime: string;
  intervaltype: 0;
  geometry: Polygon | MultiPolygon;
  /** ClimateSERV's `is_from_ui`: UI jobs run at a higher priority than API jobs. */
  from_ui: boolean;
}

export interface RequestLimits {
  maxAreaKm2: number;
  maxYears: number;
}

export class BadParameter extends Error {
  constructor(readonly parameter: string, message: string) {
    super(`${parameter}: ${message}`);
    this.name = 'BadParameter';
  }
}

type Params = Readonly<Record<string, unknown>>;

function single(params: Params, name: string): string | undefined {
  const v = params[name];
  if (v === undefined || v === null) return undefined;
  if (Array.isArray(v)) throw new BadParameter(name, 'given more than once');
  if (typeof v !== 'string' && typeof v !== 'number') throw new BadParameter(name, 'must be a single value');
  return String(v).trim();
}

function required(params: Params, name: string): string {
  const v = single(params, name);
  if (v === undefined || v === '') throw new BadParameter(name, 'is required');
  return v;
}

function integer(params: Params, name: string): number {
  const v = required(params, name);
  if (!/^[-+]?\d+$/.test(v)) throw new BadParameter(name, `must be a whole number, got ${JSON.stringify(v)}`);
  return Number(v);
}

/** MM/DD/YYYY -> UTC midnight (ms); rejects 02/30/2020 and friends. */
export function parseUsDate(value: string, name: string): number {
  const m = /^(\d{1,2})\/(\d{1,2})\/(\d{4})$/.exec(value);
  if (!m) throw new BadParameter(name, `must be a date as MM/DD/YYYY, got ${JSON.stringify(value)}`);
  const [month, day, year] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const t = Date.UTC(year, month - 1, day);
  const d = new Date(t);
  if (d.getUTCFullYear() !== year || d.getUTCMonth() !== month - 1 || d.getUTCDate() !== day) {
    throw new BadParameter(name, `${JSON.stringify(value)} is not a calendar date`);
  }
  return t;
}

function isPosition(p: unknown): p is Position {
  return Array.isArray(p) && p.length >= 2 && p.every((n) => typeof n === 'number' && Number.isFinite(n));
}

function checkRings(rings: unknown, where: string): void {
  if (!Array.isArray(rings) || rings.length === 0) throw new BadParameter('geometry', `${where} must be a list of linear rings`);
  rings.forEach((ring: unknown, i) => {
    const at = `${where} ring ${i}`;
    if (!Array.isArray(ring) || !ring.every(isPosition)) throw new BadParameter('geometry', `${at} must be a list of [lon, lat] numbers`);
    if (ring.length < 4) throw new BadParameter('geometry', `${at} needs at least 4 positions (a closed ring)`);
    const [first, last] = [ring[0], ring[ring.length - 1]];
    if (first[0] !== last[0] || first[1] !== last[1]) throw new BadParameter('geometry', `${at} is not closed (first and last positions differ)`);
    for (const [lon, lat] of ring) {
      if (lon < -180 || lon > 360 || lat < -90 || lat > 90) {
        throw new BadParameter('geometry', `${at} has [${lon}, ${lat}] outside lon -180..360, lat -90..90 (lon/lat order)`);
      }
    }
  });
}

/** A GeoJSON Polygon or MultiPolygon (also inside a Feature), closed rings, no self-intersection. */
export function parseGeometry(raw: string): Polygon | MultiPolygon {
  let g: unknown;
  try {
    g = JSON.parse(raw);
  } catch {
    throw new BadParameter('geometry', 'is not valid JSON (expected a GeoJSON Polygon or MultiPolygon)');
  }
  if (typeof g === 'object' && g !== null && (g as { type?: unknown }).type === 'Feature') g = (g as { geometry?: unknown }).geometry;
  if (typeof g !== 'object' || g === null) throw new BadParameter('geometry', 'must be a GeoJSON Polygon or MultiPolygon object');
  const { type, coordinates } = g as { type?: unknown; coordinates?: unknown };
  let geometry: Polygon | MultiPolygon;
  if (type === 'Polygon') {
    checkRings(coordinates, 'Polygon');
    geometry = { type, coordinates: coordinates as Position[][] };
  } else if (type === 'MultiPolygon') {
    if (!Array.isArray(coordinates) || coordinates.length === 0) throw new BadParameter('geometry', 'MultiPolygon must list polygons');
    coordinates.forEach((poly: unknown, i) => checkRings(poly, `MultiPolygon polygon ${i}`));
    geometry = { type, coordinates: coordinates as Position[][][] };
  } else {
    throw new BadParameter('geometry', `must be a GeoJSON Polygon or MultiPolygon, got type ${JSON.stringify(type)}`);
  }
  const crossings = kinks(geometry).features;
  if (crossings.length > 0) {
    const [lon, lat] = crossings[0].geometry.coordinates;
    throw new BadParameter('geometry', `is self-intersecting (edges cross near lon ${lon.toFixed(4)}, lat ${lat.toFixed(4)})`);
  }
  return geometry;
}

function truthy(v: string | undefined): boolean {
  return v !== undefined && /^(1|true|yes|on)$/i.test(v);
}

/** Checks a submitDataRequest; throws BadParameter for the first problem found. */
export function parseJobRequest(params: Params, datasets: ReadonlyMap<number, Dataset>, limits: RequestLimits): JobRequest {
  const datatype = integer(params, 'datatype');
  if (!datasets.has(datatype)) {
    const known = [...datasets.keys()].sort((a, b) => a - b);
    throw new BadParameter('datatype', `unknown datatype ${datatype}; known: ${known.length ? known.join(', ') : 'none configured (climate.datasets)'}`);
  }
  const op = integer(params, 'operationtype');
  if (!(op in OPERATIONS)) throw new BadParameter('operationtype', `unknown operation ${op}; known: 0 max, 1 min, 2 median, 3 range, 4 sum, 5 average, 6 GeoTIFF, 7 NetCDF, 8 CSV`);
  const begintime = required(params, 'begintime');
  const endtime = required(params, 'endtime');
  const begin = parseUsDate(begintime, 'begintime');
  const end = parseUsDate(endtime, 'endtime');
  if (begin > end) throw new BadParameter('endtime', `${endtime} is before begintime ${begintime}`);
  const years = (end - begin) / (365.25 * 86_400_000);
  if (years > limits.maxYears) throw new BadParameter('endtime', `the date range is ${years.toFixed(1)} years; the limit is ${limits.maxYears}`);
  const interval = single(params, 'intervaltype') ?? '0';
  if (interval !== '0') throw new BadParameter('intervaltype', `only 0 (each time step) is supported, got ${JSON.stringify(interval)}`);
  const geometry = parseGeometry(required(params, 'geometry'));
  const km2 = area(geometry) / 1e6;
  if (km2 > limits.maxAreaKm2) throw new BadParameter('geometry', `the area is ${Math.round(km2).toLocaleString('en')} km²; the limit is ${limits.maxAreaKm2.toLocaleString('en')} km²`);
  return {
    datatype,
    operationtype: op as OperationId,
    begintime,
    endtime,
    intervaltype: 0,
    geometry,
    from_ui: truthy(single(params, 'is_from_ui')),
  };
}
