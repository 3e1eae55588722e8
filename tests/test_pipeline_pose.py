"""The real sample end to end: MediaPipe (one task per view), triangulation, filtering, exports.

The 3-D figures are compared with a naive pipeline on the same detections (every
view with visibility >= 0.5, plain DLT, no left/right repair), which is what a
first attempt gives.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from mocapflow.calib import read_calibration
from mocapflow.quality import bone_length_cv, points_summary
from mocapflow.trackers.mediapipe_pose import BODY
from mocapflow.triangulate import CameraSet, triangulate_frames

SAMPLE = Path(__file__).resolve().parents[1] / "samples" / "pose2sim_single_person"
CALIBRATION = SAMPLE / "Calib.qca.txt"


@pytest.fixture(scope="module")
def run(sample_run):
    return sample_run


def _naive(store: Path) -> tuple[np.ndarray, np.ndarray]:
    ds = xr.open_zarr(store, consolidated=False)
    cameras, _ = read_calibration(CALIBRATION)
    cams = CameraSet.from_cameras([cameras[str(v)] for v in ds.view.values])
    xyz, err, *_ = triangulate_frames(
        ds.position.values, cams, ds.confidence.values, swap_lr=False, min_confidence=0.5
    )
    return xyz, err


def test_beats_the_naive_pipeline(run):
    store, _ = run
    points = xr.open_zarr(store, group="points3d", consolidated=False)
    ours = points_summary(points)
    xyz, err = _naive(store)
    naive_cv = np.nanmedian(bone_length_cv(xyz[..., 0], list(BODY), points.attrs["skeleton"]))
    naive_median, naive_p90 = np.nanmedian(err), np.nanpercentile(err, 90)
    assert ours["triangulated"] == 1.0
    assert ours["median_error_px"] < naive_median  # measured 13.2 against 15.1 px
    assert ours["p90_error_px"] <= naive_p90 / 2  # measured 18.5 against 141 px
    assert ours["bone_cv_median"] < naive_cv  # measured 0.110 against 0.154
    filtered = points_summary(xr.open_zarr(store, group="filtered", consolidated=False))
    assert filtered["bone_cv_median"] < ours["bone_cv_median"]
    swapped = points.lr_swapped.values
    assert swapped.any() and swapped.mean() < 0.25  # repaired, and only some views


def test_cli_reports_what_a_user_checks(run):
    _, proc = run
    for text in ("detections per view: cam01 100%", "points3d: 100.0% of points triangulated",
                 "reprojection error median", "p90", "bone length CV median"):  # fmt: skip
        assert text in proc.stdout.replace("\n", " "), text


def test_trc_follows_opensim_and_pose2sim(run):
    store, _ = run
    trc = store.with_name("pose.filtered.trc")
    lines = trc.read_text().splitlines()
    assert lines[0].split("\t")[:3] == ["PathFileType", "4", "(X/Y/Z)"]
    header = dict(zip(lines[1].split("\t"), lines[2].split("\t"), strict=True))
    assert header["Units"] == "m" and float(header["DataRate"]) == 60
    assert int(header["NumFrames"]) == 100 and int(header["NumMarkers"]) == len(BODY)
    # marker names every third column from the third; then X1 Y1 Z1 ...
    assert [m for m in lines[3].split("\t")[2:] if m] == list(BODY)
    assert lines[4].split("\t")[2:5] == ["X1", "Y1", "Z1"]
    data = pd.read_csv(trc, sep="\t", skiprows=4)  # how Pose2Sim's tools read it
    assert len(data) == 100 and data.shape[1] >= 2 + 3 * len(BODY)
    assert data.iloc[:, 0].tolist() == list(range(1, 101))
    np.testing.assert_allclose(data.iloc[:, 1], np.arange(100) / 60, atol=1e-6)
    # Y is up in metres: the nose is about 1.5 m above the ankles
    nose_y = data[f"Y{BODY.index('nose') + 1}"]
    ankle_y = data[f"Y{BODY.index('left_ankle') + 1}"]
    assert 1.2 < float((nose_y - ankle_y).median()) < 1.9


def test_npy_and_csv(run):
    store, _ = run
    npy = np.load(store.with_name("pose.filtered.npy"))
    assert npy.shape == (100, len(BODY), 3)
    csv = pd.read_csv(store.with_name("pose.filtered.csv"))
    assert len(csv) == 100 and "left_knee_x" in csv.columns


def test_run_report_keeps_what_a_lab_needs(run):
    """The run report beside the store: per-view table, detection rate and 3-D error plots."""
    from mocapflow.report import run_report_path

    page = run_report_path(run[0]).read_text()
    for text in ("detection rate per view", "reprojection error (median over keypoints)",
                 "frames/s per task", "cam01", "cam04"):  # fmt: skip
        assert text in page, text


def test_worker_threads_give_the_same_landmarks(run, tmp_path):
    """MediaPipe in two worker threads of one process (a model per thread): the same store."""
    import mocapflow

    store, _ = run
    res = mocapflow.process(SAMPLE, "mediapipe", tmp_path / "t.zarr", report=False,
                            cluster=mocapflow.ClusterOptions("threads", workers=2))  # fmt: skip
    assert res.exit_code == 0 and res.sizing["threads_per_worker"] == 2
    ours = xr.open_zarr(res.store, consolidated=False)
    want = xr.open_zarr(store, consolidated=False)
    for name in ("position", "confidence", "decoded"):
        np.testing.assert_array_equal(ours[name].values, want[name].values, err_msg=name)


PLUGIN = """
import json

from mocapflow.export import ExportFormat


def write(ds, path, individual=None):
    pos = ds.position.isel(individual=0).transpose("time", "keypoint", "space").values
    with open(path, "w") as fh:
        json.dump({"keypoints": [str(k) for k in ds.keypoint.values], "frames": len(pos)}, fh)


FMT = ExportFormat("json", ".json", write)
"""


def test_an_export_format_registered_by_a_package(run, tmp_path):
    """A package adds a format through the ``mocapflow.exports`` entry points: -f lists it."""
    import json
    import os
    import subprocess
    import sys

    (tmp_path / "myfmt.py").write_text(PLUGIN)
    info = tmp_path / "myfmt-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: myfmt\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[mocapflow.exports]\njson = myfmt:FMT\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    exe = str(Path(sys.executable).with_name("mocapflow"))
    store = run[0]
    proc = subprocess.run(
        [exe, "export", str(store), "-f", "json,npy", "--out-dir", str(tmp_path / "out")],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    written = json.loads((tmp_path / "out" / "pose.filtered.json").read_text())
    assert written == {"keypoints": list(BODY), "frames": 100}
    assert (tmp_path / "out" / "pose.filtered.npy").is_file()
    bad = subprocess.run([exe, "export", str(store), "-f", "xls"], capture_output=True,
                         text=True, env=env, timeout=120)  # fmt: skip
    assert bad.returncode == 2 and "json" in bad.stderr and "choose from" in bad.stderr


def test_the_calibration_verdict_on_the_real_sample(run):
    """The sample's own calibration draws no verdict; two cameras' names exchanged do."""
    from dataclasses import replace

    from mocapflow.quality import calibration_verdict, check_tracks

    tracks = xr.open_zarr(run[0], consolidated=False)
    cameras, _ = read_calibration(CALIBRATION)

    def verdict(cams):
        return calibration_verdict(check_tracks(tracks, cams), "s/points3d", "Calib.qca.txt", "s")

    assert verdict(cameras) is None
    swapped = {
        **cameras,
        "cam01": replace(cameras["cam03"], name="cam01"),
        "cam03": replace(cameras["cam01"], name="cam03"),
    }
    line = verdict(swapped)
    assert line is not None and "views cam01 and cam03 look swapped in Calib.qca.txt" in line
