"""Render: every view's video with detections and the reprojected skeleton, in frame chunks.

Synthetic markers with known cameras say where a landmark must be drawn; the
chunked render is checked against a one-task render of the same store, and the
real sample is rendered at the end of a run (``run --render``).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from helpers.cli import mocapflow, one_line
from mocapflow import ledger
from mocapflow.render import error_colour, join_segments, render_ranges, three_d_frames
from mocapflow.report import run_report_path, view_errors
from mocapflow.sync import source_index
from mocapflow.synthetic import TRUE_CALIBRATION, synthesize
from mocapflow.video import VideoWriter, probe, read_frames


@pytest.fixture(scope="module")
def markers(tmp_path_factory):
    """3 cameras x 90 frames of markers (GOP 40), tracked and triangulated with the true cameras."""
    root = tmp_path_factory.mktemp("render") / "rec"
    rec = synthesize(root, kind="markers", cameras=3, frames=90, size=(320, 240), seed=5, gop=40)
    store = root / "mocapflow.zarr"
    mocapflow("run", root, "-t", "markers", "-c", root / TRUE_CALIBRATION, "-f", "npy",
              "--cluster", "threads")  # fmt: skip
    return rec, store


def test_ranges_start_on_keyframes_and_cover_the_video():
    keys = np.array([0, 40, 80, 120])
    assert render_ranges(keys, 150, 30) == [(0, 40), (40, 80), (80, 120), (120, 150)]
    assert render_ranges(keys, 150, 1000) == [(0, 150)]
    assert render_ranges(np.array([0]), 100, 30) == [(0, 30), (30, 60), (60, 90), (90, 100)]


def test_error_colours_run_green_to_red():
    assert error_colour(0) == (0, 255, 0)
    assert error_colour(1e6) == (0, 0, 255)
    b, g, r = error_colour(15)
    assert g == 255 and r == 255 and b == 0  # yellow at half the scale
    assert error_colour(float("nan")) == (160, 160, 160)


def test_joined_segments_equal_the_frames_written(tmp_path):
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, (50, 64, 96, 3), dtype=np.uint8)
    frames = np.ascontiguousarray(np.repeat(np.repeat(frames[:, ::8, ::8], 8, 1), 8, 2))
    segments = []
    for a, b in [(0, 17), (17, 40), (40, 50)]:
        seg = tmp_path / f"s{a}.mp4"
        with VideoWriter(seg, 25, "h264", gop=b - a) as w:
            for f in frames[a:b]:
                w.write(f)
        segments.append(seg)
    assert join_segments(segments, tmp_path / "joined.mp4") == 50
    info = probe(tmp_path / "joined.mp4")
    assert info.n_frames == 50 and info.fps == 25 and list(info.keyframes) == [0, 17, 40]
    joined = read_frames(tmp_path / "joined.mp4", 0, 50).astype(int)
    assert np.abs(joined - frames).mean() < 5  # the encoder's loss (4:2:0 colour) only
    assert np.abs(joined[1:] - frames[:-1]).mean() > 30  # a frame out of place would show
    assert np.abs(joined[17:40] - read_frames(segments[1], 0, 23)).max() == 0


def test_every_view_is_rendered_with_its_sources_frames_size_and_rate(markers, tmp_path):
    rec, store = markers
    proc = mocapflow("render", store, "--out", tmp_path / "r", "--chunk-frames", "30",
                     "--workers", "2")  # fmt: skip
    assert "3 view(s) rendered with filtered" in one_line(proc.stdout)
    for video in rec.videos:
        source, drawn = probe(video), probe(tmp_path / "r" / f"{video.stem}.mp4")
        assert drawn.n_frames == source.n_frames == 90
        assert (drawn.width, drawn.height) == (source.width, source.height)
        assert drawn.fps == source.fps
        assert drawn.codec == "h264"
        assert len(drawn.keyframes) == 3  # one segment per range: 0-40, 40-80, 80-90
    record = ledger.render_record(store)
    assert set(record["videos"]) == {v.stem for v in rec.videos}
    assert all(len(t) == 3 for t in record["thumbnails"].values())
    assert mocapflow("verify", store).returncode == 0


def test_a_projected_landmark_has_the_skeletons_colour(markers, tmp_path):
    """At each true marker's projection, the drawn point's colour (its error is near 0: green)."""
    rec, store = markers
    mocapflow("render", store, "--out", tmp_path / "r", "--cluster", "threads")
    truth = rec.ground_truth.position.values  # (time, 3, keypoint, individual) mm
    checked = changed = 0
    for cam, video in zip(rec.cameras, rec.videos, strict=True):
        drawn = read_frames(tmp_path / "r" / f"{video.stem}.mp4", 0, 90).astype(int)
        source = read_frames(video, 0, 90).astype(int)
        for t in (10, 45, 80):
            pts = cam.project(truth[t, :, :, 0].T)
            for x, y in np.round(pts).astype(int):
                if not (3 <= x < 317 and 3 <= y < 237):
                    continue
                patch = drawn[t, y - 1 : y + 2, x - 1 : x + 2].reshape(-1, 3).mean(0)
                assert np.abs(patch - (0, 255, 0)).max() < 60, (video.stem, t, patch)
                under = source[t, y - 1 : y + 2, x - 1 : x + 2].reshape(-1, 3).mean(0)
                changed += np.abs(under - (0, 255, 0)).max() > 60  # the marker is not green
                checked += 1
    assert checked >= 30 and changed >= 0.6 * checked


def test_the_chunked_render_equals_a_one_task_render(markers, tmp_path):
    _, store = markers
    mocapflow("render", store, "--out", tmp_path / "chunks", "--chunk-frames", "10",
              "--workers", "2")  # fmt: skip
    mocapflow("render", store, "--out", tmp_path / "one", "--chunk-frames", "1000",
              "--cluster", "threads")  # fmt: skip
    for one in sorted((tmp_path / "one").glob("*.mp4")):
        a = read_frames(one, 0, 90).astype(int)
        b = read_frames(tmp_path / "chunks" / one.name, 0, 90).astype(int)
        assert a.shape == b.shape
        assert np.abs(a - b).mean() < 1.0, one.name


def test_render_never_overwrites_and_names_a_bad_view(markers, tmp_path):
    _, store = markers
    mocapflow("render", store, "--out", tmp_path / "r", "--views", "cam1", "--cluster", "threads")
    proc = mocapflow("render", store, "--out", tmp_path / "r", "--views", "cam1", ok=(2,))
    assert "exists" in proc.stderr and "--overwrite" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    proc = mocapflow("render", store, "--views", "cam9", "--out", tmp_path / "x", ok=(2,))
    assert "--views cam9: no such view" in one_line(proc.stderr)
    assert not (tmp_path / "x").exists()


def test_a_missing_video_fails_its_view_and_the_others_are_rendered(markers, tmp_path):
    rec, store = markers
    copy = tmp_path / "rec"
    shutil.copytree(rec.path, copy)
    (copy / "synchronized_videos" / "cam2.mp4").unlink()
    proc = mocapflow("render", copy / "mocapflow.zarr", "--videos", copy / "synchronized_videos",
                     "--cluster", "threads", ok=(1,))  # fmt: skip
    assert "cam2.mp4: the video is not there" in one_line(proc.stderr)
    assert "Traceback" not in proc.stderr
    assert sorted(p.name for p in (copy / "rec.render").glob("*.mp4")) == ["cam1.mp4", "cam3.mp4"]


@pytest.mark.slow  # make test-all (and CI)
def test_run_render_on_the_real_sample(tmp_path):
    """The real one-person sample: run --render draws every view, 3-D reprojected through
    its Qualisys calibration; a frame's drawn points sit where the detections are."""
    from conftest import SAMPLE

    out = tmp_path / "pose.zarr"
    proc = mocapflow("run", SAMPLE, "-c", SAMPLE / "Calib.qca.txt", "--out", out, "-f", "trc",
                     "--render")  # fmt: skip
    assert "4 view(s) rendered with filtered" in one_line(proc.stdout)
    for video in sorted((SAMPLE / "synchronized_videos").glob("*.mp4")):
        drawn = tmp_path / "pose.render" / f"{video.stem}.mp4"
        source = probe(video)
        info = probe(drawn)
        assert (info.n_frames, info.width, info.height) == (100, source.width, source.height)
        assert info.fps == source.fps == 60
    thumbs = ledger.render_record(out)["thumbnails"]
    assert sorted(thumbs) == ["cam01", "cam02", "cam03", "cam04"]
    assert all(len(t) == 3 for t in thumbs.values())
    # run's default tracks several detections per view: the report's error per view
    # compares each 3-D point with the view's nearest detection of it, as the render does
    errors, _, reason = view_errors(out)
    assert reason is None and sorted(errors) == ["cam01", "cam02", "cam03", "cam04"]
    assert all(3 < np.nanmedian(e) < 30 for e in errors.values())
    page = run_report_path(out).read_text()  # the run report shows them
    assert "Rendered frames" in page and page.count("<img src='data:image/jpeg;base64,") == 12


def _green_at_truth(rec, out: Path) -> tuple[int, int]:
    """Points drawn green at each true marker's projection, and points checked (frames 10-70)."""
    truth = rec.ground_truth.position.values  # (time, 3, keypoint, individual) mm
    green = checked = 0
    for cam, video in zip(rec.cameras, rec.videos, strict=True):
        drawn = read_frames(out / f"{video.stem}.mp4", 0, 90).astype(int)
        for t in (10, 45, 70):  # view frames whose 3-D (12 frames on) is inside the 90
            for x, y in np.round(cam.project(truth[t, :, :, 0].T)).astype(int):
                if 3 <= x < 317 and 3 <= y < 237:
                    patch = drawn[t, y - 1 : y + 2, x - 1 : x + 2].reshape(-1, 3).mean(0)
                    green += np.abs(patch - (0, 255, 0)).max() < 60
                    checked += 1
    return green, checked


def test_views_aligned_by_sync_are_drawn_against_their_3d_frame(markers, tmp_path):
    """3-D on the reference's clock, k frames after the views': frame i is drawn with 3-D i + k."""
    import zarr

    rec, store = markers
    copy = tmp_path / "rec"
    shutil.copytree(rec.path, copy)
    group = ledger.choose_group(copy / "mocapflow.zarr", None)
    k = 12
    g = zarr.open_group(copy / "mocapflow.zarr" / group, mode="r+")
    pos = g["position"][:]
    shifted = np.full_like(pos, np.nan)
    shifted[k:] = pos[:-k]  # the 3-D of view frame i now sits at i + k
    g["position"][:] = shifted
    views = [v.stem for v in rec.videos]
    g.attrs["sync"] = {"offsets": {v: k for v in views}}
    args = ("--videos", copy / "synchronized_videos", "--cluster", "threads")
    mocapflow("render", copy / "mocapflow.zarr", "--out", tmp_path / "aligned", *args)
    green, checked = _green_at_truth(rec, tmp_path / "aligned")
    assert checked >= 30 and green == checked, (green, checked)
    # The same 3-D without the offsets is drawn k frames off: the check above can fail.
    g.attrs["sync"] = {"offsets": {v: 0 for v in views}}
    mocapflow("render", copy / "mocapflow.zarr", "--out", tmp_path / "off", *args)
    green, checked = _green_at_truth(rec, tmp_path / "off")
    assert green < 0.5 * checked, (green, checked)


def test_three_d_frames_by_time():
    """The 3-D frame each view frame shows: whole offsets, another rate, irregular times
    (the sync module's own mapping, inverted)."""
    ref = np.arange(100) / 30

    def frames(view_times, ref_times, offset):
        return three_d_frames(source_index(ref_times, view_times, offset / 30), len(view_times))

    same = frames(np.arange(100) / 30, ref, 12)
    np.testing.assert_array_equal(same[:88], np.arange(12, 100))
    assert (same[88:] == -1).all()
    early = frames(np.arange(100) / 30, ref, -5)
    assert (early[:5] == -1).all() and early[5] == 0 and early[99] == 94
    # A 60 fps view 3 reference frames on: its frame i shows the instant i/60 + 0.1 s.
    fast = frames(np.arange(200) / 60, ref, 3)
    np.testing.assert_array_equal(fast[[0, 2, 4, 100]], [3, 4, 5, 53])  # whole frames only
    assert fast[-1] == -1  # 199/60 + 0.1 s is after the last reference frame
    # Irregular reference times: the nearest frame by time, not by count.
    jittered = ref + np.where(np.arange(100) % 2, 0.004, -0.004)
    np.testing.assert_array_equal(frames(np.arange(100) / 30, jittered, 0), np.arange(100))
