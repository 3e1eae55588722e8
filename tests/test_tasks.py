"""The chunk planner and the per-chunk task, without Dask."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import sequential_frames
from mocapflow import ledger, schema
from mocapflow.plan import _boundaries, make_plan, plan_chunks
from mocapflow.recording import open_recording
from mocapflow.schema import time_chunk_for
from mocapflow.tasks import run_chunk, track_chunk
from mocapflow.trackers import get_tracker


@pytest.mark.parametrize("chunk", [1, 7, 30, 45, 240, 10_000])
@pytest.mark.parametrize("gop", [1, 50, 120, 250])
def test_boundaries_cover_the_video_on_the_grid(chunk, gop):
    n = 1000
    keyframes = np.arange(0, n, gop)
    grid = time_chunk_for(chunk)
    b = _boundaries(n, keyframes, chunk, grid)
    assert b[0] == 0 and b[-1] == n and bool(np.all(np.diff(b) > 0))
    assert all(x % grid == 0 for x in b[:-1])
    lengths = np.diff(b)
    assert lengths.max() <= max(chunk + chunk // 2 + grid, grid)


def test_boundaries_start_just_after_keyframes():
    keyframes = np.arange(0, 2000, 250)  # x264's default interval
    b = _boundaries(2000, keyframes, 240, 30)
    waste = [s - keyframes[keyframes <= s].max() for s in b[:-1]]
    assert max(waste) < 30, b  # a task never decodes a whole Zarr chunk it does not own


def test_plan_uses_every_frame_once(markers_recording):
    rec = open_recording(markers_recording)
    specs = plan_chunks(rec, 25)
    for i, view in enumerate(rec.views):
        mine = [s for s in specs if s.view_index == i]
        covered = np.concatenate([np.arange(s.start, s.stop) for s in mine])
        np.testing.assert_array_equal(covered, np.arange(view.n_frames))
    with pytest.raises(ValueError):
        plan_chunks(rec, 0)


@pytest.mark.parametrize("batch", [None, 1, 4])
def test_track_chunk_equals_tracker_on_sequential_frames(markers_recording, batch):
    """Batches of 4 (copied into a buffer) and of 1 (each frame as decoded) alike."""
    rec = open_recording(markers_recording)
    trk = get_tracker("framestats")
    assert trk.batch_frames == 1  # None: the tracker's own, frame by frame
    oracle = sequential_frames(rec.views[1].path)
    for spec in [s for s in plan_chunks(rec, 7) if s.view_index == 1]:
        got = track_chunk(spec, trk, batch=batch)
        want = trk(oracle[spec.start : spec.stop])
        assert got["n_decoded"] == spec.n_frames and got["error"] is None
        np.testing.assert_array_equal(got["arrays"]["frame_mean"], want["frame_mean"])
        np.testing.assert_array_equal(got["arrays"]["frame_std"], want["frame_std"])


def test_batch_frames_must_be_a_positive_integer(markers_recording):
    from dataclasses import dataclass

    from mocapflow.trackers import TrackerError
    from mocapflow.trackers.framestats import FrameStats

    @dataclass(frozen=True)
    class Bad(FrameStats):
        batch_frames = 0

    spec = plan_chunks(open_recording(markers_recording), 7)[0]
    with pytest.raises(TrackerError, match="batch_frames must be a positive integer"):
        track_chunk(spec, Bad())
    with pytest.raises(TrackerError, match="batch needs at least 1 frame"):
        track_chunk(spec, FrameStats(), batch=0)
    # Refused once, before any cluster starts, not in every task.
    import mocapflow

    with pytest.raises(TrackerError, match="batch_frames"):
        mocapflow.process(markers_recording, Bad(), markers_recording.parent / "never.zarr")
    assert not (markers_recording.parent / "never.zarr").exists()


def test_a_batch_of_one_is_a_read_only_view(markers_recording):
    """Each decoded frame reaches a frame-by-frame tracker as it is: a view it cannot write."""
    from mocapflow.trackers.framestats import FrameStats

    seen = []

    class Keep(FrameStats):
        def __call__(self, frames):
            seen.append((frames.flags.writeable, frames.base is not None, frames.shape))
            return super().__call__(frames)

    spec = plan_chunks(open_recording(markers_recording), 7)[0]
    track_chunk(spec, Keep())
    assert len(seen) == spec.n_frames
    assert all(not w and is_view and shape[0] == 1 for w, is_view, shape in seen)


def test_run_chunk_writes_and_records(markers_recording, tmp_path):
    rec = open_recording(markers_recording)
    trk = get_tracker("framestats")
    path = tmp_path / "s.zarr"
    ledger.prepare(path, make_plan(rec, trk, 10), overwrite=False)
    spec = [s for s in plan_chunks(rec, 40) if s.view_index == 3][-1]
    record = run_chunk(spec, trk, str(path), schema.time_chunk_for(10))
    assert record["status"] == "ok" and record["n_decoded"] == spec.n_frames
    assert spec.key in ledger.done_chunks(path)
    assert len(record["chunks"]) > 0
