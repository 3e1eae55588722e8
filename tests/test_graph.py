"""The lazy graphs: nothing runs until computed, and they equal the numpy kernels."""

from __future__ import annotations

import numpy as np

import mocapflow
from conftest import oracle_tracks
from mocapflow.trackers import get_tracker


def test_lazy_graph_computes_nothing_until_asked(markers_recording, tmp_path):
    ds = mocapflow.track(markers_recording, "framestats", chunk_frames=30)
    assert not (markers_recording / "mocapflow.zarr").exists()
    assert ds.frame_mean.shape == (4, 90, 3)
    n_tasks = len(ds.__dask_graph__())
    assert n_tasks > 4 * 3  # one decode task per chunk, plus the assembly
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=1, dashboard_address=":0") as c, Client(c):
        computed = ds.compute()
    want = oracle_tracks(markers_recording, get_tracker("framestats"))["frame_mean"]
    np.testing.assert_array_equal(computed.frame_mean.values, want)


def test_task_keys_group_by_stage_and_view():
    """The dashboard groups tasks by Dask's key prefix: one group per stage and view."""
    from dask.utils import key_split

    from mocapflow.graph import task_key
    from mocapflow.plan import ChunkSpec

    def spec(view: str, start: int) -> ChunkSpec:
        return ChunkSpec(0, view, "v.mp4", start, start + 30, 0, None, 300)

    assert key_split(task_key(spec("cam2", 60), "0a1b2c3d")) == "track_cam2"
    assert key_split(task_key(spec("cam-2 left", 0), "deadbeef")) == "track_cam_2_left"
    assert key_split(task_key(spec("cam2", 0), "0a1b2c3d")) != key_split(
        task_key(spec("cam3", 0), "0a1b2c3d")
    )
    # names that clean up alike still give distinct tasks (the view's index)
    cam_1 = ChunkSpec(0, "cam-1", "a.mp4", 0, 30, 0, None, 300)
    cam_1b = ChunkSpec(1, "cam_1", "b.mp4", 0, 30, 0, None, 300)
    assert task_key(cam_1, "0a1b2c3d") != task_key(cam_1b, "0a1b2c3d")


def test_longer_tasks_run_first(markers_recording, tmp_path):
    """On one worker thread, every full-length task starts before any short tail task.

    Each 90-frame view is planned as one 60-frame task and a 30-frame tail; run
    longest first, the tails fill the end of a run instead of leaving one
    worker on a long task while the others idle.
    """
    from distributed import Client, LocalCluster, get_task_stream

    from mocapflow.runner import process

    with (
        LocalCluster(n_workers=1, threads_per_worker=1, dashboard_address=":0") as c,
        Client(c) as client,
        get_task_stream(client) as ts,
    ):
        process(markers_recording, "framestats", tmp_path / "s.zarr", chunk_frames=60,
                cluster=client, report=False)  # fmt: skip
    tracked = sorted(
        (t["startstops"][0]["start"], t["key"]) for t in ts.data if t["key"].startswith("track_")
    )
    starts = [int(key.rsplit("-", 1)[1]) for _, key in tracked]
    assert sorted(starts) == [0] * 4 + [60] * 4
    assert starts == [0] * 4 + [60] * 4, tracked
