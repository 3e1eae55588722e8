"""CSV, OpenSim .trc (Pose2Sim's layout) and FreeMoCap-style .npy exports."""

from __future__ import annotations

import csv

import numpy as np
import xarray as xr

from mocapflow.export import to_csv, to_npy, to_trc


def _ds(up="+z"):
    pos = np.arange(4 * 3 * 2, dtype=float).reshape(4, 3, 2, 1) * 10.0  # mm
    pos[2, :, 1] = np.nan
    per_point = ("time", "keypoint", "individual")
    return xr.Dataset(
        {
            "position": (("time", "space", "keypoint", "individual"), pos, {"units": "mm"}),
            "confidence": (per_point, np.full((4, 2, 1), 0.9)),
            "reprojection_error": (per_point, np.full((4, 2, 1), 1.5)),
            "n_views": (per_point, np.full((4, 2, 1), 3, np.int8)),
        },
        coords={
            "time": np.arange(4) / 50.0,
            "space": ["x", "y", "z"],
            "keypoint": ["hip", "knee"],
            "individual": ["id_0"],
        },
        attrs={"fps": 50.0, "time_unit": "seconds", "space_unit": "mm", "up_axis": up},
    )


def test_npy_is_frames_keypoints_xyz(tmp_path):
    ds = _ds()
    arr = np.load(to_npy(ds, tmp_path / "s.npy"))
    assert arr.shape == (4, 2, 3)
    np.testing.assert_array_equal(arr[1, 0], ds.position.values[1, :, 0, 0])


def test_csv_is_anipose_style(tmp_path):
    rows = list(csv.reader(open(to_csv(_ds(), tmp_path / "s.csv"))))
    kp = ["x", "y", "z", "error", "ncams", "score"]
    assert rows[0][:12] == [f"{k}_{c}" for k in ("hip", "knee") for c in kp]
    assert rows[0][12:] == ["fnum", "center_0", "center_1", "center_2"] + [
        f"M_{i}{j}" for i in range(3) for j in range(3)
    ]
    assert rows[2][:6] == ["60.000000", "80.000000", "100.000000", "1.500000", "3", "0.900000"]
    assert rows[3][6:9] == ["", "", ""]  # missing stays empty
    assert rows[2][12] == "1" and rows[2][16] == "1.000000" and len(rows) == 5


def test_trc_as_pose2sim_writes_it(tmp_path):
    lines = to_trc(_ds(), tmp_path / "s.trc").read_text().splitlines()
    assert lines[0] == "PathFileType\t4\t(X/Y/Z)\ts.trc\tY up = world +z"
    assert lines[2].split("\t") == ["50", "50", "4", "2", "m", "50", "1", "4"]
    assert lines[3] == "Frame#\tTime\thip\t\t\tknee\t\t\t"
    assert lines[4] == "\t\tX1\tY1\tZ1\tX2\tY2\tZ2"
    first = lines[5].split("\t")
    # Z-up mm (x, y, z) -> Y-up metres (y, z, x), as Pose2Sim turns it.
    x, y, z = (v / 1000 for v in _ds().position.values[0, :, 0, 0])
    assert first[:2] == ["1", "0.000000"]
    np.testing.assert_allclose([float(v) for v in first[2:5]], [y, z, x])
    assert len(lines) == 9


def test_trc_turns_any_known_up_axis_to_y(tmp_path):
    ds = _ds(up="-y")  # calibrated in a camera's frame, y down
    first = to_trc(ds, tmp_path / "s.trc").read_text().splitlines()[5].split("\t")
    x, y, z = (v / 1000 for v in ds.position.values[0, :, 0, 0])
    np.testing.assert_allclose([float(v) for v in first[2:5]], [x, -y, -z])  # a proper rotation


def test_trc_with_an_unknown_up_axis_keeps_the_world_and_warns(tmp_path, caplog):
    ds = _ds(up=None)
    lines = to_trc(ds, tmp_path / "s.trc").read_text().splitlines()
    assert lines[0].endswith("axes as in the calibration (up unknown)")
    assert "the world's up axis is not known" in caplog.text
