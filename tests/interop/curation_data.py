"""Test data and the reference check for the curation pipeline (workers/curation).

    python curation_data.py generate DIR   -> writes ERA5-like NetCDF4 files, prints their paths (JSON)
    python curation_data.py done STORE     -> JSON {file: bool}: is each regridded file's slice in the
                                              store (stdin: JSON {"files": [regridded paths]})
    python curation_data.py verify STORE   -> JSON report: xarray opens the store; each regridded
                                              file's values equal the store at its time indices

Files (written by netCDF4): 6-hourly daily files, 4 steps each, on a 10-degree 19x36 grid:
`2t` as float32 VAR_2T with short_name '2t' and _FillValue (some cells missing), `msl` packed
int16 (scale_factor, add_offset), both under cBottle's ERA5 names; `tcwv` under a name the
pattern does not match (the index reads its dates from the time variable).
"""
import json
import os
import sys
from datetime import datetime, timedelta

import numpy as np
import netCDF4

DAYS = [datetime(2020, 1, 1) + timedelta(days=i) for i in range(4)]
LAT = np.arange(-90, 91, 10, dtype="f8")
LON = np.arange(0, 360, 10, dtype="f8")


def write(path, var, short, day, packed=False, seed=0, fill=False, lat=LAT, lon=LON, steps=4, step_hours=6):
    """One file of `steps` steps from `day` 00:00 (also used by scripts/bench/curation_bench.py)."""
    rng = np.random.default_rng(seed)
    with netCDF4.Dataset(path, "w", format="NETCDF4") as ds:
        ds.createDimension("time", None)
        ds.createDimension("latitude", lat.size)
        ds.createDimension("longitude", lon.size)
        t = ds.createVariable("time", "f8", ("time",))
        t.units = "hours since 1900-01-01 00:00:00"
        t.calendar = "gregorian"
        t.standard_name = "time"
        base = (day - datetime(1900, 1, 1)).total_seconds() / 3600
        t[:] = base + np.arange(steps) * step_hours
        la = ds.createVariable("latitude", "f8", ("latitude",))
        la.units = "degrees_north"
        la.standard_name = "latitude"
        la[:] = lat
        lo = ds.createVariable("longitude", "f8", ("longitude",))
        lo.units = "degrees_east"
        lo.standard_name = "longitude"
        lo[:] = lon
        values = 250 + 40 * rng.random((steps, lat.size, lon.size))
        if packed:
            v = ds.createVariable(var, "i2", ("time", "latitude", "longitude"), fill_value=np.int16(-32767))
            v.scale_factor = 0.01
            v.add_offset = 270.0
        else:
            v = ds.createVariable(var, "f4", ("time", "latitude", "longitude"), fill_value=None if fill is None else np.float32(-9999.0), zlib=fill is not None)
        if short:
            v.short_name = short
        v.units = "K"
        if fill:  # None: no _FillValue, uncompressed (the bench's plain float32 files)
            values = np.ma.masked_array(values, mask=np.zeros(values.shape, bool))
            values.mask[:, 0, :5] = True
        v[:] = values


def generate(folder):
    os.makedirs(folder, exist_ok=True)
    files = []
    for i, day in enumerate(DAYS[:3]):
        stamp = f"{day:%Y%m%d}00_{day:%Y%m%d}18"
        p = os.path.join(folder, f"e5.oper.an.sfc.128_167_2t.ll025sc.{stamp}.nc")
        write(p, "VAR_2T", "2t", day, seed=i, fill=True)
        files.append(p)
        p = os.path.join(folder, f"e5.oper.an.sfc.128_151_msl.ll025sc.{stamp}.nc")
        write(p, "msl", None, day, packed=True, seed=10 + i)
        files.append(p)
    p = os.path.join(folder, "tcwv_extra_day4.nc")
    write(p, "tcwv", None, DAYS[3], seed=20)
    files.append(p)
    print(json.dumps(files))


def store_name(ds_var):
    return ds_var.attrs.get("short_name") or ds_var.name


def load_file(path):
    import xarray as xr

    with xr.open_dataset(path) as ds:
        ds = ds.load()
    (name,) = [v for v in ds.data_vars if "time" in ds[v].dims]
    return store_name(ds[name]), ds[name], ds["time"].values


def done(store):
    import zarr

    files = json.load(sys.stdin)["files"]
    g = zarr.open_group(store, mode="r")
    times = g["time"][:]
    start = np.datetime64("2020-01-01T00:00")
    out = {}
    for f in files:
        name, da, t = load_file(f)
        idx = ((t - start) // np.timedelta64(1, "m") - 0).astype(int)
        idx = np.searchsorted(times, idx)
        out[f] = bool(not np.isnan(g[name][idx.min() : idx.max() + 1]).all())
    print(json.dumps(out))


def verify(store):
    import xarray as xr

    files = json.load(sys.stdin)["files"]
    ds = xr.open_zarr(store, consolidated=False)
    report = {"dims": {v: list(ds[v].dims) for v in ds.data_vars}, "time0": str(ds.time.values[0]), "time_len": int(ds.time.size), "files": {}}
    for f in files:
        name, da, t = load_file(f)
        got = ds[name].sel(time=t).values
        want = da.values.astype("f4")
        same = bool(np.array_equal(got, want, equal_nan=True))
        report["files"][f] = {"name": name, "equal": same, "nan": int(np.isnan(want).sum()), "steps": int(len(t))}
    print(json.dumps(report))


if __name__ == "__main__":
    cmd, arg = sys.argv[1], sys.argv[2]
    {"generate": generate, "done": done, "verify": verify}[cmd](arg)
