"""CSV, OpenSim .trc (Pose2Sim's layout) and FreeMoCap-style .npy exports."""

from __future__ import annotations

import csv

import numpy as np
import xarray as xr

from mocapflow.export import to_csv, to_npy, to_trc


def _ds():
    pos = np.arange(4 * 3 * 2, dtype=float).reshape(4, 3, 2, 1) * 10.0  # mm
    pos[2, :, 1] = np.nan
    return xr.Dataset(
        {"position": (("time", "space", "keypoint", "individual"), pos, {"units": "mm"})},
        coords={
            "time": np.arange(4),
            "space": ["x", "y", "z"],
            "keypoint": ["hip", "knee"],
            "individual": ["id_0"],
        },
        attrs={"fps": 50.0},
    )


def test_npy_is_frames_keypoints_xyz(tmp_path):
    ds = _ds()
    arr = np.load(to_npy(ds, tmp_path / "s.npy"))
    assert arr.shape == (4, 2, 3)
    np.testing.assert_array_equal(arr[1, 0], ds.position.values[1, :, 0, 0])


def test_csv_one_column_per_keypoint_and_axis(tmp_path):
    rows = list(csv.reader(open(to_csv(_ds(), tmp_path / "s.csv"))))
    assert rows[0] == ["frame", "time_s", "hip_x", "hip_y", "hip_z", "knee_x", "knee_y", "knee_z"]
    assert rows[2][:3] == ["1", "0.020000", "60.000000"] and len(rows) == 5
    assert rows[3][5:] == ["", "", ""]  # missing stays empty


def test_trc_as_pose2sim_writes_it(tmp_path):
    lines = to_trc(_ds(), tmp_path / "s.trc").read_text().splitlines()
    assert lines[0] == "PathFileType\t4\t(X/Y/Z)\ts.trc"
    assert lines[2].split("\t") == ["50", "50", "4", "2", "m", "50", "1", "4"]
    assert lines[3] == "Frame#\tTime\thip\t\t\tknee\t\t\t"
    assert lines[4] == "\t\tX1\tY1\tZ1\tX2\tY2\tZ2"
    first = lines[5].split("\t")
    # Z-up mm (x, y, z) -> Y-up metres (y, z, x), as Pose2Sim turns it.
    x, y, z = (v / 1000 for v in _ds().position.values[0, :, 0, 0])
    assert first[:2] == ["1", "0.000000"]
    np.testing.assert_allclose([float(v) for v in first[2:5]], [y, z, x])
    assert len(lines) == 9
