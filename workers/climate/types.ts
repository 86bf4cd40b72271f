/**
 * The climate compute core's types: NetCDF reading, the lat/lon window of a request, the cell
 * mask, statistics and the per-file values. Everything a task sends or returns is plain JSON
 * (numbers, strings, arrays, objects), so it travels through Celery messages and result
 * documents unchanged and Python can read it.
 */

// ---------------------------------------------------------------- geometry

/** A GeoJSON position: [longitude, latitude] in degrees (WGS84, −180..180 / −90..90). */
export type Position = [number, number];

/** GeoJSON Polygon: the first ring is the outline, later rings are holes. */
export interface PolygonGeometry {
  type: 'Polygon';
  coordinates: Position[][];
}

/** GeoJSON MultiPolygon: several polygons, each with its own holes. */
export interface MultiPolygonGeometry {
  type: 'MultiPolygon';
  coordinates: Position[][][];
}

/** The area of a request (ClimateSERV's `geometry`). Other GeoJSON types are refused. */
export type AreaGeometry = PolygonGeometry | MultiPolygonGeometry;

/** A lon/lat box in degrees, west < east (longitudes −180..180). */
export interface BBox {
  west: number;
  south: number;
  east: number;
  north: number;
}

// ---------------------------------------------------------------- NetCDF reading

/** An attribute's value as the file stores it: text, one number, or several numbers. */
export type AttributeValue = string | number | number[];

export interface NcDimension {
  name: string;
  size: number;
}

/** A variable's metadata (no data is read to build it). */
export interface NcVariable {
  name: string;
  /** Dimension names, slowest-varying first (C order), e.g. ['time', 'lat', 'lon']. */
  dimensions: string[];
  shape: number[];
  /** Attributes of the variable (units, _FillValue, scale_factor, …). */
  attributes: Record<string, AttributeValue>;
}

/**
 * How a variable's stored numbers become values (CF conventions): a stored number equal to one
 * of `missing` (its `_FillValue` and `missing_value`) or NaN is missing; any other becomes
 * `stored * scale + offset` (`scale_factor`, `add_offset`; 1 and 0 when absent).
 */
export interface VariableEncoding {
  scale: number;
  offset: number;
  /** Stored (packed) values meaning "no data", compared before scaling. */
  missing: number[];
}

/** One contiguous run along one dimension: elements start..start+count-1. */
export interface Span {
  start: number;
  count: number;
}

/**
 * One open NetCDF file, NetCDF4/HDF5 (h5wasm) or classic CDF-1/CDF-2 (netcdfjs header, data read
 * at its offsets). Reads never load a whole grid: `readSlab` reads only the spans asked for.
 * Open with `openNetcdf(path)` (netcdf/open.ts); always `close()` (in a `finally`).
 */
export interface NcReader {
  readonly path: string;
  readonly format: 'netcdf4' | 'classic';
  dimensions(): NcDimension[];
  variables(): NcVariable[];
  /** undefined when the file has no variable of that name. */
  variable(name: string): NcVariable | undefined;
  /** The file's global attributes. */
  attributes(): Record<string, AttributeValue>;
  /** Every stored value of a (small, e.g. coordinate) variable, unscaled, as float64. */
  readAll(name: string): Float64Array;
  /**
   * The stored values (unscaled, missing values as stored) of the hyperslab given by one span
   * per dimension of the variable, in C order (last dimension fastest), as float64.
   */
  readSlab(name: string, spans: Span[]): Float64Array;
  close(): void;
}

// ---------------------------------------------------------------- grid, window, mask

/**
 * The part of a file's lat/lon grid that a request's bbox covers. Rows are a contiguous span of
 * the file's latitude index (ascending or descending, as the file has it); columns are one or
 * two spans of its longitude index (two when a 0..360 grid is cut at 0° by a bbox crossing the
 * prime meridian), concatenated west to east. The window's values are rows × cols, row-major.
 */
export interface GridWindow {
  latName: string;
  lonName: string;
  rows: Span;
  cols: Span[];
  /** Latitude of each window row's cell centre (file order). */
  lats: number[];
  /** Longitude of each window column's cell centre, normalised to −180..180. */
  lons: number[];
  /** Identifies the file's grid (sizes and end points of lat/lon): same key, same window and mask. */
  gridKey: string;
}

/**
 * Which cells of a window are in the area: `inside[r * lons.length + c]` is 1 when the centre of
 * cell (r, c) is inside the polygon (boundary counts as inside, holes excluded). Computed once
 * per (geometry, grid) and reused for every file on that grid.
 */
export interface CellMask {
  window: GridWindow;
  inside: Uint8Array;
  /** Cells inside. 0 means the area covers no cell centre of this grid. */
  cellCount: number;
}

// ---------------------------------------------------------------- statistics

/** ClimateSERV's `operationtype` for statistics: 0 max, 1 min, 2 median, 3 range, 4 sum, 5 average. */
export type StatOperation = 0 | 1 | 2 | 3 | 4 | 5;

/** The JSON key of each operation's value in ClimateSERV's answer (`{"avg": 1.2}`). */
export type StatKey = 'max' | 'min' | 'median' | 'range' | 'sum' | 'avg';

/** ClimateSERV's value for a step where no cell of the area has data. */
export const MISSING_VALUE = -9999;

// ---------------------------------------------------------------- dated files and values

/** A data file and the instant its name encodes (from the dataset's date pattern). */
export interface DatedFile {
  path: string;
  /** ISO 8601 UTC, e.g. '2020-03-01T00:00:00.000Z'. */
  date: string;
}

/** One value: one time step of one file over the area. */
export interface StepValue {
  /** ISO 8601 UTC instant of the step. */
  date: string;
  /** Seconds since the epoch (ClimateSERV sends it as a string; format it at the API). */
  epochTime: number;
  /** The statistic, or MISSING_VALUE (−9999) when every cell of the area is missing. */
  value: number;
  /** Cells that had data (0 with value −9999). */
  validCells: number;
  file: string;
}

/** Something that did not stop the job but the user should know (ClimateSERV's job warnings). */
export interface ClimateWarning {
  /** The file it is about, when it is about one. */
  file?: string;
  /** ISO date of the step, when it is about one step. */
  date?: string;
  message: string;
}

/** Values of some files, in date order, with what went wrong along the way. */
export interface AreaValues {
  values: StepValue[];
  warnings: ClimateWarning[];
}
