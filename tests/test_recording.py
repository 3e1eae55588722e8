from __future__ import annotations

import shutil

import pytest

from mocapflow.recording import RecordingError, find_videos, natural_key, open_recording


def test_natural_order():
    names = ["cam10", "cam2", "Cam1", "cam1b"]
    assert sorted(names, key=natural_key) == ["Cam1", "cam1b", "cam2", "cam10"]


def test_synchronized_videos_subfolder(markers_recording):
    rec = open_recording(markers_recording)
    assert rec.names == ["cam1", "cam2", "cam3", "cam4"]
    assert all(v.info.n_frames == 90 and v.info.codec == "h264" for v in rec.views)
    assert rec.n_frames == 90 and rec.fps == 30 and rec.warnings == []


def test_flat_folder_any_case_extension_natural_order(markers_recording, tmp_path):
    src = sorted((markers_recording / "synchronized_videos").glob("*.mp4"))
    for name, s in zip(["cam10.MP4", "cam2.mp4", "cam1.Mp4"], src, strict=False):
        shutil.copy(s, tmp_path / name)
    (tmp_path / "notes.txt").write_text("not a video")
    assert [p.name for p in find_videos(tmp_path)] == ["cam1.Mp4", "cam2.mp4", "cam10.MP4"]


def test_mixed_sizes_and_codecs_are_recorded_per_view(pose2sim):
    rec = open_recording(pose2sim)
    assert rec.names == ["cam01", "cam02", "cam03", "cam04"]
    assert [v.info.codec for v in rec.views] == ["h264", "vp9", "h264", "h264"]
    assert [v.info.width for v in rec.views] == [1080, 1080, 1088, 1088]
    assert any("differ in frame size" in w for w in rec.warnings)


def test_unequal_lengths_warn(markers_recording, tmp_path, codec_videos):
    shutil.copy(markers_recording / "synchronized_videos" / "cam1.mp4", tmp_path / "a.mp4")
    shutil.copy(codec_videos["h264"], tmp_path / "b.mp4")
    rec = open_recording(tmp_path)
    assert [v.n_frames for v in rec.views] == [90, 200]
    assert rec.n_frames == 200
    assert any("differ in length" in w and "a=90" in w for w in rec.warnings)


def test_unreadable_video_becomes_a_failed_view(recording_copy):
    bad = recording_copy / "synchronized_videos" / "cam3.mp4"
    bad.write_bytes(b"")
    rec = open_recording(recording_copy)
    assert rec.names == ["cam1", "cam2", "cam3", "cam4"]
    assert not rec.views[2].ok and "empty" in rec.views[2].error
    assert len(rec.ok_views) == 3


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p / "missing", "no such folder"),
        (lambda p: p, "no videos found"),
    ],
)
def test_folder_errors(tmp_path, make, message):
    with pytest.raises(RecordingError, match=message):
        open_recording(make(tmp_path))


def test_duplicate_stems_fail_only_that_view(tmp_path, codec_videos):
    shutil.copy(codec_videos["h264"], tmp_path / "cam1.mp4")
    shutil.copy(codec_videos["mjpg"], tmp_path / "cam1.avi")
    shutil.copy(codec_videos["vp9"], tmp_path / "cam2.webm.mkv")
    shutil.copy(codec_videos["mp4v"], tmp_path / "cam3.mp4")
    rec = open_recording(tmp_path)
    assert rec.names == ["cam1", "cam2.webm", "cam3"]
    assert (
        not rec.views[0].ok
        and "share the view name 'cam1' (cam1.avi, cam1.mp4)" in rec.views[0].error
    )
    assert rec.views[1].ok and rec.views[2].ok
