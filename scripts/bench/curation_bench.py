"""The Python side of `npx tsx scripts/bench/curation.ts` (see there).

    python curation_bench.py generate DIR N   -> N daily ERA5-named NetCDF4 files (24 hourly steps, 181x360 float32)
    celery -A curation_bench worker ...       -> `bench.curate(file)`: cBottle's `process` task
                                                 (xarray load, zarr-python write at the time index)
Store and time axis from the environment: BENCH_STORE, BENCH_TIME_START (ISO), BENCH_STEP_MINUTES.
"""
import os
import sys
from datetime import datetime, timedelta

import numpy as np

LAT = np.linspace(-90, 90, 181)
LON = np.arange(0, 360, 1.0)


def generate(folder, n):
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "interop"))
    from curation_data import write

    os.makedirs(folder, exist_ok=True)
    for i in range(n):
        day = datetime(2020, 1, 1) + timedelta(days=i)
        path = os.path.join(folder, f"e5.oper.an.sfc.128_167_2t.ll025sc.{day:%Y%m%d}00_{day:%Y%m%d}23.nc")
        if not os.path.exists(path):
            write(path + ".tmp", "VAR_2T", "2t", day, seed=i, fill=None, lat=LAT, lon=LON, steps=24, step_hours=1)
            os.rename(path + ".tmp", path)


if __name__ == "__main__":
    generate(sys.argv[2], int(sys.argv[3]))
else:
    import xarray
    import zarr
    from celery import Celery

    app = Celery("curation_bench", broker=os.environ.get("CELERY_BROKER_URL"))
    app.conf.worker_prefetch_multiplier = 1

    @app.task(name="bench.curate", acks_late=True)
    def curate(path):
        start = np.datetime64(os.environ["BENCH_TIME_START"].rstrip("Z"))
        step = np.timedelta64(int(os.environ["BENCH_STEP_MINUTES"]), "m")
        ds = xarray.open_dataset(path).load()
        index = ((ds.time.values - start) // step).astype(int)
        group = zarr.open_group(os.environ["BENCH_STORE"], mode="r+")
        for v in ds:
            if "time" in ds[v].dims:
                name = ds[v].attrs.get("short_name") or v
                group[name][index.min() : index.max() + 1] = ds[v].values
        return int(index.size)
