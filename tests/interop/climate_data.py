"""Test data and reference values for the climate compute core (workers/climate).

    python climate_data.py generate DIR    -> writes the files below and prints a JSON manifest
    python climate_data.py reference JSON  -> JSON {"values": [...]} computed with netCDF4 +
                                              numpy + shapely on the same files
    (JSON on stdin: {"files": [{"path", "date"}], "variable", "geometry"})

Data sets written by the real netCDF4 library:
- `nc4/`: NetCDF4 (zlib), float32 precipitation, _FillValue -9999, latitude ascending, longitude
  -180..180, one step per file, ClimateSERV names (`*YYYYMMDDTHHMMSSZ*.nc4`), days crossing a
  year; one day entirely missing; plus a truncated copy and a text file with valid names.
- `classic/`: classic CDF-2 (64-bit offset), int16 packed (scale_factor 0.1, add_offset 5),
  _FillValue and missing_value, latitude descending, longitude 0..360 (a bbox crossing 0° cuts
  it in two), names `chirp_YYYY.MM.DD.nc`.
- `multistep/`: three daily steps with CF time units in one file, NetCDF4 and classic CDF-1
  (record dimension, two interleaved record variables).
The geometry is a MultiPolygon with a hole, crossing the prime meridian, with vertices off the
cell-centre lattice so no centre lies on an edge.
"""
import json
import os
import sys
from datetime import datetime, timedelta, timezone

import numpy as np
import netCDF4
import shapely
from shapely.geometry import shape

GEOMETRY = {
    "type": "MultiPolygon",
    "coordinates": [
        [
            [[-6.13, -3.07], [8.11, -3.07], [8.11, 4.09], [-6.13, 4.09], [-6.13, -3.07]],
            [[-2.03, -1.11], [3.07, -1.11], [3.07, 2.03], [-2.03, 2.03], [-2.03, -1.11]],
        ],
        [[[10.07, -4.03], [16.13, -4.03], [13.09, 1.07], [10.07, -4.03]]],
    ],
}

NC4_DAYS = [datetime(2019, 12, 29, tzinfo=timezone.utc) + timedelta(days=i) for i in range(6)]
CLASSIC_DAYS = [datetime(2020, 3, 1, tzinfo=timezone.utc) + timedelta(days=i) for i in range(4)]


def rain(rng, shape_, fill_fraction):
    data = rng.gamma(0.8, 6.0, size=shape_).astype("f8")
    missing = rng.random(shape_) < fill_fraction
    return data, missing


def define_grid(ds, steps, lats, lons, units=True):
    """Dimensions time/lat/lon and the lat/lon coordinates (units, or only the names, to find them)."""
    ds.createDimension("time", steps)
    ds.createDimension("lat", len(lats))
    ds.createDimension("lon", len(lons))
    for name, values, unit in (("lat", lats, "degrees_north"), ("lon", lons, "degrees_east")):
        var = ds.createVariable(name, "f8", (name,))
        if units:
            var.units = unit
        var[:] = values


def write_nc4(folder, rng):
    os.makedirs(folder, exist_ok=True)
    lats = np.arange(-8 + 0.125, 8, 0.25)  # ascending
    lons = np.arange(-10 + 0.125, 20, 0.25)
    paths = []
    for i, day in enumerate(NC4_DAYS):
        path = os.path.join(folder, f"ucsb-chirps.{day:%Y%m%dT%H%M%SZ}.africa.0.25deg.daily.nc4")
        with netCDF4.Dataset(path, "w", format="NETCDF4") as ds:
            define_grid(ds, 1, lats, lons)
            t = ds.createVariable("time", "f8", ("time",))
            t.units = "days since 1980-01-01 00:00:00"
            t[:] = [(day - datetime(1980, 1, 1, tzinfo=timezone.utc)).days]
            v = ds.createVariable("precipitation", "f4", ("time", "lat", "lon"), zlib=True, fill_value=-9999.0)
            v.units = "mm/day"
            data, missing = rain(rng, (1, len(lats), len(lons)), 0.1)
            if i == 3:
                missing[:] = True  # a day with no data at all
            v[:] = np.ma.masked_array(data.astype("f4"), mask=missing)
        paths.append(path)
    return paths


def write_classic(folder, rng):
    os.makedirs(folder, exist_ok=True)
    lats = np.arange(8 - 0.25, -8, -0.5)  # descending
    lons = np.arange(0.25, 360, 0.5)  # 0..360
    paths = []
    for day in CLASSIC_DAYS:
        path = os.path.join(folder, f"chirp_{day:%Y.%m.%d}.nc")
        with netCDF4.Dataset(path, "w", format="NETCDF3_64BIT_OFFSET") as ds:
            ds.createDimension("time", None)
            ds.createDimension("latitude", len(lats))
            ds.createDimension("longitude", len(lons))
            la = ds.createVariable("latitude", "f4", ("latitude",))
            la.units = "degrees_north"
            la[:] = lats
            lo = ds.createVariable("longitude", "f4", ("longitude",))
            lo.units = "degrees_east"
            lo[:] = lons
            v = ds.createVariable("precip", "i2", ("time", "latitude", "longitude"), fill_value=np.int16(-32767))
            v.scale_factor = np.float64(0.1)
            v.add_offset = np.float64(5.0)
            v.missing_value = np.int16(-32768)
            v.set_auto_maskandscale(False)
            data, missing = rain(rng, (1, len(lats), len(lons)), 0.15)
            packed = np.round((data - 5.0) / 0.1).astype("i2")
            packed[missing] = -32767
            packed[(rng.random(packed.shape) < 0.05)] = -32768
            v[0:1] = packed
        paths.append(path)
    return paths


def write_multistep(folder, rng):
    """The same three daily steps as NetCDF4 and as classic CDF-1, where time is the record
    (unlimited) dimension and two record variables interleave record by record."""
    os.makedirs(folder, exist_ok=True)
    lats = np.arange(-8 + 0.125, 8, 0.25)
    lons = np.arange(-10 + 0.125, 20, 0.25)
    data, missing = rain(rng, (3, len(lats), len(lons)), 0.2)
    paths = []
    for name, fmt in (("imerg.20200110T000000Z.3day.nc4", "NETCDF4"), ("imerg.20200110T000000Z.3day.classic.nc4", "NETCDF3_CLASSIC")):
        path = os.path.join(folder, name)
        classic = fmt != "NETCDF4"
        with netCDF4.Dataset(path, "w", format=fmt) as ds:
            define_grid(ds, None if classic else 3, lats, lons, units=False)
            t = ds.createVariable("time", "i4", ("time",))
            t.units = "hours since 2020-01-10 00:00:00"
            t.calendar = "standard"
            t[:] = [0, 24, 48]
            v = ds.createVariable("precipitation", "f4", ("time", "lat", "lon"), zlib=not classic, fill_value=np.float32(-9999.9))
            v[:] = np.ma.masked_array(data.astype("f4"), mask=missing)
        paths.append(path)
    return paths


def generate(root):
    rng = np.random.default_rng(12)
    nc4 = write_nc4(os.path.join(root, "nc4"), rng)
    # A truncated copy and a non-NetCDF file, both with names the pattern accepts.
    with open(nc4[1], "rb") as f:
        head = f.read(3000)
    truncated = os.path.join(root, "nc4", "ucsb-chirps.20200105T000000Z.africa.0.25deg.daily.nc4")
    with open(truncated, "wb") as f:
        f.write(head)
    text = os.path.join(root, "nc4", "ucsb-chirps.20200106T000000Z.africa.0.25deg.daily.nc4")
    with open(text, "w") as f:
        f.write("not a netcdf file\n")
    classic = write_classic(os.path.join(root, "classic"), rng)
    multistep = write_multistep(os.path.join(root, "multistep"), rng)
    geometry_path = os.path.join(root, "geometry.json")
    with open(geometry_path, "w") as f:
        json.dump(GEOMETRY, f)
    return {"nc4": nc4, "corrupt": [truncated, text], "classic": classic, "multistep": multistep, "geometry": GEOMETRY}


def statistics(values):
    if values.size == 0:
        return {k: -9999.0 for k in ("max", "min", "median", "range", "sum", "avg")}, 0
    return {
        "max": float(values.max()),
        "min": float(values.min()),
        "median": float(np.median(values)),
        "range": float(np.ptp(values)),
        "sum": float(values.sum()),
        "avg": float(values.mean()),
    }, int(values.size)


def step_dates(ds, file_date, steps):
    if steps == 1:
        return [file_date]
    t = ds.variables["time"]
    dates = netCDF4.num2date(t[:], t.units, getattr(t, "calendar", "standard"), only_use_cftime_datetimes=False)
    return [d.replace(tzinfo=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z") for d in dates]


def reference(request):
    geometry = shape(request["geometry"])
    shapely.prepare(geometry)
    out = []
    for item in request["files"]:
        with netCDF4.Dataset(item["path"]) as ds:
            var = ds.variables[request["variable"]]
            lat_name, lon_name = var.dimensions[-2:]
            lats = np.asarray(ds.variables[lat_name][:], dtype="f8")
            lons = np.asarray(ds.variables[lon_name][:], dtype="f8")
            lons = (lons + 180) % 360 - 180
            lon2, lat2 = np.meshgrid(lons, lats)
            # Cell centre inside (edges count: for a point, intersects = covers), holes excluded.
            inside = shapely.intersects_xy(geometry, lon2, lat2)
            data = var[:]  # netCDF4 masks _FillValue/missing_value and applies scale/offset
            steps = data.shape[0] if data.ndim == 3 else 1
            for i, date in enumerate(step_dates(ds, item["date"], steps)):
                grid = data[i] if data.ndim == 3 else data
                grid = np.ma.masked_invalid(np.ma.asarray(grid).astype("f8"))
                values = grid[inside].compressed()
                stats, n = statistics(values)
                out.append({"file": item["path"], "date": date, "stats": stats, "validCells": n, "cells": int(inside.sum())})
    return {"values": out}


if __name__ == "__main__":
    if sys.argv[1] == "generate":
        print(json.dumps(generate(sys.argv[2])))
    elif sys.argv[1] == "reference":
        print(json.dumps(reference(json.load(sys.stdin))))
    else:
        raise SystemExit(f"unknown command {sys.argv[1]}")
