"""The Python side of `npm run bench -- --suite climate` (scripts/bench/climate.ts).

    python climate_bench.py generate DIR DAYS   -> daily 0.05 deg Africa grids (NetCDF4, zlib),
                                                   reused when DIR already holds them
    python climate_bench.py xarray   JSON       -> the path ClimateSERV runs: xarray
                                                   open_mfdataset (dask) + regionmask + mean
    python climate_bench.py loop     JSON       -> netCDF4 + numpy, one file at a time
(JSON: {"files": [...], "variable": "precipitation", "geometry": GeoJSON, "subset": bool})

Each run prints one JSON line: seconds (after imports, to the values in memory), peak RSS of the
process (KiB, getrusage: dask's threads are in it) and the values, for the cross-check.
"""
import json
import os
import resource
import sys
import time
from datetime import datetime, timedelta, timezone

import numpy as np

GEOMETRY = {
    # A country-sized polygon in East Africa (about 8 x 10 degrees, 30,000 cells at 0.05 deg).
    "type": "Polygon",
    "coordinates": [[
        [33.97, -1.02], [34.08, -4.68], [37.61, -3.03], [39.21, -4.69], [41.56, -1.68],
        [40.99, 2.81], [41.91, 3.98], [38.12, 3.59], [35.82, 5.33], [33.89, 4.61],
        [34.99, 1.12], [33.97, -1.02],
    ]],
}


def generate(folder, days):
    import netCDF4

    os.makedirs(folder, exist_ok=True)
    lats = np.round(np.arange(-40 + 0.025, 40, 0.05), 3)
    lons = np.round(np.arange(-20 + 0.025, 55, 0.05), 3)
    lon2, lat2 = np.meshgrid(lons, lats)
    # "Land": an ellipse roughly where Africa is; the sea is _FillValue, as in CHIRPS.
    land = ((lon2 - 20) / 32) ** 2 + ((lat2 - 2) / 37) ** 2 < 1
    rng = np.random.default_rng(2024)
    start = datetime(2021, 1, 1, tzinfo=timezone.utc)
    files = []
    for i in range(days):
        day = start + timedelta(days=i)
        path = os.path.join(folder, f"ucsb-chirps.{day:%Y%m%dT%H%M%SZ}.africa.0.05deg.daily.nc4")
        files.append(path)
        if os.path.exists(path):
            continue
        rain = np.round(rng.gamma(0.6, 8.0, size=lats.shape + lons.shape), 1)
        rain[rng.random(rain.shape) < 0.55] = 0.0
        rain[~land] = -9999.0
        tmp = path + ".part"
        with netCDF4.Dataset(tmp, "w", format="NETCDF4") as ds:
            ds.createDimension("time", 1)
            ds.createDimension("latitude", len(lats))
            ds.createDimension("longitude", len(lons))
            t = ds.createVariable("time", "f8", ("time",))
            t.units = "days since 1980-1-1 0:0:0"
            t[:] = [(day - datetime(1980, 1, 1, tzinfo=timezone.utc)).days]
            la = ds.createVariable("latitude", "f4", ("latitude",))
            la.units = "degrees_north"
            la[:] = lats
            lo = ds.createVariable("longitude", "f4", ("longitude",))
            lo.units = "degrees_east"
            lo[:] = lons
            v = ds.createVariable("precipitation", "f4", ("time", "latitude", "longitude"), zlib=True, complevel=4, shuffle=True, chunksizes=(1, 256, 256), fill_value=-9999.0)
            v.units = "mm/day"
            v[0] = rain.astype("f4")
        os.replace(tmp, path)
    return {"files": files, "geometry": GEOMETRY}


def peak_rss_kib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def run_xarray(req):
    import regionmask
    import xarray as xr
    from shapely.geometry import shape

    t0 = time.perf_counter()
    # parallel=False: opening files from dask threads segfaulted netCDF4/HDF5 here (SIGSEGV).
    ds = xr.open_mfdataset(req["files"], combine="nested", concat_dim="time", parallel=False)
    da = ds[req["variable"]]
    if req.get("subset"):
        minx, miny, maxx, maxy = shape(req["geometry"]).bounds
        da = da.sel(latitude=slice(miny, maxy), longitude=slice(minx, maxx))
    regions = regionmask.Regions([shape(req["geometry"])])
    mask = regions.mask(da.longitude, da.latitude)  # 0 inside, NaN outside (cell centres)
    means = da.where(mask == 0).mean(dim=("latitude", "longitude")).compute()
    values = [float(v) for v in means.values]
    seconds = time.perf_counter() - t0
    ds.close()
    return {"seconds": seconds, "peak_rss_kib": peak_rss_kib(), "values": values}


def run_loop(req):
    import netCDF4
    import shapely
    from shapely.geometry import shape

    t0 = time.perf_counter()
    geometry = shape(req["geometry"])
    shapely.prepare(geometry)
    minx, miny, maxx, maxy = geometry.bounds
    values = []
    window = None
    for path in req["files"]:
        with netCDF4.Dataset(path) as ds:
            var = ds.variables[req["variable"]]
            if window is None:
                lats = ds.variables["latitude"][:]
                lons = ds.variables["longitude"][:]
                rows = np.nonzero((lats >= miny) & (lats <= maxy))[0]
                cols = np.nonzero((lons >= minx) & (lons <= maxx))[0]
                window = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
                lon2, lat2 = np.meshgrid(lons[window[1]], lats[window[0]])
                inside = shapely.intersects_xy(geometry, lon2, lat2)
            grid = var[0, window[0], window[1]]
            cells = np.ma.masked_invalid(grid.astype("f8"))[inside].compressed()
            values.append(float(cells.mean()) if cells.size else -9999.0)
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "peak_rss_kib": peak_rss_kib(), "values": values}


if __name__ == "__main__":
    command = sys.argv[1]
    if command == "generate":
        print(json.dumps(generate(sys.argv[2], int(sys.argv[3]))))
    elif command == "xarray":
        print(json.dumps(run_xarray(json.loads(sys.stdin.read()))))
    elif command == "loop":
        print(json.dumps(run_loop(json.loads(sys.stdin.read()))))
    else:
        raise SystemExit(f"unknown command {command}")
