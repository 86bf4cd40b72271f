/** Which cells of a window are in the area: cell centre inside the polygon, holes excluded. */
import booleanPointInPolygon from '@turf/boolean-point-in-polygon';
import { findLatLon, geometryBBox, gridKeyOf, gridWindow } from './grid';
import type { AreaGeometry, BBox, CellMask, GridWindow, NcReader } from './types';

/** The mask of a window (turf: boundary points count as inside, holes and other polygons handled). */
export function cellMask(window: GridWindow, geometry: AreaGeometry): CellMask {
  const width = window.lons.length;
  const inside = new Uint8Array(window.lats.length * width);
  let cellCount = 0;
  window.lats.forEach((lat, r) => {
    window.lons.forEach((lon, c) => {
      if (booleanPointInPolygon([lon, lat], geometry)) {
        inside[r * width + c] = 1;
        cellCount++;
      }
    });
  });
  return { window, inside, cellCount };
}

/**
 * The masks of one request's geometry, one per grid: files on the same grid (same coordinate
 * sizes and end points) share one window and one mask, computed for the first of them.
 */
export class MaskCache {
  readonly bbox: BBox;
  private readonly masks = new Map<string, CellMask>();

  constructor(readonly geometry: AreaGeometry) {
    this.bbox = geometryBBox(geometry);
  }

  /**
   * The mask for this file's grid of `variable`. A grid seen before is recognised by its
   * coordinates' sizes and end points; only a new grid has its coordinates read in full.
   */
  forFile(reader: NcReader, variable: string): CellMask {
    const names = findLatLon(reader, variable);
    const cached = this.masks.get(gridKeyOf(reader, names));
    if (cached) return cached;
    const window = gridWindow(reader, names, this.bbox);
    const mask = cellMask(window, this.geometry);
    this.masks.set(window.gridKey, mask);
    return mask;
  }

  get size(): number {
    return this.masks.size;
  }
}

const SHARED_LIMIT = 8;
const shared = new Map<string, MaskCache>();

/**
 * The MaskCache of a geometry shared by every task of this process: the chunks of one request
 * that land on the same pool process compute each grid's mask once, not once per chunk. Keeps
 * the last few geometries (least recently used dropped).
 */
export function sharedMaskCache(geometry: AreaGeometry): MaskCache {
  const key = JSON.stringify(geometry);
  const found = shared.get(key);
  if (found) {
    shared.delete(key);
    shared.set(key, found);
    return found;
  }
  const created = new MaskCache(geometry);
  shared.set(key, created);
  if (shared.size > SHARED_LIMIT) shared.delete(shared.keys().next().value as string);
  return created;
}
