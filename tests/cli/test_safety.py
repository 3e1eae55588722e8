"""Data safety through the CLI, one test per case of the safety issue.

Each asserts the exit code, the one-line message (naming the file), and that
no good data was lost.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from mocapflow import ledger

BIN = Path(sys.executable).parent
EXE = str(BIN / "mocapflow")
HELPERS = Path(__file__).resolve().parents[1] / "helpers"
FAST = ["-t", "markers", "--chunk-frames", "30", "--no-report", "--workers", "2"]


def run(*args, cwd=None, env=None, timeout=300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [EXE, *map(str, args)], capture_output=True, text=True, timeout=timeout, cwd=cwd, env=env
    )


def error_line(proc) -> str:
    """The one error line of a failed command (progress lines above it are allowed)."""
    assert "Traceback" not in proc.stderr + proc.stdout, proc.stderr
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1, proc.stderr
    return errors[0]


def slow_env() -> dict:
    return {**os.environ, "PYTHONPATH": str(HELPERS)}


def start_slow(rec: Path, store: Path, delay: float = 0.015, inner="framestats"):
    """A run that takes a few seconds, in its own process group."""
    return subprocess.Popen(
        [
            EXE,
            "process",
            rec,
            "-t",
            "slowtrack:Slow",
            "-p",
            f"delay={delay}",
            "-p",
            f"inner={inner}",
        ]
        + ["--out", store, "--chunk-frames", "15", "--no-report", "--workers", "1"],
        env=slow_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def wait_for_records(store: Path, n: int, proc, timeout: float = 60) -> None:
    folder = store / ledger.LEDGER_GROUP / "chunks"
    t0 = time.time()
    while time.time() - t0 < timeout:
        if folder.is_dir() and len(list(folder.glob("*.json"))) >= n:
            return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    raise AssertionError("the run made no progress")


@pytest.fixture(scope="module")
def tracked_once(markers_recording, tmp_path_factory):
    """A finished markers store with its points3d and filtered groups, made once."""
    rec = tmp_path_factory.mktemp("tracked") / "rec"
    shutil.copytree(markers_recording / "synchronized_videos", rec / "synchronized_videos")
    shutil.copy(markers_recording / "true_calibration.toml", rec / "calibration.toml")
    proc = run("run", rec, "-c", rec / "calibration.toml", *FAST)
    assert proc.returncode == 0, proc.stderr
    return rec


@pytest.fixture()
def tracked(tracked_once, tmp_path):
    """A private copy of the finished store and its recording (mtimes kept)."""
    rec = tmp_path / "rec copy é"
    shutil.copytree(tracked_once, rec)
    return rec, rec / "mocapflow.zarr"


def values(store: Path, group: str | None = None) -> dict:
    ds = xr.open_zarr(store, group=group, consolidated=False)
    return {k: v.values for k, v in ds.data_vars.items()}


# 1 ---------------------------------------------------------------------------------------
@pytest.mark.slow  # make test-all (and CI)
def test_1_batch_leaves_a_store_of_another_tracker_alone(tracked):
    rec, store = tracked
    before = values(store, "points3d")
    proc = run("batch", rec.parent, "-t", "framestats", "--chunk-frames", "30")
    assert proc.returncode == 0, proc.stderr
    log = [json.loads(x) for x in (rec.parent / "mocapflow-batch.jsonl").read_text().splitlines()]
    mine = next(r for r in log if Path(r["recording"]) == rec)
    assert mine["action"] == "left" and "tracker 'markers' -> 'framestats'" in mine["error"]
    np.testing.assert_array_equal(values(store, "points3d")["position"], before["position"])
    assert xr.open_zarr(store, group="filtered", consolidated=False).sizes["time"] == 90


# 2 ---------------------------------------------------------------------------------------
@pytest.mark.slow  # make test-all (and CI)
def test_2_derived_groups_and_exports_say_when_they_are_stale(recording_copy, markers_recording):
    rec, store = recording_copy, recording_copy / "mocapflow.zarr"
    calibration = markers_recording / "true_calibration.toml"
    # An impatient user triangulates a run that was killed half way, and exports it.
    proc = start_slow(rec, store, inner="markers")
    wait_for_records(store, 12, proc)  # two views' worth: some frames have 3-D points
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate()
    assert run("triangulate", store, "-c", calibration).returncode == 0
    assert run("filter", store).returncode == 0
    assert run("export", store, "-f", "npy").returncode == 0
    assert "stale" not in run("info", store).stdout
    # The run is resumed: the 2-D tracks change under the 3-D groups and the export.
    resume = subprocess.run(
        [EXE, "process", rec, "-t", "slowtrack:Slow", "-p", "delay=0.015", "-p", "inner=markers",
         "--out", store, "--chunk-frames", "15", "--no-report"],
        env=slow_env(), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert resume.returncode == 0, resume.stderr
    out = run("info", store).stdout.replace("\n", " ")
    assert "stale: points3d: made from the 2-D tracks as they were before" in out
    assert "stale: filtered" in out and "rec copy é.filtered.npy" in out
    filt = run("filter", store)
    assert filt.returncode == 0 and "points3d is stale" in filt.stderr
    assert xr.open_zarr(store, group="points3d", consolidated=False).sizes["time"] == 90
    assert run("triangulate", store, "-c", calibration).returncode == 0
    assert "stale: points3d" not in run("info", store).stdout.replace("\n", " ")


# 3 ---------------------------------------------------------------------------------------
def test_3_a_video_replaced_during_the_run_fails_its_view(recording_copy, tmp_path):
    store = tmp_path / "s.zarr"
    proc = start_slow(recording_copy, store)
    wait_for_records(store, 1, proc)
    videos = recording_copy / "synchronized_videos"
    replacement = tmp_path / "new.mp4"
    data = bytearray((videos / "cam1.mp4").read_bytes())
    data[len(data) // 2] ^= 0xFF  # other content, same size
    replacement.write_bytes(bytes(data))
    os.replace(replacement, videos / "cam3.mp4")
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 1, err
    line = next(ln for ln in out.splitlines() if ln.startswith("cam3:"))
    assert "cam3.mp4: the video changed during the run" in line
    attrs = xr.open_zarr(store, consolidated=False).attrs
    assert not attrs["completed"] and attrs["view_status"]["cam3"]["status"] == "failed"
    again = subprocess.run(
        [EXE, "process", recording_copy, "-t", "slowtrack:Slow", "-p", "delay=0.015",
         "-p", "inner=framestats", "--out", store, "--chunk-frames", "15"],
        env=slow_env(), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert again.returncode == 2 and "video cam3 changed" in error_line(again)


# 4 ---------------------------------------------------------------------------------------
def test_4_a_second_run_on_a_busy_store_says_who_holds_it(recording_copy, tmp_path):
    store = tmp_path / "s.zarr"
    first = start_slow(recording_copy, store)
    wait_for_records(store, 1, first)
    second = subprocess.run(
        [EXE, "process", recording_copy, "-t", "slowtrack:Slow", "--out", store, "--overwrite"],
        env=slow_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert second.returncode == 2
    line = error_line(second)
    assert f"{store}: busy: process {first.pid} on" in line
    first.communicate(timeout=300)
    assert first.returncode == 0
    attrs = xr.open_zarr(store, consolidated=False).attrs
    assert attrs["completed"]  # the first run was never disturbed


# 5 ---------------------------------------------------------------------------------------
def test_5_a_copy_with_new_mtimes_resumes(tracked, tmp_path):
    rec, _ = tracked
    copy = tmp_path / "copy"
    shutil.copytree(rec, copy)  # copytree keeps mtimes; touch them all, as cp -r does
    for f in copy.rglob("*.mp4"):
        os.utime(f, None)
    proc = run("process", copy, *FAST)
    assert proc.returncode == 0, proc.stderr
    assert "0 chunks computed, 12 skipped" in proc.stdout


# 6 ---------------------------------------------------------------------------------------
def _damage_cases(store: Path) -> dict:
    chunk = store / "position" / "c" / "1" / "1" / "0" / "0" / "0"
    return {
        "deleted chunk": (lambda: chunk.unlink(), "position/c/1/1/0/0/0: missing"),
        "garbage chunk": (
            lambda: chunk.write_bytes(b"garbage" * 10),
            "position/c/1/1/0/0/0: damaged (its checksum differs)",
        ),
        "deleted array metadata": (
            lambda: (store / "position" / "zarr.json").unlink(),
            "position: its metadata (zarr.json) is missing",
        ),
        "truncated root metadata": (
            lambda: (store / "zarr.json").write_text((store / "zarr.json").read_text()[:50]),
            "zarr.json: the root metadata is missing or unreadable",
        ),
    }


@pytest.mark.parametrize(
    "case",
    ["deleted chunk", "garbage chunk", "deleted array metadata", "truncated root metadata"],
)
def test_6_damage_is_found_named_and_repaired(tracked, case):
    rec, store = tracked
    good = values(store)
    damage, message = _damage_cases(store)[case]
    damage()
    verify = run("verify", store)
    assert verify.returncode == 1 and message in verify.stdout.replace("\n", " ")
    info = run("info", store)
    assert info.returncode == 0 and "complete: no: damaged" in info.stdout
    tri = run("triangulate", store, "-c", rec / "calibration.toml")
    assert tri.returncode == 2
    assert f"{store}: damaged: {message}" in error_line(tri)
    fix = run("process", rec, *FAST)
    assert fix.returncode == 0, fix.stderr
    if "chunk" in case:  # exactly the damaged task is recomputed
        assert "1 chunks computed, 11 skipped" in fix.stdout
    assert run("verify", store).returncode == 0
    repaired = values(store)
    for name in good:
        np.testing.assert_array_equal(repaired[name], good[name], err_msg=name)


# 7 ---------------------------------------------------------------------------------------
def test_7_non_finite_or_impossible_calibrations_are_refused(tracked, tmp_path):
    import tomllib

    import tomli_w

    rec, store = tracked

    def spoil(key, index, value):
        doc = tomllib.loads((rec / "calibration.toml").read_text())
        cam = next(t for t in doc.values() if isinstance(t, dict) and t.get("name") == "cam1")
        target = cam[key]
        while isinstance(target[index[0]], list):
            target, index = target[index[0]], index[1:]
        target[index[0]] = value
        return tomli_w.dumps(doc)

    cases = {
        "nan": (spoil("distortions", [0], float("nan")), "NaN or infinite"),
        "focal": (spoil("matrix", [0, 0], -800.0), "focal lengths must be positive"),
        "inf": (spoil("translation", [2], float("inf")), "NaN or infinite"),
    }
    for name, (body, message) in cases.items():
        bad = tmp_path / f"{name}.toml"
        bad.write_text(body)
        proc = run("triangulate", store, "-c", bad)
        assert proc.returncode == 2, (name, proc.stderr)
        line = error_line(proc)
        assert f"{bad}: camera cam1" in line and message in line, line


# 8 ---------------------------------------------------------------------------------------
def test_8_a_dangling_symlink_is_a_failed_view(recording_copy, tmp_path):
    videos = recording_copy / "synchronized_videos"
    (videos / "cam5.mp4").symlink_to(tmp_path / "unmounted" / "cam5.mp4")
    proc = run("process", recording_copy, "-t", "framestats", "--out", tmp_path / "s.zarr")
    assert proc.returncode == 1
    out = proc.stdout.replace("\n", " ")
    assert "cam5" in out and "failed" in out
    status = xr.open_zarr(tmp_path / "s.zarr", consolidated=False).attrs["view_status"]
    assert "which does not exist" in status["cam5"]["error"]
    assert all(status[f"cam{i}"]["status"] == "ok" for i in range(1, 5))


# 9 ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("sig", "code", "word"),
    [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated")],
)
def test_9_ctrl_c_to_the_process_group_prints_one_line(recording_copy, tmp_path, sig, code, word):
    store = tmp_path / "s.zarr"
    proc = start_slow(recording_copy, store)
    wait_for_records(store, 2, proc)
    os.killpg(proc.pid, sig)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err
    assert "Traceback" not in err and "Error" not in err, err
    header = ("dashboard:", "cluster:", "profile:", "tracking")
    lines = [ln for ln in err.splitlines() if ln.strip() and not ln.startswith(header)]
    assert lines == [f"{word}; rerun the same command to resume"], err
    again = subprocess.run(
        [EXE, "process", recording_copy, "-t", "slowtrack:Slow", "-p", "delay=0.015",
         "-p", "inner=framestats", "--out", store, "--chunk-frames", "15", "--no-report"],
        env=slow_env(), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert again.returncode == 0 and "skipped" in again.stdout


# 10 --------------------------------------------------------------------------------------
@pytest.fixture()
def small_disk(tmp_path):
    """A 3 MiB tmpfs: room for the template and a few chunks, not for the whole run."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)])
    if done.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    yield mount
    subprocess.run(["umount", "-l", str(mount)])


@pytest.mark.slow  # make test-all (and CI)
def test_10_a_full_disk_stops_the_run_at_once_in_one_line(markers_recording, tmp_path, small_disk):
    rec = tmp_path / "rec"
    shutil.copytree(markers_recording / "synchronized_videos", rec / "synchronized_videos")
    for i in range(5, 13):  # 12 views: more than the disk holds
        shutil.copy(
            rec / "synchronized_videos" / "cam1.mp4", rec / "synchronized_videos" / f"cam{i}.mp4"
        )
    store = small_disk / "s.zarr"
    t0 = time.time()
    proc = run("process", rec, "-t", "markers", "--chunk-frames", "15", "--out", store)
    assert proc.returncode == 2, proc.stderr
    line = error_line(proc)
    assert f"{store}: cannot write: No space left on device" in line and "MiB free" in line
    assert time.time() - t0 < 60  # no minutes of retries
    assert not (small_disk / "s.report.html").exists()  # no report cut short left behind
    assert len(proc.stderr.splitlines()) < 8
    # with room again, the rerun resumes
    big = tmp_path / "big.zarr"
    shutil.copytree(store, big)
    again = run("process", rec, "-t", "markers", "--chunk-frames", "15", "--out", big)
    assert again.returncode == 0, again.stderr
    assert "skipped" in again.stdout and run("verify", big).returncode == 0


# 11 --------------------------------------------------------------------------------------
@pytest.mark.slow  # make test-all (and CI)
def test_11_worker_counts_are_capped_warned_and_refused(recording_copy, tmp_path):
    proc = run("process", recording_copy, "-t", "framestats", "--out", tmp_path / "a.zarr",
               "--chunk-frames", "90", "--workers", "3", "--no-report")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "3 workers on 2 usable cores" in proc.stderr or os.cpu_count() > 2
    # 4 tasks: 3 workers asked, 3 started
    assert xr.open_zarr(tmp_path / "a.zarr", consolidated=False).attrs["cluster"]["workers"] == 3
    proc = run("process", recording_copy, "-t", "framestats", "--out", tmp_path / "b.zarr",
               "--chunk-frames", "90", "--workers", "9", "--no-report")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "4 workers: 9 asked, but there are only 4 tasks" in proc.stderr
    proc = run("process", recording_copy, "--out", tmp_path / "c.zarr", "--workers", "1000")
    assert proc.returncode == 2 and "--workers 1000: that many workers need" in error_line(proc)
    assert not (tmp_path / "c.zarr").exists()


# 12 --------------------------------------------------------------------------------------
def test_12_a_store_name_too_long_is_refused_before_any_work(recording_copy, tmp_path):
    store = tmp_path / ("s" * 245 + ".zarr")
    proc = run("process", recording_copy, "-t", "framestats", "--out", store)
    assert proc.returncode == 2
    assert "bytes, more than the 255 its file system allows" in error_line(proc)
    assert not store.exists() and list(tmp_path.iterdir()) == [recording_copy]


# 13 --------------------------------------------------------------------------------------
def test_13_the_dashboard_address_bound_and_the_profile_file_are_printed(recording_copy, tmp_path):
    (tmp_path / "cluster.yaml").write_text(
        "profiles:\n  local:\n    type: local\n    dashboard_address: 0.0.0.0:0\n"
    )
    proc = run("process", recording_copy, "-t", "framestats", "--out", tmp_path / "s.zarr",
               "--no-report", cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "warning: the dashboard listens on 0.0.0.0" in proc.stderr
    assert "profile:   local from cluster.yaml" in proc.stderr
    dashboard = next(ln for ln in proc.stderr.splitlines() if ln.startswith("dashboard:"))
    assert ":8787/" not in dashboard  # the port actually bound is printed


# 14 --------------------------------------------------------------------------------------
def test_14_options_are_checked_before_the_disk_is_touched(recording_copy, tmp_path):
    for args, message in [
        (["--dashboard", "nonsense"], "--dashboard 'nonsense': write it as host:port"),
        (["--workers", "0"], "--workers must be at least 1"),
        (["--chunk-frames", "0"], "--chunk-frames must be a positive number"),
    ]:
        proc = run(
            "process", recording_copy, "-t", "framestats", "--out", tmp_path / "s.zarr", *args
        )
        assert proc.returncode == 2 and message in error_line(proc), (args, proc.stderr)
        assert not (tmp_path / "s.zarr").exists()


# 15 --------------------------------------------------------------------------------------
@pytest.mark.slow  # make test-all (and CI)
def test_15_triangulation_says_the_real_reason(recording_copy, markers_recording, tmp_path):
    calibration = markers_recording / "true_calibration.toml"
    one = tmp_path / "one"
    (one / "synchronized_videos").mkdir(parents=True)
    shutil.copy(recording_copy / "synchronized_videos" / "cam1.mp4", one / "synchronized_videos")
    assert run("process", one, "-t", "markers", "--no-report").returncode == 0
    proc = run("triangulate", one / "mocapflow.zarr", "-c", calibration)
    assert proc.returncode == 2
    assert "holds 1 view(s) (cam1); triangulation needs at least 2 cameras" in error_line(proc)
    stats = tmp_path / "stats.zarr"
    assert run("process", recording_copy, "-t", "framestats", "--out", stats).returncode == 0
    proc = run("triangulate", stats, "-c", calibration)
    assert proc.returncode == 2
    assert "holds no 2-D points (framestats tracks decoded, frame_mean" in error_line(proc)
