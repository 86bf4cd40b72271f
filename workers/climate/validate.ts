/**
 * Checks of task inputs that arrive over the broker from any client: a bad field fails the task
 * with a ValueError naming it (Python sees `ValueError`), before any file is touched.
 */
import { PythonError } from '../index';
import { compileDatePattern, dayStart } from './dates';
import type { AreaChunk, AreaRequest } from './jobTypes';
import { isStatOperation } from './stats';
import type { AreaGeometry } from './types';

function fail(field: string, why: string): never {
  throw new PythonError('ValueError', `${field}: ${why}`);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function checkRing(ring: unknown, field: string): void {
  if (!Array.isArray(ring) || ring.length < 4) fail(field, 'a ring needs at least 4 positions');
  for (const p of ring) {
    if (!Array.isArray(p) || p.length < 2 || !p.every((n) => typeof n === 'number' && Number.isFinite(n))) fail(field, 'positions are [longitude, latitude] numbers');
    if (Math.abs(p[0]) > 180 || Math.abs(p[1]) > 90) fail(field, `position [${p[0]}, ${p[1]}] is outside -180..180 / -90..90`);
  }
}

/** A GeoJSON Polygon or MultiPolygon with well-formed rings (the API checks self-intersection). */
export function checkGeometry(value: unknown, field = 'geometry'): AreaGeometry {
  if (!isRecord(value) || (value.type !== 'Polygon' && value.type !== 'MultiPolygon')) fail(field, 'expected a GeoJSON Polygon or MultiPolygon');
  const polygons = value.type === 'Polygon' ? [value.coordinates] : value.coordinates;
  if (!Array.isArray(polygons) || polygons.length === 0) fail(`${field}.coordinates`, 'empty');
  for (const polygon of polygons) {
    if (!Array.isArray(polygon) || polygon.length === 0) fail(`${field}.coordinates`, 'a polygon needs an outer ring');
    for (const ring of polygon) checkRing(ring, `${field}.coordinates`);
  }
  return value as unknown as AreaGeometry;
}

function checkText(value: unknown, field: string): void {
  if (typeof value !== 'string' || value === '') fail(field, 'expected a non-empty string');
}

function checkDays(begin: unknown, end: unknown, prefix: string): void {
  for (const [field, value] of [['begin', begin], ['end', end]] as const) {
    if (typeof value !== 'string' || !/^\d{4}-\d{2}-\d{2}/.test(value) || Number.isNaN(Date.parse(value.slice(0, 10)))) fail(`${prefix}${field}`, `expected an ISO date YYYY-MM-DD, got ${JSON.stringify(value)}`);
  }
  if (dayStart(begin as string) > dayStart(end as string)) fail(`${prefix}begin`, `${String(begin)} is after end ${String(end)}`);
}

function checkOperation(value: unknown, field: string): void {
  if (!isStatOperation(value)) fail(field, `expected an operationtype 0-5 (max, min, median, range, sum, avg), got ${JSON.stringify(value)}`);
}

/** The input of `climate.area_request`. */
export function checkAreaRequest(value: unknown): AreaRequest {
  if (!isRecord(value)) fail('request', 'expected an object');
  checkText(value.folder, 'request.folder');
  checkText(value.variable, 'request.variable');
  checkGeometry(value.geometry, 'request.geometry');
  checkOperation(value.operation, 'request.operation');
  checkDays(value.begin, value.end, 'request.');
  if (value.pattern !== undefined) {
    checkText(value.pattern, 'request.pattern');
    try {
      compileDatePattern(value.pattern as string);
    } catch (error) {
      fail('request.pattern', (error as Error).message);
    }
  }
  if (value.chunkSize !== undefined && !(Number.isInteger(value.chunkSize) && (value.chunkSize as number) > 0)) fail('request.chunkSize', 'expected a positive integer');
  return value as unknown as AreaRequest;
}

/** The input of `climate.area_values`. */
export function checkAreaChunk(value: unknown): AreaChunk {
  if (!isRecord(value)) fail('chunk', 'expected an object');
  if (!Array.isArray(value.files)) fail('chunk.files', 'expected a list of {path, date}');
  value.files.forEach((f: unknown, i: number) => {
    if (!isRecord(f) || typeof f.path !== 'string' || typeof f.date !== 'string' || Number.isNaN(Date.parse(f.date))) fail(`chunk.files[${i}]`, 'expected {path, date (ISO)}');
  });
  checkText(value.variable, 'chunk.variable');
  checkGeometry(value.geometry, 'chunk.geometry');
  checkOperation(value.operation, 'chunk.operation');
  checkDays(value.begin, value.end, 'chunk.');
  return value as unknown as AreaChunk;
}
