"""The climate job API driven the way ClimateSERV's scripts drive it (requests, GET query strings
or POSTed forms), with reference values computed by netCDF4 + numpy + shapely on the same files.

    python climate_jobs_client.py generate DIR FIRST_DAY DAYS [ROWS COLS]
        daily NetCDF4 files (ClimateSERV names, zlib, _FillValue -9999, ~10% missing cells, the
        4th day all missing) and one truncated file with a valid name; prints {"files": [...]}
    python climate_jobs_client.py run '<json>'
        {"base", "params", "method": "GET"|"POST", "data_dir", "timeout"}: submit, poll progress,
        fetch the answer, compare; prints one JSON line (see run())
"""
import io
import json
import os
import sys
import time
import zipfile
from datetime import datetime, timedelta, timezone

import netCDF4
import numpy as np
import requests
import shapely
from shapely.geometry import shape

LAT0, LON0, STEP = 0.0, 30.0, 0.25


def generate(folder, first_day, days, rows=16, cols=24):
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(12)
    lats = LAT0 + STEP / 2 + STEP * np.arange(rows)
    lons = LON0 + STEP / 2 + STEP * np.arange(cols)
    start = datetime.strptime(first_day, "%Y-%m-%d").replace(tzinfo=timezone.utc)
    files = []
    for i in range(days):
        day = start + timedelta(days=i)
        path = os.path.join(folder, f"chirps.{day:%Y%m%dT%H%M%SZ}.daily.nc4")
        with netCDF4.Dataset(path, "w", format="NETCDF4") as ds:
            ds.createDimension("time", 1)
            ds.createDimension("lat", rows)
            ds.createDimension("lon", cols)
            t = ds.createVariable("time", "f8", ("time",))
            t.units = "days since 1970-01-01 00:00:00"
            t[:] = [(day - datetime(1970, 1, 1, tzinfo=timezone.utc)).days]
            ds.createVariable("lat", "f8", ("lat",))[:] = lats
            ds.createVariable("lon", "f8", ("lon",))[:] = lons
            v = ds.createVariable("precipitation", "f4", ("time", "lat", "lon"), zlib=True, fill_value=-9999.0)
            data = rng.gamma(0.8, 6.0, size=(1, rows, cols)).astype("f4")
            missing = rng.random((1, rows, cols)) < 0.1
            if i == 3:
                missing[:] = True
            v[:] = np.ma.masked_array(data, mask=missing)
        files.append(path)
    # A file with a valid name that is not NetCDF: a warning on the job, never a failed job.
    bad_day = start + timedelta(days=days)
    bad = os.path.join(folder, f"chirps.{bad_day:%Y%m%dT%H%M%SZ}.daily.nc4")
    with open(files[0], "rb") as src, open(bad, "wb") as dst:
        dst.write(src.read()[:300])
    print(json.dumps({"files": files, "corrupt": bad}))


def day_files(folder, begin, end):
    """Readable files of the folder between begin and end (MM/DD/YYYY), in date order."""
    b = datetime.strptime(begin, "%m/%d/%Y")
    e = datetime.strptime(end, "%m/%d/%Y")
    out = []
    for name in sorted(os.listdir(folder)):
        day = datetime.strptime(name.split(".")[1], "%Y%m%dT%H%M%SZ")
        if b <= day <= e:
            try:
                netCDF4.Dataset(os.path.join(folder, name)).close()
            except OSError:
                continue
            out.append((day, os.path.join(folder, name)))
    return out


def clipped(path, geom):
    """The file's grid with cells outside the area or missing set to NaN, plus lats and lons."""
    with netCDF4.Dataset(path) as ds:
        lats = ds["lat"][:].data
        lons = ds["lon"][:].data
        values = ds["precipitation"][0]
    lon2, lat2 = np.meshgrid(lons, lats)
    inside = shapely.intersects_xy(geom, lon2, lat2)
    grid = np.where(inside & ~np.ma.getmaskarray(values), np.ma.getdata(values).astype("f8"), np.nan)
    return grid, lats, lons, inside


OPS = {0: ("max", np.max), 1: ("min", np.min), 2: ("median", np.median), 3: ("range", np.ptp), 4: ("sum", np.sum), 5: ("avg", np.mean)}


def reference(folder, params):
    geom = shape(json.loads(params["geometry"]))
    key, fn = OPS[int(params["operationtype"])]
    out = []
    for day, path in day_files(folder, params["begintime"], params["endtime"]):
        grid, _, _, _ = clipped(path, geom)
        valid = grid[~np.isnan(grid)]
        value = float(fn(valid)) if valid.size else -9999.0
        out.append({"date": day.strftime("%m/%d/%Y"), "epochTime": str(int(day.replace(tzinfo=timezone.utc).timestamp())), "key": key, "value": value})
    return out


def wait_done(base, job, timeout):
    seen = []
    deadline = time.time() + timeout
    while time.time() < deadline:
        r = requests.get(f"{base}/api/getDataRequestProgress/", params={"id": job}, timeout=30)
        r.raise_for_status()
        p = r.json()[0]
        if not seen or seen[-1] != p:
            seen.append(p)
        if p == 100 or p == -1:
            return seen
        time.sleep(0.2)
    raise SystemExit(f"job {job} not done after {timeout} s; progress seen {seen}")


def compare_download(content, op, folder, params):
    geom = shape(json.loads(params["geometry"]))
    days = day_files(folder, params["begintime"], params["endtime"])
    z = zipfile.ZipFile(io.BytesIO(content))
    names = sorted(z.namelist())
    out = {"names": names, "max_abs_diff": 0.0, "nan_mismatch": 0, "steps": 0}

    def diff(got, want):
        # The files hold the area's window; compare on the cells they cover, by coordinates.
        both = ~np.isnan(got) & ~np.isnan(want)
        out["nan_mismatch"] += int(np.sum(np.isnan(got) != np.isnan(want)))
        if both.any():
            out["max_abs_diff"] = max(out["max_abs_diff"], float(np.max(np.abs(got[both] - want[both]))))
        out["valid_cells"] = out.get("valid_cells", 0) + int(both.sum())

    def window(grid, lats, lons, glats, glons):
        ri = [int(np.argmin(np.abs(lats - y))) for y in glats]
        ci = [int(np.argmin(np.abs(lons - x))) for x in glons]
        return grid[np.ix_(ri, ci)]

    if op == 6:
        import rasterio
        from rasterio.io import MemoryFile
        out["crs"], out["nodata"] = set(), set()
        for (day, path), name in zip(days, names):
            with MemoryFile(z.read(name)) as mem, mem.open() as tif:
                out["crs"].add(str(tif.crs))
                out["nodata"].add(tif.nodata)
                band = tif.read(1).astype("f8")
                band[band == tif.nodata] = np.nan
                t = tif.transform
                glons = [t.c + t.a * (j + 0.5) for j in range(tif.width)]
                glats = [t.f + t.e * (i + 0.5) for i in range(tif.height)]
            grid, lats, lons, _ = clipped(path, geom)
            diff(band, window(grid, lats, lons, glats, glons))
            out["steps"] += 1
        out["crs"], out["nodata"] = sorted(out["crs"]), sorted(out["nodata"])
    elif op == 7:
        import xarray as xr
        tmp = os.path.join(folder, "..", "opened.nc")
        with open(tmp, "wb") as f:
            f.write(z.read(names[0]))
        with xr.open_dataset(tmp) as ds:
            out["dims"] = {k: int(v) for k, v in ds.sizes.items()}
            out["times"] = [str(t)[:10] for t in ds["time"].values]
            for i, (day, path) in enumerate(days):
                grid, lats, lons, _ = clipped(path, geom)
                got = ds["precipitation"].isel(time=i).values.astype("f8")
                diff(got, window(grid, lats, lons, ds["lat"].values, ds["lon"].values))
                out["steps"] += 1
        os.remove(tmp)
    else:
        text = z.read(names[0]).decode()
        rows = [line.split(",") for line in text.strip().split("\n")[1:]]
        out["rows"] = len(rows)
        want = 0
        for day, path in days:
            grid, _, _, _ = clipped(path, geom)
            want += int(np.sum(~np.isnan(grid)))
        out["expected_rows"] = want
        out["steps"] = len({r[0] for r in rows})
    return out


def run(spec):
    base, params, folder = spec["base"], spec["params"], spec["data_dir"]
    if spec.get("method") == "POST":
        r = requests.post(f"{base}/api/submitDataRequest/", data=params, timeout=30)
    else:
        r = requests.get(f"{base}/api/submitDataRequest/", params=params, timeout=30)
    if r.status_code != 200:
        raise SystemExit(f"submit answered {r.status_code}: {r.text}")
    job = r.json()[0]
    seen = wait_done(base, job, spec.get("timeout", 60))
    data = requests.get(f"{base}/api/getDataFromRequest/", params={"id": job}, timeout=30)
    result = {"job": job, "progress_seen": seen, "data_status": data.status_code, "data": data.json()}
    op = int(params["operationtype"])
    if op <= 5:
        result["reference"] = reference(folder, params)
    else:
        f = requests.get(f"{base}/api/getFileForJobID/", params={"id": job}, timeout=60)
        result["file_status"] = f.status_code
        result["file_type"] = f.headers.get("content-type")
        result["download"] = compare_download(f.content, op, folder, params)
    print(json.dumps(result))


if __name__ == "__main__":
    if sys.argv[1] == "generate":
        generate(sys.argv[2], sys.argv[3], int(sys.argv[4]), *(int(a) for a in sys.argv[5:7]))
    elif sys.argv[1] == "run":
        run(json.loads(sys.argv[2]))
