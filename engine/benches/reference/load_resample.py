"""Reference for `cargo bench -p engine --bench load_resample`: the paper code's tools.

nibabel loads the .nii.gz and scipy.ndimage.zoom (order=1, trilinear) resamples it to 128³.
Usage: python3 load_resample.py FILE   (pip install nibabel scipy). Prints one JSON object.
"""
import json
import sys
import time

import nibabel as nib
import numpy as np
from scipy import ndimage

REPEATS = 3
path = sys.argv[1]
load, zoom = [], []
for _ in range(REPEATS):
    started = time.perf_counter()
    data = nib.load(path).get_fdata(dtype=np.float32)
    loaded = time.perf_counter()
    factors = [128 / n for n in data.shape[:3]]
    out = ndimage.zoom(data, factors, order=1, grid_mode=True, mode="grid-constant")
    done = time.perf_counter()
    load.append((loaded - started) * 1e3)
    zoom.append((done - loaded) * 1e3)
print(json.dumps({
    "file": path,
    "load_ms": min(load),
    "resample_ms": min(zoom),
    "total_ms": min(a + b for a, b in zip(load, zoom)),
    "repeats": REPEATS,
}, indent=2))
