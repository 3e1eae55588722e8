"""Sync on real footage: the one-person sample, its views cut by known numbers of frames.

Cutting ``k`` frames from the start of a view (re-encoded with PyAV) makes its
``sync_offset`` ``+k`` against the uncut reference, if the sample itself was
synchronised. It is not quite: by where its keypoints agree, the sample's
cam03 runs about 3 frames (50 ms) ahead of cam01, and shifting it so lowers the
sample's own reprojection error by about 8 % (``test_the_sample_itself``). So
the oracle for each view is its cut plus the sample's own offset, and views
the sample has in sync within a frame must come out exactly as cut.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import xarray as xr

from conftest import SAMPLE
from helpers.cli import mocapflow, one_line
from helpers.cut import cut_recording
from mocapflow import sync
from mocapflow.calib import read_calibration
from mocapflow.quality import bone_length_cv
from mocapflow.store import open_tracks

CUTS = {"cam01": 0, "cam02": 7, "cam03": 3, "cam04": 11}
CALIBRATION = SAMPLE / "Calib.qca.txt"


@pytest.fixture(scope="module")
def cut_run(tmp_path_factory):
    """The sample with its views cut by CUTS, run without --sync: (folder, store, process)."""
    root = cut_recording(SAMPLE, tmp_path_factory.mktemp("cut") / "cut", CUTS)
    store = root / "nosync.zarr"
    proc = mocapflow(
        "run", root, "-c", CALIBRATION, "-t", "mediapipe", "-p", "max_people=1",
        "--out", store, "-f", "csv", ok=(0, 1),
    )  # fmt: skip
    return root, store, proc


@pytest.fixture(scope="module")
def own_offsets(sample_run) -> dict[str, float]:
    """The uncut sample's own offsets, by the same estimate (read only: the store is shared)."""
    cameras = read_calibration(CALIBRATION)[0]
    tracks = open_tracks(sample_run[0], dask=False)
    return {e.view: e.offset for e in sync.estimate(tracks, "motion", 0, cameras=cameras)}


@pytest.fixture(scope="module")
def synced(cut_run, tmp_path_factory) -> tuple:
    """The cut store, synced and triangulated again."""
    store = tmp_path_factory.mktemp("synced") / "synced.zarr"
    shutil.copytree(cut_run[1], store)
    proc = mocapflow("sync", store, "-c", CALIBRATION)
    mocapflow("triangulate", store, "-c", CALIBRATION)
    return store, proc


def shared_stats(store, first: int) -> tuple[float, float]:
    """Reprojection median (px) and median bone-length CV on reference frames ``first..``."""
    points = xr.open_zarr(store, group="points3d", consolidated=False)
    keypoints = [str(k) for k in points.keypoint.values]
    error = points.reprojection_error.values[first:]
    position = points.position.values[first:, :, :, 0]  # (time, space, keypoint)
    cv = bone_length_cv(position, keypoints, points.attrs["skeleton"])
    return float(np.nanmedian(error)), float(np.nanmedian(cv))


@pytest.mark.slow  # make test-all (and CI)
def test_views_cut_apart_are_said_to_look_unsynchronised(cut_run):
    _, store, proc = cut_run
    said = one_line(proc.stderr)
    assert proc.returncode == 1, said
    assert "the views look unsynchronised" in said
    assert "cam02 +7" in said and "cam04 +11" in said
    assert f"mocapflow sync {store}" in said
    assert sync.read_sync(store) == {}  # nothing was set: the 3-D is written all the same
    assert xr.open_zarr(store, group="points3d", consolidated=False).sizes["time"] == 100


@pytest.mark.slow  # make test-all (and CI)
def test_sync_recovers_the_cuts(synced, own_offsets):
    store, proc = synced
    found = sync.read_sync(store)["offsets"]
    assert found["cam01"] == 0
    for view, cut in CUTS.items():
        if abs(own_offsets[view]) <= 1:  # the sample has it in sync: exactly the cut
            assert found[view] == cut, (view, found, own_offsets)
        else:  # the sample's own offset, then the cut
            assert abs(found[view] - (cut + own_offsets[view])) <= 1, (view, found, own_offsets)
    assert [v for v in CUTS if abs(own_offsets[v]) <= 1] == ["cam01", "cam02", "cam04"]
    table = one_line(proc.stdout)
    assert "cam02 │ +7 │ +0.1167 │ motion" in table and "offsets against cam01" in table
    # the store says it, per view and in the coordinate xarray users see
    tracks = open_tracks(store)
    assert tracks.sync_offset.values.tolist() == [found[v] for v in CUTS]
    info = one_line(mocapflow("info", store).stdout)
    assert "+11 │ motion" in info and "offsets in frames of cam01" in info
    from mocapflow.report import write_run_report

    page = write_run_report(store).read_text()
    assert "views aligned by their offsets, frames of cam01: cam01 +0 (reference), cam02 +7" in page
    assert "detection rate per view (on the reference&#x27;s clock)" in page or (
        "detection rate per view (on the reference's clock)" in page
    )


@pytest.mark.slow  # make test-all (and CI)
def test_3d_after_sync_matches_the_uncut_recording(synced, sample_run, cut_run, tmp_path):
    store, _ = synced
    first = max(CUTS.values())  # reference frames every view covers
    uncut = shared_stats(sample_run[0], first)
    after = shared_stats(store, first)
    points = xr.open_zarr(store, group="points3d", consolidated=False)
    assert points.sizes["time"] == 100  # the reference's time axis
    assert points.attrs["sync"]["reference"] == "cam01"
    # as good as the uncut recording (better: cam03 is put right too)
    assert after[0] <= 1.05 * uncut[0], (after, uncut)
    assert after[1] <= 1.05 * uncut[1], (after, uncut)
    # the cuts as nominal offsets rebuild the uncut 3-D itself, within 5 %
    nominal = tmp_path / "nominal.zarr"
    shutil.copytree(cut_run[1], nominal)
    given = [f"--offset={v}={k}" for v, k in CUTS.items() if k]
    mocapflow("triangulate", nominal, "-c", CALIBRATION, *given)
    rebuilt = shared_stats(nominal, first)
    assert abs(rebuilt[0] / uncut[0] - 1) <= 0.05, (rebuilt, uncut)
    assert abs(rebuilt[1] / uncut[1] - 1) <= 0.05, (rebuilt, uncut)
    assert after[0] < rebuilt[0]  # sync's own offsets beat the nominal ones
    # the filtered group and the exports follow the aligned time axis
    mocapflow("filter", store)
    filtered = xr.open_zarr(store, group="filtered", consolidated=False)
    assert np.array_equal(filtered.time.values, points.time.values)


def test_the_sample_itself(sample_run, own_offsets, tmp_path):
    """The sample's cam03 is off by about 3 frames: aligning it lowers the reprojection error."""
    assert -4.5 <= own_offsets["cam03"] <= -2
    store = tmp_path / "sample.zarr"
    shutil.copytree(sample_run[0], store)
    mocapflow("triangulate", store, "-c", CALIBRATION, f"--offset=cam03={own_offsets['cam03']:g}")
    before = shared_stats(sample_run[0], 0)
    after = shared_stats(store, 0)
    assert after[0] <= 0.95 * before[0], (after, before)
    assert after[1] <= before[1]


# -- audio and flash through the store, and what cannot be estimated -----------------


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """Three cameras hearing clicks and seeing a flash, started 0, 4 and 7.5 frames late."""
    from helpers.media import write_clip

    root = tmp_path_factory.mktemp("clips")
    videos = root / "synchronized_videos"
    videos.mkdir()
    starts = {"cam1": 0.0, "cam2": 4.0, "cam3": 7.5}
    for i, (name, k) in enumerate(starts.items()):
        write_clip(videos / f"{name}.mp4", start_s=k / 30, fps=30, flash_s=2.6, seed=i)
    store = root / "stats.zarr"
    mocapflow("process", root, "-t", "framestats", "--out", store)
    return root, store, starts


def test_audio_and_flash_from_a_store(clips, tmp_path):
    _, store, starts = clips
    proc = mocapflow("sync", store, "--method", "audio,flash")
    record = sync.read_sync(store)
    for view, k in starts.items():  # audio: sub-frame; written as the first method found it
        assert abs(record["offsets"][view] - k) < 0.1, record
    flash = {e["offset"] for e in record["methods"]["flash"][1:]}
    assert flash == {4.0, 8.0} or flash == {4.0, 7.0}  # whole frames: 7.5 rounds either way
    table = one_line(proc.stdout)
    assert "audio" in table and "offsets against cam1" in table
    assert record["disagreements"] == []  # within a frame of each other


def test_methods_that_disagree_are_said(clips):
    _, store, _ = clips
    proc = mocapflow("sync", store, "--method", "audio,flash", "--offset", "cam2=4")
    assert "disagree" not in proc.stderr
    # the flash a whole second later in one view only: audio and flash now disagree
    from helpers.media import write_clip

    root = store.parent / "moved"
    videos = root / "synchronized_videos"
    videos.mkdir(parents=True)
    for i, (name, flash) in enumerate({"cam1": 2.6, "cam2": 3.6}.items()):
        write_clip(videos / f"{name}.mp4", fps=30, flash_s=flash, seed=i)
    moved = root / "stats.zarr"
    mocapflow("process", root, "-t", "framestats", "--out", moved)
    proc = mocapflow("sync", moved, "--method", "audio,flash")
    said = one_line(proc.stderr)
    assert said.count("methods disagree on cam2: audio -0.00, flash -30 frames") == 1, said
    assert sync.read_sync(moved)["offsets"]["cam2"] == pytest.approx(0, abs=0.1)  # audio's


def test_no_motion_and_no_audio_is_one_line(tmp_path):
    from helpers.media import write_clip

    videos = tmp_path / "rec" / "synchronized_videos"
    videos.mkdir(parents=True)
    for i, name in enumerate(("cam1", "cam2")):
        write_clip(videos / f"{name}.mp4", fps=30, audio=None, duration_s=2.0, seed=i)
    store = tmp_path / "rec" / "stats.zarr"
    mocapflow("process", tmp_path / "rec", "-t", "framestats", "--out", store)
    proc = mocapflow("sync", store, "--method", "motion,audio", ok=(2,))
    said = proc.stderr.strip()
    assert len(said.splitlines()) == 1, said
    assert said.startswith("error: cannot estimate the offset of cam2: motion: ")
    assert "no audio track" in said and said.endswith("set it with --offset cam2=FRAMES")
    assert sync.read_sync(store) == {}  # nothing written


def test_offsets_given_by_hand_are_checked(clips):
    _, store, _ = clips
    proc = mocapflow("sync", store, "--offset", "cam2=500", ok=(2,))
    said = proc.stderr.strip()
    assert len(said.splitlines()) == 1 and "larger than the overlap" in said, said
    proc = mocapflow("sync", store, "--offset", "cam9=1", ok=(2,))
    assert "no view 'cam9'" in proc.stderr
    proc = mocapflow("sync", store, "--offset", "cam2", ok=(2,))
    assert "give VIEW=FRAMES" in proc.stderr
    mocapflow("sync", store, "--offset", "cam2=-3", "--offset", "cam3=2.5")
    assert sync.read_sync(store)["offsets"] == {"cam1": 0.0, "cam2": -3.0, "cam3": 2.5}
    assert sync.read_sync(store)["views"]["cam2"]["method"] == "given"


def test_source_index_follows_the_convention():
    times = np.arange(10) / 30
    # a view started 2 frames late: reference frame t is its frame t - 2
    index = sync.source_index(times, np.arange(8) / 30, 2 / 30)
    assert np.isnan(index[:2]).all() and index[2:].tolist() == list(range(8))
    # a 60 fps view of the same clock: reference frame t is its frame 2t
    index = sync.source_index(times, np.arange(20) / 60, 0.0)
    assert index.tolist() == [2.0 * t for t in range(10)]
    # a fraction: between two frames
    index = sync.source_index(times, np.arange(10) / 30, 0.25 / 30)
    assert np.allclose(index[1:], np.arange(1, 10) - 0.25) and np.isnan(index[0])
