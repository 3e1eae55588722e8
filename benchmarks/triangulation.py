"""Triangulation throughput: mocapflow's batched DLT against aniposelib and a per-point loop.

The real peer is aniposelib 0.8.0 (in its own venv, ``peers/anipose_triangulate.py``):
``CameraGroup.triangulate`` with undistortion, its DLT vectorised with JAX. It
gets the same cameras (through mocapflow's anipose TOML) and the same points.

The baseline is anipose's way, which FreeMoCap calls (about 0.2 s per frame in
FreeMoCap with its extras, PR #642): undistort each camera's points in one call,
then loop over points in Python, stacking each one's DLT rows and taking an SVD.
mocapflow undistorts the same way, then solves every point's normal equations at
once in closed form, and also returns each point's reprojection error and view
count. All three run on one core (the process pinned to one CPU, BLAS, OpenCV
and XLA to one thread), on the same synthetic 4-view x 33-keypoint data with
0.5 px noise, and must agree (the homogeneous SVD and the inhomogeneous solve
differ by far less than the noise).

    python benchmarks/triangulation.py [--frames 3000] [--baseline-frames 300] [--json PATH]
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"  # one core, before numpy loads

import argparse  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from mocapflow.calib import Camera, write_toml  # noqa: E402
from mocapflow.synthetic import make_cameras  # noqa: E402
from mocapflow.triangulate import (  # noqa: E402
    _CRITERIA,  # noqa: E402  (the same undistortion)
    CameraSet,
    triangulate_points,
)


def triangulate_simple(points: np.ndarray, camera_mats: list[np.ndarray]) -> np.ndarray:
    """One point's DLT, as anipose's ``triangulate_simple`` (rows in a loop, then an SVD)."""
    a = np.zeros((len(camera_mats) * 2, 4))
    for i, mat in enumerate(camera_mats):
        x, y = points[i]
        a[i * 2] = x * mat[2] - mat[0]
        a[i * 2 + 1] = y * mat[2] - mat[1]
    _, _, vh = np.linalg.svd(a, full_matrices=True)
    return vh[-1, :3] / vh[-1, 3]


def dlt_loop(uv: np.ndarray, cameras: list[Camera]) -> np.ndarray:
    """Triangulate point by point in a Python loop (the baseline: anipose/FreeMoCap).

    As anipose's ``CameraGroup.triangulate``: each camera's points are undistorted
    in one call, then a Python loop over points drops the views that miss the
    point and calls :func:`triangulate_simple`.

    Parameters
    ----------
    uv : numpy.ndarray
        Pixels ``(view, N, 2)``, NaN where not seen.
    cameras : list of Camera
        In view order.

    Returns
    -------
    numpy.ndarray
        ``(N, 3)`` world points.

    """
    und = np.stack(
        [
            cv2.undistortPointsIter(
                np.ascontiguousarray(uv[v]).reshape(-1, 1, 2),
                c.matrix,
                c.distortions,
                None,
                None,
                _CRITERIA,
            ).reshape(-1, 2)
            for v, c in enumerate(cameras)
        ]
    )
    mats = np.stack(
        [np.hstack([c.rotation_matrix, np.asarray(c.translation)[:, None]]) for c in cameras]
    )
    out = np.full((uv.shape[1], 3), np.nan)
    for ip in range(uv.shape[1]):
        sub = und[:, ip]
        good = ~np.isnan(sub[:, 0])
        if np.sum(good) >= 2:
            out[ip] = triangulate_simple(sub[good], mats[good])
    return out


def make_data(frames: int, keypoints: int = 33, views: int = 4, seed: int = 0):
    """Synthetic cameras and noisy projections: ``(cameras, uv (V, N, 2), truth (N, 3))``."""
    rng = np.random.default_rng(seed)
    cams = make_cameras(views, (1920, 1080), rng)
    pts = np.array([0.0, 0.0, 1000.0]) + rng.uniform(-500, 500, (frames * keypoints, 3))
    uv = CameraSet.from_cameras(cams).project(pts) + rng.normal(0, 0.5, (views, len(pts), 2))
    return cams, uv, pts


def aniposelib(cams: list[Camera], uv: np.ndarray, repeat: int) -> tuple[float, np.ndarray]:
    """Best time of aniposelib's ``CameraGroup.triangulate`` on the points, and its result."""
    here = Path(__file__).resolve().parent
    sys.path.insert(0, str(here))
    from peers import venvs

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        write_toml(tmp / "calibration.toml", cams)
        np.savez(tmp / "uv.npz", uv=uv)
        proc = subprocess.run(
            [str(venvs.python("aniposelib")), str(here / "peers" / "anipose_triangulate.py"),
             str(tmp / "calibration.toml"), str(tmp / "uv.npz"), str(tmp / "out.npz"), str(repeat)],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        seconds = json.loads(proc.stdout.strip().splitlines()[-1])["seconds"]
        return seconds, np.load(tmp / "out.npz")["xyz"]


def main(argv: list[str] | None = None) -> dict:
    """Run the comparison and print a line for docs/performance.md."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=3000, help="frames for mocapflow")
    ap.add_argument("--baseline-frames", type=int, default=300, help="frames for the loop")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core; the peer inherits it
    cv2.setNumThreads(1)
    kp = 33
    cams, uv, truth = make_data(args.frames, kp)
    cset = CameraSet.from_cameras(cams)
    n_base = args.baseline_frames * kp

    best_vec, best_loop = np.inf, np.inf
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        xyz, _, _ = triangulate_points(uv, cset)
        best_vec = min(best_vec, time.perf_counter() - t0)
        t0 = time.perf_counter()
        base = dlt_loop(uv[:, :n_base], cams)
        best_loop = min(best_loop, time.perf_counter() - t0)
    agree = float(np.nanmax(np.abs(xyz[:n_base] - base)))
    peer_s, peer_xyz = aniposelib(cams, uv, args.repeat)
    agree_peer = float(np.nanmax(np.abs(xyz - peer_xyz)))
    peer_fps = args.frames / peer_s
    rmse = float(np.sqrt(np.mean(np.sum((xyz - truth) ** 2, axis=1))))
    vec_fps = args.frames / best_vec
    loop_fps = args.baseline_frames / best_loop
    result = {
        "views": 4,
        "keypoints": kp,
        "mocapflow_frames": args.frames,
        "baseline_frames": args.baseline_frames,
        "mocapflow_frames_per_s": round(vec_fps, 1),
        "baseline_frames_per_s": round(loop_fps, 1),
        "baseline_s_per_frame": round(1 / loop_fps, 5),
        "speedup": round(vec_fps / loop_fps, 1),
        "max_difference_mm": agree,
        "aniposelib_frames_per_s": round(peer_fps, 1),
        "aniposelib_points_per_s": round(peer_fps * kp),
        "mocapflow_points_per_s": round(vec_fps * kp),
        "speedup_against_aniposelib": round(vec_fps / peer_fps, 2),
        "max_difference_from_aniposelib_mm": agree_peer,
        "rmse_mm_at_0.5px": round(rmse, 3),
    }
    print(json.dumps(result, indent=2))
    print(
        f"| aniposelib 0.8.0 (JAX), 4 views x 33 keypoints, 1 core | {peer_fps:,.0f} frames/s "
        f"| {vec_fps:,.0f} frames/s | **{vec_fps / peer_fps:.1f}x** | {agree_peer:.1e} mm |"
    )
    print(
        f"| a per-point loop, 4 views x 33 keypoints, 1 core | {loop_fps:,.0f} frames/s "
        f"({1000 / loop_fps:.1f} ms/frame) | {vec_fps:,.0f} frames/s | "
        f"**{vec_fps / loop_fps:,.0f}x** | {agree:.1e} mm |"
    )
    if max(agree, agree_peer) > 0.05:
        raise SystemExit(f"the results disagree by {max(agree, agree_peer)} mm")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=2)
    return result


if __name__ == "__main__":
    main()
