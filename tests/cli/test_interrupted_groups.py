"""A 3-D group is whole only by its completion record (release issue, A1 and A2).

A ``triangulate`` or ``filter`` killed with SIGKILL after it wrote its group's
metadata and before its record leaves a group without results: ``verify``,
``info``, ``filter`` and ``export`` must say so, never read it as data, and a
rerun must mend it.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

EXE = str(Path(sys.executable).with_name("mocapflow"))
THREADS = ["--cluster", "threads"]  # for the commands not killed: quicker, same results


def run(*args, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([EXE, *map(str, args)], capture_output=True, text=True, **kw)


def one_line_error(proc: subprocess.CompletedProcess) -> str:
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    return lines[0]


def kill_once_group_appears(args: list, group_dir: Path, record: Path) -> None:
    """Start a command and SIGKILL its process group once the group's metadata exists."""
    proc = subprocess.Popen(
        [EXE, *map(str, args)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    t0 = time.monotonic()
    try:
        while not (group_dir / "zarr.json").exists():
            assert proc.poll() is None, "the command ended before writing its group"
            assert time.monotonic() - t0 < 120
            time.sleep(0.005)
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    assert not record.exists(), "killed too late: the group was recorded whole"


@pytest.fixture()
def tracked(recording_copy, markers_recording) -> tuple[Path, Path]:
    calib = recording_copy / "calibration.toml"
    shutil.copy(markers_recording / "true_calibration.toml", calib)
    proc = run("process", recording_copy, "-t", "markers", "--no-report")
    assert proc.returncode == 0, proc.stderr
    return recording_copy / "mocapflow.zarr", calib


def test_killed_first_triangulate(tracked, tmp_path):
    store, calib = tracked
    kill_once_group_appears(
        ["triangulate", store, "-c", calib],
        store / "points3d",
        store / "_mocapflow" / "groups" / "points3d.json",
    )
    proc = run("verify", store)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "points3d: unfinished" in proc.stdout + proc.stderr
    assert "whole" not in proc.stdout
    info = run("info", store)
    assert "points3d: unfinished" in info.stdout
    assert "of points triangulated" not in info.stdout  # no figures from a group with no results
    for command in (["export", store, "--out-dir", tmp_path / "x"], ["filter", store]):
        proc = run(*command)
        assert proc.returncode == 2
        assert "points3d is unfinished" in one_line_error(proc)
        assert "rerun mocapflow triangulate" in one_line_error(proc)
        assert "-c CALIBRATION" in one_line_error(proc)
    assert not (tmp_path / "x").exists() or not any((tmp_path / "x").iterdir())
    assert not (store / "filtered").exists()
    # The rerun mends it.
    assert run("triangulate", store, "-c", calib, *THREADS).returncode == 0
    assert "whole" in run("verify", store).stdout


@pytest.mark.slow  # make test-all (and CI)
def test_killed_first_filter_does_not_export_nan(tracked, tmp_path):
    store, calib = tracked
    assert run("triangulate", store, "-c", calib, *THREADS).returncode == 0
    kill_once_group_appears(
        ["filter", store],
        store / "filtered",
        store / "_mocapflow" / "groups" / "filtered.json",
    )
    proc = run("export", store, "--out-dir", tmp_path / "x")
    assert proc.returncode == 2
    line = one_line_error(proc)
    assert "filtered is unfinished" in line and "--group points3d" in line
    assert not (tmp_path / "x").exists() or not any((tmp_path / "x").iterdir())
    proc = run("export", store, "--group", "points3d", "-f", "npy", "--out-dir", tmp_path / "x")
    assert proc.returncode == 0, proc.stderr
    (npy,) = (tmp_path / "x").glob("*.npy")
    assert np.isfinite(np.load(npy)).all()
    assert run("filter", store, *THREADS).returncode == 0
    assert run("export", store, "--out-dir", tmp_path / "y").returncode == 0
    # An export never writes through a link that sits where its file goes.
    (tmp_path / "z").mkdir()
    link = tmp_path / "z" / f"{store.parent.name}.filtered.csv"
    link.symlink_to(tmp_path / "elsewhere.csv")
    proc = run("export", store, "-f", "npy,csv", "--out-dir", tmp_path / "z")
    assert proc.returncode == 2 and "is a link" in one_line_error(proc)
    assert not (tmp_path / "elsewhere.csv").exists() and not list((tmp_path / "z").glob("*.npy"))


def test_export_of_all_nan_points_is_an_error(tracked, tmp_path):
    store, calib = tracked
    # The markers' confidence is below 0.98 everywhere: no view is used, no point made.
    proc = run("triangulate", store, "-c", calib, "--min-confidence", "0.99", *THREADS)
    assert proc.returncode == 1, proc.stderr  # the verdict: one line, the group is written
    assert "not one point was triangulated" in one_line_error(proc)
    proc = run("export", store, "--out-dir", tmp_path / "x")
    assert proc.returncode == 2
    assert "nothing to export" in one_line_error(proc)
    assert not (tmp_path / "x").exists() or not any((tmp_path / "x").iterdir())
