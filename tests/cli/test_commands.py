"""The mocapflow command end to end, as a user runs it (real subprocesses)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import xarray as xr

EXE = str(Path(sys.executable).with_name("mocapflow"))
HELPERS = Path(__file__).resolve().parents[1] / "helpers"


def run(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [EXE, *map(str, args)], capture_output=True, text=True, timeout=300, cwd=cwd
    )


def one_line_error(proc) -> str:
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error:")
    return lines[0]


def test_import_is_silent():
    for module in ("mocapflow", "mocapflow.graph", "mocapflow.cli", "mocapflow.synthetic"):
        proc = subprocess.run(
            [sys.executable, "-c", f"import {module}"], capture_output=True, text=True
        )
        assert proc.returncode == 0 and proc.stdout == "" and proc.stderr == "", module


def test_the_command_exits_without_collecting_its_garbage():
    """The entry point freezes what is alive once the command is done; exit codes stay."""
    from importlib.metadata import entry_points

    (script,) = entry_points(group="console_scripts", name="mocapflow")
    assert script.value == "mocapflow.__main__:main"
    probe = (
        "import atexit, gc, sys; from mocapflow.cli import run; "
        "atexit.register(lambda: print('frozen', gc.get_freeze_count() > 0)); "
        "sys.argv = ['mocapflow', *sys.argv[1:]]; run()"
    )
    for args, code in ((["--version"], 0), (["info", "/no/such/store.zarr"], 2)):
        proc = subprocess.run(
            [sys.executable, "-c", probe, *args], capture_output=True, text=True, timeout=120
        )
        assert proc.returncode == code, proc.stderr
        assert proc.stdout.splitlines()[-1] == "frozen True", proc.stdout


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="OpenBLAS starts no thread on 1 core")
def test_the_command_runs_blas_on_one_thread_unless_the_user_says():
    """No OpenBLAS threads in the command's process (they busy-wait about 0.1 s each)."""
    probe = (
        "import atexit, os\n"
        "def count():\n"
        "    import cv2, numpy  # loaded by the command anyway; here whatever it loads\n"
        "    print('threads', len(os.listdir('/proc/self/task')))\n"
        "atexit.register(count)\n"
        "from mocapflow.__main__ import main; main(['--version'])\n"
    )
    blas = ("OPENBLAS_NUM_THREADS", "GOTO_NUM_THREADS", "OMP_NUM_THREADS")
    env = {k: v for k, v in os.environ.items() if k not in blas}
    for user, want in ((None, "threads 1"), ("2", "threads 3")):  # numpy's and OpenCV's
        if user is not None:
            env["OPENBLAS_NUM_THREADS"] = user
        proc = subprocess.run(
            [sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=120
        )
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.splitlines()[-1] == want, (user, proc.stdout)


def test_the_command_skips_bokehs_document_checks():
    """Bokeh's checks of each rendered document are off, unless --debug or the user says."""
    probe = (
        "import atexit, sys\n"
        "from bokeh.settings import settings\n"
        "atexit.register(lambda: print('validate', settings.perform_document_validation()))\n"
        "from mocapflow.__main__ import main\n"
        "main([*sys.argv[1:], 'info', '/no/such/store.zarr'])\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "BOKEH_VALIDATE_DOC"}
    for args, user, want in (([], None, False), (["--debug"], None, True), ([], "true", True)):
        extra = {} if user is None else {"BOKEH_VALIDATE_DOC": user}
        proc = subprocess.run(
            [sys.executable, "-c", probe, *args],
            capture_output=True, text=True, env={**env, **extra}, timeout=120,
        )  # fmt: skip
        assert "no such store" in proc.stderr, proc.stderr  # the command ran
        assert proc.stdout.splitlines()[-1] == f"validate {want}", (args, user, proc.stdout)


def test_workers_do_not_load_the_command_line(markers_recording, tmp_path):
    """Each worker re-runs the command's script first (spawn), which loads no command line.

    The probe tracker raises in a worker that imported Typer, Rich or
    mocapflow.cli: about 0.05 CPU s of each worker's start-up, for nothing.
    """
    env = {**os.environ, "PYTHONPATH": str(HELPERS)}
    proc = subprocess.run(
        [EXE, "process", markers_recording, "-t", "workerprobe:NoCommandLine", "--out",
         tmp_path / "probe.zarr", "--workers", "2", "--no-report"],
        capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "4 chunks computed, 0 skipped, 0 failed" in proc.stderr + proc.stdout


def test_process_end_to_end(recording_copy):
    proc = run("process", recording_copy, "-t", "markers", "--chunk-frames", "30", "--workers", "2")
    assert proc.returncode == 0, proc.stderr
    assert "dashboard: http://127.0.0.1:" in proc.stderr
    store = recording_copy / "mocapflow.zarr"
    ds = xr.open_zarr(store, consolidated=False)
    assert ds.position.shape == (4, 90, 2, 6, 1) and ds.attrs["completed"]
    assert (recording_copy / "mocapflow.report.html").stat().st_size > 100_000
    info = run("info", store)
    assert info.returncode == 0
    for text in ("cam1", "cam4", "100.0%", "complete", "markers", "yes"):
        assert text in info.stdout, text
    again = run("process", recording_copy, "-t", "markers", "--chunk-frames", "30", "--no-report")
    assert again.returncode == 0 and "0 chunks computed, 12 skipped" in again.stdout


def test_some_views_failed_exit_1(recording_copy, tmp_path):
    (recording_copy / "synchronized_videos" / "cam3.mp4").write_bytes(b"")
    proc = run(
        "process", recording_copy, "-t", "framestats", "--out", tmp_path / "s.zarr", "--no-report"
    )
    assert proc.returncode == 1, proc.stderr
    assert "cam3" in proc.stdout and "failed" in proc.stdout and "empty" in proc.stdout
    ds = xr.open_zarr(tmp_path / "s.zarr", consolidated=False)
    assert ds.decoded.values[[0, 1, 3]].all() and not ds.decoded.values[2].any()
    assert ds.attrs["view_status"]["cam3"]["status"] == "failed"


def test_usage_errors_exit_2(tmp_path, markers_recording):
    empty = tmp_path / "empty"
    empty.mkdir()
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "data.txt").write_text("precious")
    cases = [
        (("process", tmp_path / "missing"), "no such folder"),
        (("process", empty), "no videos found"),
        (("process", markers_recording, "-t", "nope"), "unknown tracker 'nope'"),
        (("process", markers_recording, "--out", foreign), "not a mocapflow store"),
        (("process", markers_recording, "--chunk-frames", "0"), "--chunk-frames must be"),
        (("process", markers_recording, "--chunk-frames=-5"), "--chunk-frames must be"),
        (("process", markers_recording, "-p", "oops"), "NAME=VALUE"),
        (("info", foreign), "not a mocapflow store"),
        (
            ("process", markers_recording, "--cluster", "nope"),
            "valid names: lab, local, pbs, slurm",
        ),
    ]
    for args, message in cases:
        proc = run(*args)
        assert proc.returncode == 2, (args, proc.stderr)
        assert message in one_line_error(proc), (args, proc.stderr)
    assert (foreign / "data.txt").read_text() == "precious"


def test_synth_command(tmp_path):
    proc = run(
        "synth",
        tmp_path / "s",
        "--kind",
        "markers",
        "--cameras",
        "2",
        "--frames",
        "5",
        "--size",
        "96x64",
        "--codec",
        "mjpg",
        "--seed",
        "4",
    )
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in (tmp_path / "s/synchronized_videos").iterdir()) == [
        "cam1.avi",
        "cam2.avi",
    ]
    assert (tmp_path / "s/ground_truth.zarr").is_dir() and (
        tmp_path / "s/true_calibration.toml"
    ).is_file()
    bad = run("synth", tmp_path / "t", "--size", "big")
    assert bad.returncode == 2


@pytest.mark.slow
def test_demo_command(tmp_path):
    proc = run("demo", tmp_path, "--frames", "120")
    assert proc.returncode == 0, proc.stderr
    assert "bone length CV" in proc.stdout and "RMSE" in proc.stdout
    assert (tmp_path / "pose.zarr").is_dir() and (tmp_path / "pose.filtered.trc").is_file()
    assert (tmp_path / "recording" / "mocapflow.zarr").is_dir()


def test_run_tracks_triangulates_filters_exports(recording_copy, markers_recording):
    import shutil

    import numpy as np

    calib = recording_copy / "calibration.toml"
    shutil.copy(markers_recording / "true_calibration.toml", calib)
    proc = run("run", recording_copy, "-t", "markers", "--calibration", calib, "--max-error", "2")
    assert proc.returncode == 0, proc.stderr
    store = recording_copy / "mocapflow.zarr"
    for group in ("points3d", "filtered"):
        ds = xr.open_zarr(store, group=group, consolidated=False)
        assert ds.position.dims == ("time", "space", "keypoint", "individual")
        assert set(ds.data_vars) == {
            "position",
            "confidence",
            "reprojection_error",
            "n_views",
            "lr_swapped",
        }
        assert not ds.lr_swapped.any()  # markers have no left/right pairs
    assert "100.0% of points triangulated" in proc.stdout
    arr = np.load(recording_copy / "rec copy é.filtered.npy")
    assert arr.shape == (90, 6, 3)
    assert (recording_copy / "rec copy é.filtered.trc").read_text().startswith("PathFileType")
    header = (recording_copy / "rec copy é.filtered.csv").read_text().splitlines()[0]
    assert header.startswith("marker0_x,marker0_y,marker0_z,marker0_error,marker0_ncams")  # anipose
    # The separate commands give the same points.
    again = run("triangulate", store, "--calibration", calib, "--max-error", "2")
    assert again.returncode == 0, again.stderr
    assert run("filter", store).returncode == 0
    exp = run("export", store, "-f", "npy", "--out-dir", recording_copy / "x")
    assert exp.returncode == 0, exp.stderr
    np.testing.assert_array_equal(np.load(recording_copy / "x/rec copy é.filtered.npy"), arr)


def test_3d_commands_give_one_line_errors(recording_copy, tmp_path):
    proc = run("triangulate", tmp_path / "none.zarr", "--calibration", tmp_path / "c.toml")
    assert proc.returncode == 2 and "c.toml: calibration file not found" in one_line_error(proc)
    proc = run("calibrate", recording_copy, "--out", tmp_path / "c.toml")  # no board in view
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert errors == [proc.stderr.strip().splitlines()[-1]]
    # A few frames are looked at before tracking: no board, and no alternative, names the checks.
    assert "a 7x5 ChArUco board of DICT_4X4_250 was found in none of 24 sampled" in errors[0]
    assert "check that the board is in view" in errors[0]
    assert run("process", recording_copy, "-t", "markers", "--overwrite").returncode == 0
    store = recording_copy / "mocapflow.zarr"
    proc = run("export", store)
    assert proc.returncode == 2 and "no 3-D points (only the 2-D tracks" in one_line_error(proc)
    assert f"make them with mocapflow triangulate {store} -c CALIBRATION" in proc.stderr
    proc = run("filter", store)
    assert proc.returncode == 2 and "no points3d group" in one_line_error(proc)
    proc = run("run", recording_copy)
    assert proc.returncode == 2 and "calibration file or a calibration recording" in one_line_error(
        proc
    )


def test_cluster_show_threads(tmp_path):
    proc = run("cluster", "show", "threads", cwd=tmp_path)  # built in: no cluster.yaml there
    assert proc.returncode == 0, proc.stderr
    assert "profile 'threads' (local) from built-in" in proc.stdout
    assert "worker threads in this process" in proc.stdout
    assert "memory limit of this process" in proc.stdout
