"""Triangulate with aniposelib 0.8.0 (in its venv), as anipose does, and time it.

    python anipose_triangulate.py CALIBRATION.toml POINTS.npz OUT.npz REPEATS

``CameraGroup.triangulate(points, undistort=True)``: each camera's points
undistorted with OpenCV, then aniposelib's JAX-vectorised DLT (``jax.vmap`` of
its ``triangulate_simple``, 64-bit). One untimed call on the same points compiles
the JAX function for this shape, so the timed calls measure the steady state. Prints the best
of REPEATS calls in seconds as JSON; writes the points to OUT.npz.
"""

import json
import os
import sys
import time

# One core, as the mocapflow side: XLA's CPU threads and BLAS, before JAX loads.
os.environ["XLA_FLAGS"] = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = "1"

import cv2  # noqa: E402
import numpy as np  # noqa: E402
from aniposelib.cameras import CameraGroup  # noqa: E402

cv2.setNumThreads(1)
cgroup = CameraGroup.load(sys.argv[1])
uv = np.load(sys.argv[2])["uv"]
repeats = int(sys.argv[4])
cgroup.triangulate(uv, undistort=True)  # compiles for this shape
best = float("inf")
for _ in range(repeats):
    t0 = time.perf_counter()
    xyz = cgroup.triangulate(uv, undistort=True)
    best = min(best, time.perf_counter() - t0)
np.savez(sys.argv[3], xyz=xyz)
print(json.dumps({"seconds": best}))
