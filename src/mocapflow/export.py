"""Exports of 3-D points: CSV, OpenSim .trc (as Pose2Sim writes it) and FreeMoCap's .npy."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import xarray as xr

__all__ = ["FORMATS", "export", "to_csv", "to_npy", "to_trc"]

FORMATS = ("csv", "trc", "npy")


def _frames(ds: xr.Dataset, individual: str | None) -> tuple[np.ndarray, list[str]]:
    """``(time, keypoint, 3)`` of one individual, and the keypoint names."""
    pos = ds.position
    ind = individual if individual is not None else str(pos.individual.values[0])
    arr = pos.sel(individual=ind).transpose("time", "keypoint", "space").values
    return np.asarray(arr, np.float64), [str(k) for k in pos.keypoint.values]


def to_npy(ds: xr.Dataset, path: str | Path, individual: str | None = None) -> Path:
    """Write ``(frames, keypoints, 3)`` float64, as FreeMoCap's ``skeleton_3d.npy``."""
    arr, _ = _frames(ds, individual)
    np.save(path, arr)
    return Path(path)


def to_csv(ds: xr.Dataset, path: str | Path, individual: str | None = None) -> Path:
    """Write one row per frame: ``frame, time_s`` then ``<keypoint>_x, _y, _z`` columns."""
    arr, names = _frames(ds, individual)
    fps = float(ds.attrs.get("fps", 0) or 0)
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["frame", "time_s"] + [f"{k}_{a}" for k in names for a in "xyz"])
        for t, row in enumerate(arr):
            stamp = f"{t / fps:.6f}" if fps else ""
            w.writerow([t, stamp] + ["" if np.isnan(v) else f"{v:.6f}" for v in row.ravel()])
    return Path(path)


def to_trc(ds: xr.Dataset, path: str | Path, individual: str | None = None) -> Path:
    """Write an OpenSim ``.trc`` as Pose2Sim does: metres, Y up, tab separated.

    Pose2Sim turns the Z-up world into OpenSim's Y-up one by writing each
    point's ``(y, z, x)``; it writes metres and leaves missing values empty.
    """
    arr, names = _frames(ds, individual)
    unit = str(ds.position.attrs.get("units", "mm"))
    scale = {"mm": 1e-3, "cm": 1e-2, "m": 1.0}.get(unit, 1e-3)
    yup = arr[..., [1, 2, 0]] * scale
    fps = float(ds.attrs.get("fps", 30.0) or 30.0)
    n, k = yup.shape[:2]
    lines = [
        f"PathFileType\t4\t(X/Y/Z)\t{Path(path).name}",
        "DataRate\tCameraRate\tNumFrames\tNumMarkers\tUnits\tOrigDataRate\t"
        "OrigDataStartFrame\tOrigNumFrames",
        f"{fps:g}\t{fps:g}\t{n}\t{k}\tm\t{fps:g}\t1\t{n}",
        "Frame#\tTime\t" + "\t\t\t".join(names) + "\t\t\t",
        "\t\t" + "\t".join(f"X{i}\tY{i}\tZ{i}" for i in range(1, k + 1)),
    ]
    for t in range(n):
        vals = "\t".join("" if np.isnan(v) else f"{v:.6f}" for v in yup[t].ravel())
        lines.append(f"{t + 1}\t{t / fps:.6f}\t{vals}")
    Path(path).write_text("\n".join(lines) + "\n")
    return Path(path)


def export(ds: xr.Dataset, path: str | Path, fmt: str, individual: str | None = None) -> Path:
    """Write ``ds`` (a 3-D group) to ``path`` in ``fmt`` (one of :data:`FORMATS`)."""
    writers = {"csv": to_csv, "trc": to_trc, "npy": to_npy}
    if fmt not in writers:
        raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    return writers[fmt](ds, path, individual)
