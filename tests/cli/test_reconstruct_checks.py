"""Triangulate, filter and export refuse what cannot work, and say when a calibration
does not fit: real commands on a small synthetic markers recording."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest
import tomli_w
import xarray as xr

from mocapflow.synthetic import synthesize

EXE = str(Path(sys.executable).with_name("mocapflow"))


def run(*args) -> subprocess.CompletedProcess:
    cmd = [EXE, *map(str, args)]
    if args[0] in ("process", "triangulate", "filter"):
        cmd += ["--cluster", "threads"]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300)


def error_line(proc) -> str:
    """The one line a refusal prints (exit 2, no traceback)."""
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    return lines[0]


def warnings_of(proc) -> list[str]:
    """mocapflow's warnings (not Dask's, such as a dashboard port another run holds)."""
    lines = proc.stderr.splitlines()
    return [ln for ln in lines if ln.startswith("warning: ") and "site-packages" not in ln]


@pytest.fixture(scope="module")
def stages(tmp_path_factory) -> dict:
    """A 3-camera, 30-frame markers recording (320x240) at each stage, to copy.

    ``tracked``, ``triangulated`` (with its true calibration) and ``filtered``:
    each a ``session01`` folder holding ``mocapflow.zarr`` and the true
    calibration; ``triangulation`` is the triangulate command's outcome.
    """
    root = tmp_path_factory.mktemp("checks")
    rec = root / "tracked" / "session01"
    synthesize(rec, kind="markers", cameras=3, frames=30, size=(320, 240), seed=3)
    proc = run("process", rec, "-t", "markers", "--no-report")
    assert proc.returncode == 0, proc.stderr
    out = {"tracked": rec}
    for stage, command in (("triangulated", "triangulate"), ("filtered", "filter")):
        rec = Path(shutil.copytree(rec, root / stage / "session01"))
        args = ["-c", rec / "true_calibration.toml"] if command == "triangulate" else []
        proc = run(command, rec / "mocapflow.zarr", *args)
        assert proc.returncode == 0, proc.stderr
        out[stage] = rec
        if command == "triangulate":
            out["triangulation"] = proc
    return out


@pytest.fixture()
def copy(stages, tmp_path):
    """``copy(stage)``: a private copy of the recording at that stage, as ``session01``."""

    def make(stage: str, name: str = "session01") -> Path:
        return Path(shutil.copytree(stages[stage], tmp_path / name))

    return make


def edit_toml(src: Path, dst: Path, **tables) -> Path:
    """Copy a calibration TOML, updating tables: ``cam_00={"name": "cam2"}``."""
    doc = tomllib.loads(src.read_text())
    for key, changes in tables.items():
        doc[key] = {**doc[key], **changes}
    dst.write_text(tomli_w.dumps(doc))
    return dst


@pytest.mark.slow  # make test-all (and CI)
def test_two_cameras_with_one_name_are_refused(copy, tmp_path):
    rec = copy("tracked")
    calib = edit_toml(rec / "true_calibration.toml", tmp_path / "dup.toml", cam_01={"name": "cam1"})
    line = error_line(run("triangulate", rec / "mocapflow.zarr", "-c", calib))
    assert "dup.toml: cameras [cam_00] and [cam_01] are both named 'cam1'" in line
    assert not (rec / "mocapflow.zarr" / "points3d").exists()


@pytest.mark.slow  # make test-all (and CI)
def test_a_calibration_at_another_size(copy, tmp_path):
    rec = copy("tracked")
    true = rec / "true_calibration.toml"
    doc = tomllib.loads(true.read_text())
    # Made at 640x480 (twice the videos' 320x240): scaled, with a warning, and exact.
    big = {}
    for key in ("cam_00", "cam_01", "cam_02"):
        m = np.array(doc[key]["matrix"])
        m[:2] *= 2
        big[key] = {"size": [640, 480], "matrix": m.tolist()}
    calib = edit_toml(true, tmp_path / "big.toml", **big)
    proc = run("triangulate", rec / "mocapflow.zarr", "-c", calib)
    assert proc.returncode == 0, proc.stderr
    (note,) = warnings_of(proc)
    assert "big.toml: cameras cam1, cam2, cam3 were calibrated at 640x480" in note
    assert "320x240, the same aspect ratio" in note and "scaled by 0.5" in note
    assert "reprojection error median 0.1 px" in proc.stdout
    # Another aspect ratio (here the size turned a quarter): refused, naming both sizes.
    calib = edit_toml(true, tmp_path / "turned.toml", cam_01={"size": [240, 320]})
    line = error_line(run("triangulate", rec / "mocapflow.zarr", "-c", calib))
    assert "turned.toml: camera cam2 was calibrated at 240x320 but its video is 320x240" in line
    assert "turned a quarter" in line and "recalibrate" in line
    # A calibration that records no size is not checked.
    doc = tomllib.loads(true.read_text())
    for key in ("cam_00", "cam_01", "cam_02"):
        del doc[key]["size"]
    (tmp_path / "nosize.toml").write_text(tomli_w.dumps(doc))
    proc = run("triangulate", rec / "mocapflow.zarr", "-c", tmp_path / "nosize.toml")
    assert proc.returncode == 0 and not warnings_of(proc), proc.stderr


def test_swapped_camera_names_get_a_verdict(stages, copy, tmp_path):
    truth = stages["triangulation"]  # the true calibration: no warning
    assert "reprojection error median 0.1 px" in truth.stdout and not warnings_of(truth)
    rec = copy("triangulated")
    calib = edit_toml(
        rec / "true_calibration.toml",
        tmp_path / "swapped.toml",
        cam_00={"name": "cam2"},
        cam_01={"name": "cam1"},
    )
    store = rec / "mocapflow.zarr"
    proc = run("triangulate", store, "-c", calib)
    assert proc.returncode == 0, proc.stderr
    (verdict,) = warnings_of(proc)
    assert "points3d: views cam1 and cam2 look swapped in" in verdict
    assert "swapped.toml" in verdict and f"mocapflow info {store}" in verdict


def test_filter_refuses_what_it_cannot_apply(copy):
    store = copy("filtered") / "mocapflow.zarr"
    before = xr.open_zarr(store, group="filtered", consolidated=False).attrs["filter"]
    line = error_line(run("filter", store, "--order", "50"))
    assert "--order 50" in line and "longer than 153 frames" in line
    assert "the store has 30 frames; lower --order (at most 8 for 30 frames)" in line
    line = error_line(run("filter", store, "--cutoff", "15"))
    assert "--cutoff 15 Hz: must be below half the frame rate (15 Hz at 30 fps)" in line
    # Nothing was written; what a filter applied is recorded with its group.
    assert xr.open_zarr(store, group="filtered", consolidated=False).attrs["filter"] == before
    assert before["order"] == 4 and before["cutoff"] == 7 and before["padlen"] == 15
    assert before["fps"] == 30


def test_export_says_what_is_missing(copy, tmp_path):
    line = error_line(run("export", tmp_path / "nowhere.zarr"))
    assert "nowhere.zarr: no such store" in line and "mocapflow run RECORDING" in line
    store = copy("tracked") / "mocapflow.zarr"
    line = error_line(run("export", store))
    assert f"{store}: no 3-D points (only the 2-D tracks" in line
    assert f"mocapflow triangulate {store} -c CALIBRATION" in line
    store = copy("triangulated", "session02") / "mocapflow.zarr"
    line = error_line(run("export", store, "--group", "filtered"))
    assert f"no filtered group (it holds points3d); make it with mocapflow filter {store}" in line
    assert "--group points3d" in line
    proc = run("export", store, "-f", "npy")
    assert proc.returncode == 0 and "session02.points3d.npy" in proc.stdout, proc.stderr


def test_exports_are_named_after_their_store_and_never_overwrite_another(copy, tmp_path):
    out = tmp_path / "exports"
    recs = [copy("filtered"), copy("filtered", "session02")]
    for rec in recs:
        proc = run("export", rec / "mocapflow.zarr", "--out-dir", out, "-f", "csv,npy")
        assert proc.returncode == 0, proc.stderr
        assert f"wrote {out / rec.name}.filtered.csv" in proc.stdout
    # A store named session01.zarr takes its own name, and may not overwrite session01's files.
    other = Path(shutil.copytree(recs[0] / "mocapflow.zarr", tmp_path / "x" / "session01.zarr"))
    first = (out / "session01.filtered.npy").read_bytes()
    line = error_line(run("export", other, "--out-dir", out, "-f", "trc,npy"))
    assert f"{out / 'session01.filtered.npy'}: written by the export of another store" in line
    assert str((recs[0] / "mocapflow.zarr").resolve()) in line and "--out-dir" in line
    assert (out / "session01.filtered.npy").read_bytes() == first
    assert not (out / "session01.filtered.trc").exists()  # checked before any file is written
    # Re-exporting a store rewrites its own files.
    proc = run("export", recs[0] / "mocapflow.zarr", "--out-dir", out, "-f", "npy")
    assert proc.returncode == 0, proc.stderr
    owners = json.loads((out / ".mocapflow-exports.json").read_text())
    store = str((recs[1] / "mocapflow.zarr").resolve())
    assert owners["session02.filtered.csv"]["store"] == store


def test_run_refuses_a_calibration_or_filter_that_cannot_fit_before_tracking(stages, tmp_path):
    rec = tmp_path / "rec"
    shutil.copytree(stages["tracked"] / "synchronized_videos", rec / "synchronized_videos")
    true = stages["tracked"] / "true_calibration.toml"
    turned = edit_toml(true, tmp_path / "turned.toml", cam_02={"size": [240, 320]})
    line = error_line(run("run", rec, "-t", "markers", "-c", turned))
    assert "turned.toml: camera cam3 was calibrated at 240x320 but its video is 320x240" in line
    line = error_line(run("run", rec, "-t", "markers", "-c", true, "--order", "50"))
    assert "--order 50" in line and "at most 8 for 30 frames" in line
    assert not (rec / "mocapflow.zarr").exists()
