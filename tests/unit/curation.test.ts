/** Pure parts of the curation pipeline: index CSV, file-name pattern, settings, time axis, chunk runs, row selection. */
import { loadConfig } from '../../workers';
import { chunkRuns, curationSettings, formatIndex, parseIndex, rowFromName, selectRows, timeIndex, type IndexRow } from '../../workers/curation';

const base = loadConfig({ env: {} });
const settings = curationSettings({ curation: { ...base.curation, time_start: '2020-01-01T00:00:00Z', time_end: '2020-12-31T23:00:00Z' } });
const h = (iso: string) => Date.parse(iso);

const rows: IndexRow[] = [
  { file: '/d/a,b.nc', table: 128, param: 167, name: '2t', start: h('2020-01-01T00:00:00Z'), end: h('2020-01-31T23:00:00Z') },
  { file: '/d/m.nc', table: -1, param: -1, name: 'msl', start: h('2020-02-01T00:00:00Z'), end: h('2020-02-29T23:00:00Z') },
];

test('the index round-trips, with pandas date text, quoting, and a pandas index column', () => {
  const text = formatIndex(rows);
  expect(text.split('\n')[0]).toBe('file,table,param,name,start_date,end_date');
  expect(text).toContain('"/d/a,b.nc",128,167,2t,2020-01-01 00:00:00,2020-01-31 23:00:00');
  expect(parseIndex(text)).toEqual(rows);
  const pandas = ',file,table,param,name,start_date,end_date\n0,/d/m.nc,-1,-1,msl,2020-02-01,2020-02-29 23:00:00\n';
  expect(parseIndex(pandas)).toEqual([{ ...rows[1] }]);
  expect(() => parseIndex('file,name\nx,y\n')).toThrow(/lacks table, param, start_date, end_date/);
  expect(() => parseIndex('file,table,param,name,start_date,end_date\nx,1,2,t,yesterday,2020-01-01\n')).toThrow(/line 2: bad date 'yesterday'/);
});

test("cBottle's ERA5 file names give table, param, name and dates; other names give nothing", () => {
  expect(rowFromName('/era5/e5.oper.an.pl.128_130_t.ll025sc.2020010100_2020010123.nc', settings.filePattern)).toEqual({
    file: '/era5/e5.oper.an.pl.128_130_t.ll025sc.2020010100_2020010123.nc',
    table: 128,
    param: 130,
    name: 't',
    start: h('2020-01-01T00:00:00Z'),
    end: h('2020-01-01T23:00:00Z'),
  });
  expect(rowFromName('/era5/tcwv_extra.nc', settings.filePattern)).toBeNull();
});

test('settings: derived time axis, and bad values named', () => {
  expect(settings.timeSteps).toBe(366 * 24);
  expect(settings.regridCommand).toEqual(['cdo', '-s', 'remapbil,r360x180', '{input}', '{output}']);
  const bad = (over: Partial<typeof base.curation>) => () => curationSettings({ curation: { ...base.curation, ...over } });
  expect(bad({ grid: '180xabc' })).toThrow(/curation.grid/);
  expect(bad({ grid_dims: ['cells'] })).toThrow(/curation.grid_dims: 1 names for a 2-dimensional grid/);
  expect(bad({ regrid_command: 'cdo remapbil,r360x180 {input}' })).toThrow(/curation.regrid_command/);
  expect(bad({ file_pattern: '(' })).toThrow(/curation.file_pattern/);
  expect(bad({ time_end: '1939-01-01' })).toThrow(/curation.time_end: before time_start/);
  expect(bad({ level_variables: ['2t'] })).toThrow(/listed twice/);
});

test('time index: on the axis only', () => {
  expect(timeIndex(settings, h('2020-01-01T00:00:00Z'))).toBe(0);
  expect(timeIndex(settings, h('2020-01-02T01:00:00Z'))).toBe(25);
  expect(timeIndex(settings, h('2020-01-01T00:30:00Z'))).toBe(-1);
  expect(timeIndex(settings, h('2019-12-31T23:00:00Z'))).toBe(-1);
  expect(timeIndex(settings, h('2021-01-01T00:00:00Z'))).toBe(-1);
});

test('chunk runs: consecutive steps within one chunk, split at chunk edges and gaps', () => {
  expect(chunkRuns([0, 1, 2, 3], 4)).toEqual([[0, 4, 0]]);
  expect(chunkRuns([2, 3, 4, 5, 6], 4)).toEqual([
    [0, 2, 2],
    [2, 3, 4],
  ]);
  expect(chunkRuns([0, 2, 3], 4)).toEqual([
    [0, 1, 0],
    [1, 2, 2],
  ]);
});

test('row selection by variables and start date (years inclusive)', () => {
  expect(selectRows(rows, {}, { ...settings, variables: [{ name: '2t', levels: false }] }).map((r) => r.name)).toEqual(['2t']);
  expect(selectRows(rows, { variables: ['2t', 'msl'], from: '2020-02-01' }, settings).map((r) => r.name)).toEqual(['msl']);
  expect(selectRows(rows, { variables: ['2t', 'msl'], to: '2020' }, settings)).toHaveLength(2);
  expect(selectRows(rows, { variables: ['2t', 'msl'], to: '2020-01-31' }, settings).map((r) => r.name)).toEqual(['2t']);
  expect(() => selectRows(rows, { from: 'soon' }, settings)).toThrow(/--from: not a date/);
});
