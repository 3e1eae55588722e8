"""Runs of the whole dataflow on a real LocalCluster, checked against the sequential oracle."""

from __future__ import annotations

import shutil
import threading
import time

import numpy as np
import psutil
import pytest
import xarray as xr

import mocapflow
from conftest import oracle_tracks, write_video
from mocapflow import ledger
from mocapflow.errors import StoreError
from mocapflow.trackers import get_tracker


@pytest.mark.parametrize(("tracker", "chunk"), [("framestats", 7), ("markers", 25)])
def test_store_equals_sequential_oracle_tracks(markers_recording, tmp_path, tracker, chunk):
    result = mocapflow.process(
        markers_recording,
        tracker,
        tmp_path / "s.zarr",
        chunk_frames=chunk,
        cluster=mocapflow.ClusterOptions(workers=2),
    )
    assert result.exit_code == 0 and result.computed == result.n_tasks
    ds = xr.open_zarr(result.store, consolidated=False)
    for name, want in oracle_tracks(markers_recording, get_tracker(tracker)).items():
        np.testing.assert_array_equal(ds[name].values, want, err_msg=name)
    assert ds.decoded.values.all() and ds.attrs["completed"]
    assert ds.attrs["cluster"]["workers"] == 2 and ds.attrs["tracker"] == tracker
    assert result.report.exists() and result.report.stat().st_size > 100_000
    # The report's "calling code" is the run in words, not a function of mocapflow's.
    assert f"mocapflow process: {result.n_tasks} tasks over 4 videos, tracker {tracker}(" in (
        result.report.read_text()
    )


def test_resume_recomputes_only_missing_chunks(markers_recording, tmp_path):
    path = tmp_path / "s.zarr"
    first = mocapflow.process(
        markers_recording,
        "markers",
        path,
        chunk_frames=20,
        cluster=mocapflow.ClusterOptions(workers=2),
    )
    before = xr.open_zarr(path, consolidated=False).load()
    records = sorted((path / ledger.LEDGER_GROUP / "chunks").glob("*.json"))
    for f in records[::3]:
        f.unlink()
    again = mocapflow.process(
        markers_recording,
        "markers",
        path,
        chunk_frames=20,
        cluster=mocapflow.ClusterOptions(workers=2),
    )
    assert again.computed == len(records[::3]) and again.skipped == first.n_tasks - again.computed
    after = xr.open_zarr(path, consolidated=False).load()
    for name in before.data_vars:
        np.testing.assert_array_equal(after[name].values, before[name].values)


def test_changed_inputs_are_refused_unless_overwrite(markers_recording, tmp_path):
    path = tmp_path / "s.zarr"
    mocapflow.process(
        markers_recording,
        "framestats",
        path,
        chunk_frames=45,
        cluster=mocapflow.ClusterOptions(workers=1),
    )
    with pytest.raises(StoreError, match="other inputs.*tracker.*--overwrite"):
        mocapflow.process(
            markers_recording,
            "markers",
            path,
            chunk_frames=45,
            cluster=mocapflow.ClusterOptions(workers=1),
        )
    res = mocapflow.process(
        markers_recording,
        "markers",
        path,
        chunk_frames=45,
        cluster=mocapflow.ClusterOptions(workers=1),
        overwrite=True,
    )
    assert res.exit_code == 0 and "position" in xr.open_zarr(path, consolidated=False)


def peak_children(run):
    """Call ``run()`` while counting this process's descendants: ``(result, most seen)``."""
    me = psutil.Process()
    peak = [len(me.children(recursive=True))]
    stop = threading.Event()

    def watch():
        while not stop.is_set():
            peak[0] = max(peak[0], len(me.children(recursive=True)))
            time.sleep(0.02)

    t = threading.Thread(target=watch)
    t.start()
    try:
        return run(), peak[0]
    finally:
        stop.set()
        t.join()


def test_process_count_is_bounded_by_workers(markers_recording, tmp_path):
    """12 videos on 2 workers: never more than workers plus their nannies' helpers."""
    folder = tmp_path / "twelve"
    folder.mkdir()
    src = markers_recording / "synchronized_videos" / "cam1.mp4"
    for i in range(12):
        shutil.copy(src, folder / f"cam{i + 1}.mp4")
    res, peak = peak_children(
        lambda: mocapflow.process(folder, "framestats", tmp_path / "s.zarr", chunk_frames=30)
    )
    workers = res.sizing["workers"]
    assert res.n_tasks == 36 and workers <= 2
    assert 1 <= peak <= 2 * workers, f"{peak} processes for {workers} workers"


def test_a_broken_video_fails_only_its_view(recording_copy, tmp_path, codec_videos):
    videos = recording_copy / "synchronized_videos"
    (videos / "cam2.mp4").write_text("not a video at all")
    data = (videos / "cam4.mp4").read_bytes()
    (videos / "cam4.mp4").write_bytes(data[: int(len(data) * 0.6)])
    res = mocapflow.process(recording_copy, "framestats", tmp_path / "s.zarr", chunk_frames=20)
    assert res.exit_code == 1
    assert res.views["cam1"]["status"] == "ok" and res.views["cam3"]["status"] == "ok"
    assert (
        res.views["cam2"]["status"] == "failed"
        and "not a readable video" in res.views["cam2"]["error"]
    )
    assert res.views["cam4"]["status"] in ("partial", "ok")
    ds = xr.open_zarr(res.store, consolidated=False)
    want = oracle_tracks(recording_copy, get_tracker("framestats"))
    for i in (0, 2):
        np.testing.assert_array_equal(ds.frame_mean.values[i], want["frame_mean"][i])
    assert not ds.decoded.values[1].any()
    n4 = int(ds.decoded.values[3].sum())
    assert n4 == res.views["cam4"]["n_decoded"]
    assert np.isfinite(ds.frame_mean.values[3, :n4]).all()
    assert np.isnan(ds.frame_mean.values[3, n4 : ds.n_frames.values[3]]).all()


def test_runs_on_a_users_client(markers_recording, tmp_path):
    from distributed import Client, LocalCluster

    with (
        LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=":0") as c,
        Client(c) as cl,
    ):
        res = mocapflow.process(
            markers_recording, "framestats", tmp_path / "s.zarr", cluster=cl, report=False
        )
        assert cl.status == "running"
    assert res.exit_code == 0 and res.sizing is None


def test_a_tracker_that_raises_fails_only_its_chunk(tmp_path, codec_videos):
    """Retried, then recorded failed with its message; every other chunk is written."""
    from conftest import FailOn

    rec = tmp_path / "rec"
    rec.mkdir()
    shutil.copy(codec_videos["h264"], rec / "cam1.mp4")
    frames = np.full((60, 64, 64, 3), 50, np.uint8)
    frames[45] = 250  # only the chunk holding frame 45 makes the tracker raise
    write_video(rec / "cam2.mp4", frames, "h264", gop=30)
    res = mocapflow.process(
        rec,
        FailOn(fail_mean_above=200),
        tmp_path / "s.zarr",
        chunk_frames=15,
        cluster=mocapflow.ClusterOptions(workers=2),
        report=False,
    )
    assert res.exit_code == 1
    assert len(res.failed_tasks) == 1
    failed = res.failed_tasks[0]
    assert (failed["view"], failed["start"], failed["stop"]) == ("cam2", 45, 60)
    assert "RuntimeError: tracker blew up on a bright frame" in failed["error"]
    assert res.views["cam1"]["status"] == "ok" and res.views["cam2"]["status"] == "partial"
    ds = xr.open_zarr(res.store, consolidated=False)
    assert ds.decoded.values[1, :45].all() and not ds.decoded.values[1, 45:].any()
    assert not ds.attrs["completed"] and ds.attrs["view_status"]["cam2"]["status"] == "partial"
    again = mocapflow.process(
        rec,
        FailOn(fail_mean_above=200),
        tmp_path / "s.zarr",
        chunk_frames=15,
        cluster=mocapflow.ClusterOptions(workers=1),
        report=False,
    )
    assert again.computed == 1 and again.exit_code == 1  # only the failed chunk is retried


def test_worker_threads_in_this_process(markers_recording, tmp_path):
    """The ``threads`` profile: the oracle's results, no child process, settings given back
    (and nothing of this process frozen: only worker processes freeze their heap)."""
    import gc
    import os

    import cv2

    from mocapflow.video import THREADS_ENV

    before = (cv2.getNumThreads(), os.environ.get(THREADS_ENV), gc.get_freeze_count())
    children = len(psutil.Process().children(recursive=True))
    result, peak = peak_children(
        lambda: mocapflow.process(
            markers_recording,
            "markers",
            tmp_path / "s.zarr",
            chunk_frames=25,
            cluster=mocapflow.ClusterOptions("threads", workers=2),
        )
    )
    assert result.exit_code == 0 and result.computed == result.n_tasks
    assert result.sizing["processes"] is False and result.sizing["threads_per_worker"] == 2
    assert peak == children, "worker threads start no process"
    assert result.dashboard.startswith("http://127.0.0.1:")  # where it listens
    ds = xr.open_zarr(result.store, consolidated=False)
    for name, want in oracle_tracks(markers_recording, get_tracker("markers")).items():
        np.testing.assert_array_equal(ds[name].values, want, err_msg=name)
    assert ds.attrs["cluster"]["processes"] is False
    after = (cv2.getNumThreads(), os.environ.get(THREADS_ENV), gc.get_freeze_count())
    assert after == before


def test_tracking_imports_neither_xarray_nor_dask_arrays(markers_recording, tmp_path):
    """The store is created, summed up and reported straight through Zarr: a tracking
    run loads no xarray, pandas or dask.array (0.5 s and 60 MB at its start, as much
    again in its report)."""
    import subprocess
    import sys

    code = (
        "import sys, mocapflow\n"
        f"r = mocapflow.process({str(markers_recording)!r}, 'markers',"
        f" {str(tmp_path / 's.zarr')!r}, chunk_frames=30,"
        " cluster=mocapflow.ClusterOptions('threads', workers=2))\n"
        "assert r.exit_code == 0 and r.computed == r.n_tasks, r\n"
        "print(sorted(m for m in ('xarray', 'pandas', 'dask.array') if m in sys.modules))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().splitlines()[-1] == "[]"
    assert (tmp_path / "s.report.html").stat().st_size > 0
    ds = xr.open_zarr(tmp_path / "s.zarr", consolidated=False)
    for name, want in oracle_tracks(markers_recording, get_tracker("markers")).items():
        np.testing.assert_array_equal(ds[name].values, want)
