/** The pipeline's settings, checked and derived once from the `curation` config section. */
import type { Config } from '../index';

export interface StoreVariable {
  name: string;
  /** true: time × levels × grid; false: time × grid. */
  levels: boolean;
}

export interface CurationSettings {
  index: string;
  filePattern: RegExp;
  regridCommand: string[];
  regridOutput: string;
  zarr: string;
  variables: StoreVariable[];
  levels: number;
  grid: number[];
  gridDims: string[];
  /** ms since the epoch of time index 0. */
  timeStartMs: number;
  timeSteps: number;
  stepMs: number;
  timeChunk: number;
}

function instant(text: string, key: string): number {
  const ms = Date.parse(/[zZ]|[+-]\d\d:?\d\d$/.test(text) ? text : `${text}Z`);
  if (Number.isNaN(ms)) throw new Error(`curation.${key}: not an ISO date: '${text}'`);
  return ms;
}

/** Throws naming the key when a setting is unusable (commands and tasks report it as is). */
export function curationSettings(config: Pick<Config, 'curation'>): CurationSettings {
  const c = config.curation;
  let filePattern: RegExp;
  try {
    filePattern = new RegExp(c.file_pattern);
  } catch (error) {
    throw new Error(`curation.file_pattern: ${(error as Error).message}`, { cause: error });
  }
  const grid = c.grid.split('x').map((n) => Number(n));
  if (grid.some((n) => !Number.isInteger(n) || n <= 0)) throw new Error(`curation.grid: '${c.grid}' is not like '180x360' or '49152'`);
  if (grid.length !== c.grid_dims.length) throw new Error(`curation.grid_dims: ${c.grid_dims.length} names for a ${grid.length}-dimensional grid '${c.grid}'`);
  const regridCommand = c.regrid_command.trim().split(/\s+/);
  if (!regridCommand.includes('{input}') || !regridCommand.includes('{output}')) throw new Error('curation.regrid_command: needs {input} and {output} as words of their own');
  const start = instant(c.time_start, 'time_start');
  const end = instant(c.time_end, 'time_end');
  const stepMs = c.time_step_minutes * 60_000;
  if (end < start) throw new Error('curation.time_end: before time_start');
  const names = [...c.variables, ...c.level_variables];
  if (new Set(names).size !== names.length) throw new Error('curation.variables/level_variables: a name is listed twice');
  return {
    index: c.index,
    filePattern,
    regridCommand,
    regridOutput: c.regrid_output,
    zarr: c.zarr,
    variables: [...c.variables.map((name) => ({ name, levels: false })), ...c.level_variables.map((name) => ({ name, levels: true }))],
    levels: c.levels,
    grid,
    gridDims: c.grid_dims,
    timeStartMs: start,
    timeSteps: Math.floor((end - start) / stepMs) + 1,
    stepMs,
    timeChunk: c.time_chunk,
  };
}

/** The store index of an instant, or -1 when it is off the axis (outside, or between steps). */
export function timeIndex(settings: CurationSettings, ms: number): number {
  const offset = ms - settings.timeStartMs;
  if (offset < 0 || offset % settings.stepMs !== 0) return -1;
  const i = offset / settings.stepMs;
  return i < settings.timeSteps ? i : -1;
}
