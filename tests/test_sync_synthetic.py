"""Sync on synthetic recordings whose timing is known: offsets, frame rates, timestamps.

Every recording is the same scene (seed ``SEED``: the same cameras and the same
marker paths, a function of continuous time) filmed with other timing: cameras
started whole or fractional frames late, cameras at 30 and 60 fps, a camera
whose frames carry irregular timestamps. The ground truth is at the reference
camera's (``cam1``'s) frames, and records each camera's true ``sync_offset``.
The noise floor is the 3-D error of the synchronised recording of the same seed,
on the same reference frames.

Measured here (320x240, 90 frames, seed 5; median 3-D error against the truth on
the frames every view covers): synchronised 1.02 mm; started 0/3/7/5 frames late,
after ``sync`` 0.98 mm, without offsets 81 mm; started 0/2.5/4.25/1.6 frames late,
with those offsets 0.99 mm, and ``sync --subframe`` finds them within 0.2 frame
(each pair's own lag refined, the offsets solved together); two views at 60 fps, one started 3
frames late, 1.10 mm (the 60 fps videos' own 2-D error is 0.10-0.11 px against
0.08-0.10 px at 30 fps); one view with timestamps off by up to 0.3 frame,
1.04 mm, its timestamps read back within 0.01 ms.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from helpers.cli import mocapflow, one_line
from mocapflow import sync
from mocapflow.calib import read_toml
from mocapflow.errors import UsageError
from mocapflow.store import open_tracks
from mocapflow.synthetic import TRUE_CALIBRATION, synthesize
from mocapflow.video import VideoWriter, probe, read_frames

SEED = 5
SIZE = (320, 240)
FRAMES = 90
FPS = 30.0
VIEWS = ["cam1", "cam2", "cam3", "cam4"]
#: The 3-D error after sync may exceed the synchronised recording's by this much.
NOISE_FLOOR = 1.10


@dataclass
class Take:
    """A rendered, tracked recording: its folder, store, calibration and ground truth."""

    root: Path
    store: Path
    calibration: Path
    truth: xr.Dataset

    def shared(self) -> np.ndarray:
        """The reference frames that every view covers, by the true offsets and rates."""
        gt = self.truth
        n_ref = gt.sizes["time"]
        if "sync_offset" not in gt.coords:
            return np.arange(n_ref)
        offset, rate = gt.sync_offset.values, gt.rate.values
        counts = np.isfinite(gt.frame_time.values).sum(1)
        first = int(np.ceil(max(0.0, offset.max()) - 1e-9))
        last = int(np.floor(min(n_ref - 1, (offset + (counts - 1) * rate[0] / rate).min()) + 1e-9))
        return np.arange(first, last + 1)


def render(root: Path, frames=FRAMES, **timing) -> Take:
    """Render the scene with ``timing`` (synthesize's options) and track it with the CLI.

    The CLI runs on threads (``--cluster threads``): the same tracks and 3-D as
    worker processes give, without starting them on every call.
    """
    rec = synthesize(root, cameras=4, frames=frames, size=SIZE, fps=FPS, seed=SEED, **timing)
    store = root / "tracks.zarr"
    mocapflow("process", root, "-t", "markers", "--out", store, "--no-report",
              "--cluster", "threads")  # fmt: skip
    return Take(root, store, root / TRUE_CALIBRATION, rec.ground_truth.load())


def triangulate(take: Take, *args, ok=(0,)) -> subprocess.CompletedProcess:
    return mocapflow("triangulate", take.store, "-c", take.calibration, "--cluster", "threads",
                     *args, ok=ok)  # fmt: skip


def error_mm(take: Take, frames: np.ndarray) -> float:
    """Median 3-D distance (mm) from the truth of the store's points on reference ``frames``."""
    position = points3d(take).position.values[frames, :, :, 0]
    distance = np.linalg.norm(position - take.truth.position.values[frames, :, :, 0], axis=1)
    assert np.isfinite(distance).mean() > 0.8, "too few points triangulated"
    return float(np.nanmedian(distance))


def points3d(take: Take) -> xr.Dataset:
    return xr.open_zarr(take.store, group="points3d", consolidated=False)


# -- the recordings (rendered once per session) ----------------------------------------


@pytest.fixture(scope="session")
def synchronised(tmp_path_factory) -> Take:
    """The scene with every camera started together: the noise floor."""
    take = render(tmp_path_factory.mktemp("sync") / "synchronised")
    proc = triangulate(take)
    assert "look unsynchronised" not in proc.stderr
    return take


@pytest.fixture(scope="session")
def whole(tmp_path_factory) -> dict:
    """Cameras started 0, 3, 7 and 5 frames late: triangulated without sync, then synced."""
    take = render(tmp_path_factory.mktemp("sync") / "whole", starts=[0, 3, 7, 5])
    unsynced = triangulate(take, ok=(1,))
    without = error_mm(take, take.shared())
    synced = mocapflow("sync", take.store, "-c", take.calibration)
    triangulate(take)
    return {"take": take, "unsynced": unsynced, "without_mm": without, "sync": synced}


@pytest.fixture(scope="session")
def fractional(tmp_path_factory) -> dict:
    """Cameras started 0, 2.5, 4.25 and 1.6 frames late: sync --subframe's estimates."""
    take = render(tmp_path_factory.mktemp("sync") / "fractional", starts=[0, 2.5, 4.25, 1.6])
    proc = mocapflow("sync", take.store, "-c", take.calibration, "--subframe")
    return {"take": take, "found": sync.read_sync(take.store)["offsets"], "sync": proc}


@pytest.fixture(scope="session")
def mixed(tmp_path_factory) -> Take:
    """cam1 and cam2 at 30 fps, cam3 and cam4 at 60 fps (3 s each); cam3 started 0.1 s late."""
    return render(
        tmp_path_factory.mktemp("sync") / "mixed",
        frames=[FRAMES, FRAMES, 2 * FRAMES, 2 * FRAMES],
        rates=[FPS, FPS, 2 * FPS, 2 * FPS],
        starts=[0, 0, 3, 0],
    )


@pytest.fixture(scope="session")
def irregular(tmp_path_factory) -> Take:
    """cam2's frames are off their regular times by up to 0.3 frame (a variable-rate video)."""
    return render(tmp_path_factory.mktemp("sync") / "irregular", jitter=[0, 0.3, 0, 0])


# -- whole and fractional offsets ------------------------------------------------------


def test_whole_offsets_are_recovered_exactly(whole):
    take = whole["take"]
    truth = dict(zip(VIEWS, take.truth.sync_offset.values.tolist(), strict=True))
    assert truth == {"cam1": 0, "cam2": 3, "cam3": 7, "cam4": 5}
    assert sync.read_sync(take.store)["offsets"] == truth
    table = one_line(whole["sync"].stdout)
    assert "cam3 │ +7 │ +0.2333 │ motion" in table, table


def test_without_sync_triangulate_says_the_views_look_unsynchronised(whole, synchronised):
    errors = [line for line in whole["unsynced"].stderr.splitlines() if "error" in line]
    assert len(errors) == 1, whole["unsynced"].stderr  # beside the progress bar, one line
    said = errors[0]
    assert "look unsynchronised" in said and "cam3 +7" in said, said
    # the 3-D it wrote all the same is far off: the views show different instants
    base = error_mm(synchronised, whole["take"].shared())
    assert whole["without_mm"] > 20 * base, (whole["without_mm"], base)


def test_3d_after_sync_is_at_the_noise_floor(whole, synchronised):
    take = whole["take"]
    shared = take.shared()
    assert shared[0] == 7 and shared[-1] == FRAMES - 1
    points = points3d(take)
    assert points.sizes["time"] == FRAMES and points.attrs["sync"]["reference"] == "cam1"
    assert points.attrs["sync"]["resampled"] == []
    after, base = error_mm(take, shared), error_mm(synchronised, shared)
    assert after <= NOISE_FLOOR * base, (after, base)


def test_fractional_offsets_within_half_a_frame(fractional):
    take, found = fractional["take"], fractional["found"]
    for view, truth in zip(VIEWS, take.truth.sync_offset.values, strict=True):
        assert abs(found[view] - truth) < 0.5, (view, found, truth)
    assert any(not float(v).is_integer() for v in found.values())  # fractions kept


def test_fractional_offsets_within_a_fifth_of_a_frame(fractional):
    take, found = fractional["take"], fractional["found"]
    for view, truth in zip(VIEWS, take.truth.sync_offset.values, strict=True):
        assert abs(found[view] - truth) <= 0.2, (view, found, truth)


def test_fractional_offsets_align_the_views_at_the_noise_floor(fractional, synchronised):
    """Given the true offsets, the views interpolated between frames triangulate as well."""
    take = fractional["take"]
    given = [
        f"--offset={v}={k:g}" for v, k in zip(VIEWS, take.truth.sync_offset.values, strict=True)
    ]
    triangulate(take, *given)
    shared = take.shared()
    assert shared[0] == 5
    after, base = error_mm(take, shared), error_mm(synchronised, shared)
    assert after <= NOISE_FLOOR * base, (after, base)


# -- views at other frame rates ----------------------------------------------------------

#: The 60 fps videos are noisier in 2-D (0.10-0.11 px against 0.08-0.10 px at 30 fps).
MIXED_FLOOR = 1.15


def test_30_and_60_fps_views_are_aligned_by_time(mixed, synchronised):
    mocapflow("sync", mixed.store, "-c", mixed.calibration)
    assert sync.read_sync(mixed.store)["offsets"] == {"cam1": 0, "cam2": 0, "cam3": 3, "cam4": 0}
    triangulate(mixed)
    points = points3d(mixed)
    assert points.attrs["sync"]["resampled"] == ["cam3", "cam4"]
    np.testing.assert_allclose(points.time.values, np.arange(FRAMES) / FPS, atol=1e-6)
    shared = mixed.shared()
    assert shared[0] == 3 and shared[-1] == FRAMES - 1
    after, base = error_mm(mixed, shared), error_mm(synchronised, shared)
    assert after <= MIXED_FLOOR * base, (after, base)


def test_a_60_fps_reference_gives_a_60_fps_time_axis(mixed, synchronised, tmp_path):
    store = tmp_path / "ref60.zarr"
    shutil.copytree(mixed.store, store)
    take = Take(mixed.root, store, mixed.calibration, mixed.truth)
    mocapflow("sync", store, "-c", take.calibration, "--reference", "cam3")
    record = sync.read_sync(store)
    # frames of cam3 (60 fps), which started 0.1 s after the others
    assert record["reference"] == "cam3"
    assert record["offsets"] == {"cam1": -6, "cam2": -6, "cam3": 0, "cam4": -6}
    triangulate(take)
    points = points3d(take)
    assert points.sizes["time"] == 2 * FRAMES and points.attrs["fps"] == 2 * FPS
    assert points.attrs["sync"]["resampled"] == ["cam1", "cam2"]
    np.testing.assert_allclose(points.time.values, np.arange(2 * FRAMES) / (2 * FPS), atol=1e-6)
    # cam3's frame j is cam1's frame 3 + j / 2: even frames are frames of the truth
    position = points.position.values[:, :, :, 0]
    truth = mixed.truth.position.values[:, :, :, 0]
    even = np.arange(0, 2 * (FRAMES - 3), 2)
    distance = np.linalg.norm(position[even] - truth[3 + even // 2], axis=1)
    base = error_mm(synchronised, 3 + even // 2)
    assert np.nanmedian(distance) <= MIXED_FLOOR * base, (np.nanmedian(distance), base)
    # odd frames fall between the 30 fps views' frames (interpolated), and between the
    # truth's frames, whose midpoint is itself off the path by up to about 0.5 mm
    odd = even[:-1] + 1
    midpoint = (truth[3 + odd // 2] + truth[4 + odd // 2]) / 2
    distance = np.linalg.norm(position[odd] - midpoint, axis=1)
    assert np.isfinite(distance).mean() > 0.8
    assert np.nanmedian(distance) <= 1.5 * base, (np.nanmedian(distance), base)


# -- a variable-frame-rate video ---------------------------------------------------------


def test_a_variable_rate_video_keeps_its_frames_own_times(irregular):
    truth = irregular.truth.frame_time.values  # (view, frame) seconds from each first frame
    regular = np.arange(FRAMES) / FPS
    assert np.abs(truth[1] - regular).max() > 0.2 / FPS  # cam2's times really are irregular
    assert probe(irregular.root / "synchronized_videos" / "cam2.mp4").fps != FPS
    stored = open_tracks(irregular.store, dask=False).frame_time.values
    np.testing.assert_allclose(stored, truth[:, :FRAMES], atol=1e-3, rtol=0)


def test_a_variable_rate_video_is_aligned_with_the_others(irregular, synchronised):
    proc = mocapflow("sync", irregular.store, "-c", irregular.calibration, "--subframe")
    found = sync.read_sync(irregular.store)["offsets"]
    assert all(abs(k) < 0.5 for k in found.values()), (found, proc.stdout)
    triangulate(irregular)
    points = points3d(irregular)
    assert points.attrs["sync"]["resampled"] == ["cam2"]
    after, base = error_mm(irregular, np.arange(FRAMES)), error_mm(synchronised, np.arange(FRAMES))
    assert after <= NOISE_FLOOR * base, (after, base)


def test_a_variable_rate_view_is_read_at_the_references_times(irregular):
    """cam2's 2-D points taken at cam1's times by timestamp, not at cam1's frame numbers."""
    tracks = open_tracks(irregular.store)  # lazy, as triangulate reads it
    cam2 = read_toml(irregular.calibration)[0]["cam2"]
    world = irregular.truth.position.values[:, :, :, 0]  # at cam1's frames
    expected = np.stack([cam2.project(p.T).T for p in world])  # (time, 2, keypoint)
    plan = sync.alignment(tracks)
    assert plan is not None and plan.resampled == ["cam2"]
    aligned = sync.align(tracks, plan).position.values[1, :, :, :, 0]
    by_index = tracks.position.values[1, :, :, :, 0]
    visible = irregular.truth.visible.values[1, :FRAMES, :, 0]
    by_time = np.linalg.norm(aligned - expected, axis=1)[visible]
    by_frame = np.linalg.norm(by_index - expected, axis=1)[visible]
    assert np.nanmedian(by_time) < 0.2, np.nanmedian(by_time)
    assert np.nanmedian(by_frame) > 1.5 * np.nanmedian(by_time), (by_frame, by_time)
    # with cam2 as the reference, the time axis is cam2's own times
    plan = sync.alignment(tracks, None, "cam2")
    times = irregular.truth.frame_time.values[1, :FRAMES]
    np.testing.assert_allclose(plan.times, times, atol=1e-3)
    inside = np.isfinite(plan.index[0])
    np.testing.assert_allclose(plan.index[0][inside], times[inside] * FPS, atol=0.03)
    assert inside.sum() >= FRAMES - 1


# -- bad input ------------------------------------------------------------------------


def test_an_offset_beyond_the_overlap_is_refused(whole):
    take = whole["take"]
    before = sync.read_sync(take.store)
    for args in (
        ("sync", take.store, "-c", take.calibration, "--offset", "cam2=95"),
        ("triangulate", take.store, "-c", take.calibration, "--offset", "cam3=-90"),
    ):
        said = mocapflow(*args, ok=(2,)).stderr.strip()
        assert len(said.splitlines()) == 1 and "larger than the overlap" in said, said
    assert sync.read_sync(take.store) == before


def test_markers_that_never_move_give_no_offset(tmp_path):
    """Every view shows its first frame over and over: nothing to time the views by."""
    one = synthesize(tmp_path / "one", cameras=3, frames=1, size=SIZE, seed=SEED)
    root = tmp_path / "still"
    (root / "synchronized_videos").mkdir(parents=True)
    for video in one.videos:
        frame = read_frames(video, 0, 1)[0]
        with VideoWriter(root / "synchronized_videos" / video.name, FPS) as writer:
            for _ in range(60):
                writer.write(frame)
    store = root / "tracks.zarr"
    mocapflow("process", root, "-t", "markers", "--out", store, "--no-report",
              "--cluster", "threads")  # fmt: skip
    said = mocapflow("sync", store, "-c", one.path / TRUE_CALIBRATION, ok=(2,)).stderr.strip()
    assert len(said.splitlines()) == 1, said
    assert said.startswith("error: cannot estimate the offset of cam2: motion: "), said
    assert said.endswith("; set it with --offset cam2=FRAMES"), said
    assert sync.read_sync(store) == {}


# -- the synthesizer's timing and the writer's timestamps (no tracking) ----------------


def test_timing_options_at_their_defaults_render_the_same_videos(tmp_path):
    plain = synthesize(tmp_path / "plain", cameras=2, frames=6, size=(64, 48), seed=SEED)
    timed = synthesize(
        tmp_path / "timed", cameras=2, frames=6, size=(64, 48), seed=SEED,
        starts=[0, 0], rates=FPS, jitter=0,
    )  # fmt: skip
    for a, b in zip(plain.videos, timed.videos, strict=True):
        assert a.read_bytes() == b.read_bytes()
    np.testing.assert_array_equal(plain.ground_truth.position, timed.ground_truth.position)
    assert "frame_time" not in plain.ground_truth.coords  # the default truth is as it was
    assert timed.ground_truth.attrs["timing"]["reference"] == "cam1"


def test_starts_and_rates_film_the_same_paths_at_other_times(tmp_path):
    rec = synthesize(
        tmp_path / "r", cameras=3, frames=[8, 8, 16], size=(64, 48), seed=SEED,
        starts=[0, 2, 1], rates=[FPS, FPS, 2 * FPS],
    )  # fmt: skip
    gt = rec.ground_truth
    assert gt.sizes["time"] == 8 and gt.sync_offset.values.tolist() == [0, 2, 1]
    world = gt.position.values[:, :, :, 0]  # at cam1's frames
    cams = rec.cameras
    # cam2, 2 frames late: its frame i is cam1's frame i + 2
    for i in range(6):
        np.testing.assert_allclose(gt.position_2d.values[1, i, :, :, 0], cams[1].project(
            world[i + 2].T).T, atol=1e-9)  # fmt: skip
    # cam3 at 60 fps, 1 frame (of cam1) late: its frame 2i is cam1's frame i + 1
    for i in range(7):
        np.testing.assert_allclose(gt.position_2d.values[2, 2 * i, :, :, 0], cams[2].project(
            world[i + 1].T).T, atol=1e-9)  # fmt: skip
    np.testing.assert_allclose(gt.frame_time.values[2], np.arange(16) / 60)
    assert np.isnan(gt.frame_time.values[0, 8:]).all()
    assert gt.start_s.values.tolist() == pytest.approx([0, 2 / FPS, 1 / FPS])


def test_jitter_draws_increasing_times_from_the_seed(tmp_path):
    def times(seed: int, name: str) -> np.ndarray:
        rec = synthesize(
            tmp_path / name, cameras=2, frames=30, size=(64, 48), seed=seed, jitter=[0, 0.45]
        )
        return rec.ground_truth.frame_time.values

    a, b, c = times(1, "a"), times(1, "b"), times(2, "c")
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a[1], c[1])
    np.testing.assert_array_equal(a[0], np.arange(30) / FPS)  # no jitter: regular
    deviation = (a[1] - np.arange(30) / FPS) * FPS
    assert a[1][0] == 0 and np.abs(deviation).max() <= 0.45 and np.abs(deviation).max() > 0.3
    assert (np.diff(a[1]) > 0).all()
    read = probe(tmp_path / "a" / "synchronized_videos" / "cam2.mp4").times
    np.testing.assert_allclose(read, a[1], atol=1e-3, rtol=0)


@pytest.mark.parametrize(
    ("options", "said"),
    [
        ({"starts": [0, 1]}, "starts: 2 values given for 3 cameras"),
        ({"starts": [0, np.nan, 1]}, "give a number or one number per camera"),
        ({"rates": [30, 0, 30]}, "give frame rates from above 0 to 1000"),
        ({"jitter": 0.5}, "give each camera's from 0 to 0.45 of a frame"),
        ({"jitter": 0.2, "codec": "mjpg"}, "MJPEG in AVI keeps no frame times"),
        ({"starts": [0, 1, 2], "kind": "charuco"}, "time the markers scene only"),
    ],
)
def test_bad_timing_options_are_one_line(tmp_path, options, said):
    with pytest.raises(UsageError) as caught:
        synthesize(tmp_path / "r", cameras=3, frames=4, size=(64, 48), **options)
    assert said in str(caught.value) and "\n" not in str(caught.value)
    assert not (tmp_path / "r").exists()  # refused before anything is written


@pytest.mark.parametrize(("codec", "suffix"), [("h264", ".mp4"), ("mp4v", ".mp4"),
                                               ("vp9", ".webm")])  # fmt: skip
def test_frames_written_at_their_times_read_back_within_a_millisecond(tmp_path, codec, suffix):
    rng = np.random.default_rng(SEED)
    times = (np.arange(40) + np.r_[0, rng.uniform(-0.45, 0.45, 39)]) / 60
    path = tmp_path / f"v{suffix}"
    with VideoWriter(path, 60, codec) as writer:
        for i, t in enumerate(times):
            frame = np.zeros((48, 160, 3), np.uint8)
            frame[:, 4 * i : 4 * i + 4] = 255  # frame i: a bar at column 4i
            writer.write(frame, time=t)
    info = probe(path)
    assert info.n_frames == 40
    np.testing.assert_allclose(info.times, times, atol=1e-3, rtol=0)
    bars = read_frames(path, 0, 40).mean(axis=(1, 3)).argmax(axis=1) // 4
    assert bars.tolist() == list(range(40))  # in the order written


def test_frame_times_are_all_or_none_and_increasing(tmp_path):
    frame = np.zeros((48, 64, 3), np.uint8)
    cases = [
        ("mp4", "h264", [0.0, None], "give every frame a time or none"),
        ("mp4", "h264", [None, 0.1], "give every frame a time or none"),
        ("mp4", "h264", [0.1, 0.1], "frame times must be finite, 0 or more and increase"),
        ("mp4", "h264", [-0.1], "frame times must be finite, 0 or more and increase"),
        ("avi", "mjpg", [0.0], "MJPEG in AVI keeps no frame times"),
    ]
    for i, (suffix, codec, times, said) in enumerate(cases):
        with pytest.raises(UsageError, match=said):
            with VideoWriter(tmp_path / f"{i}.{suffix}", 30, codec) as writer:
                for t in times:
                    writer.write(frame, time=t)
