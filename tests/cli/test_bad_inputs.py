"""The bad-input corpus: each case gets a one-line message naming the file, never a
traceback, the documented exit code, and every good view complete."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from conftest import POSE2SIM, sequential_frames, write_video

EXE = str(Path(sys.executable).with_name("mocapflow"))
CAMS = ["cam1", "cam2", "cam3", "cam4"]


def videos(rec: Path) -> Path:
    return rec / "synchronized_videos"


def zero_byte(rec):
    (videos(rec) / "cam2.mp4").write_bytes(b"")
    return {"code": 1, "says": ["cam2.mp4: the file is empty"], "good": ["cam1", "cam3", "cam4"]}


def text_as_mp4(rec):
    (videos(rec) / "cam2.mp4").write_text("these are my notes, not a video\n" * 20)
    return {"code": 1, "says": ["cam2.mp4: not a readable video"], "good": ["cam1", "cam3", "cam4"]}


def truncated_h264(rec):
    f = videos(rec) / "cam2.mp4"
    data = f.read_bytes()
    f.write_bytes(data[: int(len(data) * 0.6)])
    return {
        "code": 1,
        "says": ["cam2.mp4: truncated"],
        "good": ["cam1", "cam3", "cam4"],
        "partial": "cam2",
    }


def unequal_lengths(rec):
    f = videos(rec) / "cam2.mp4"
    write_video(f, sequential_frames(f)[:60], "h264", gop=30)
    return {
        "code": 0,
        "says": ["differ in length", "cam2=60"],
        "good": CAMS,
        "lengths": [90, 60, 90, 90],
    }


def mixed_sizes_and_codecs(rec):
    if not POSE2SIM.is_dir():
        pytest.skip("shared fixtures not present")
    shutil.rmtree(videos(rec))
    shutil.copytree(POSE2SIM / "videos", rec / "videos")
    return {
        "code": 0,
        "says": ["differ in frame size", "cam03=1088x1920"],
        "good": ["cam01", "cam02", "cam03", "cam04"],
        "root": rec / "videos",
    }


def unreadable_file(rec):
    os.chmod(videos(rec) / "cam2.mp4", 0)
    return {
        "code": 1,
        "says": ["cam2.mp4: permission denied"],
        "good": ["cam1", "cam3", "cam4"],
        "unreadable": True,
    }


def missing_folder(rec):
    return {"code": 2, "says": ["no such folder"], "root": rec / "not here"}


def empty_folder(rec):
    shutil.rmtree(videos(rec))
    (rec / "readme.txt").write_text("no videos here")
    return {"code": 2, "says": ["no videos found"]}


def same_stem(rec):
    shutil.copy(videos(rec) / "cam3.mp4", videos(rec) / "cam2.avi")
    return {
        "code": 1,
        "says": ["share the view name 'cam2' (cam2.avi, cam2.mp4)"],
        "good": ["cam1", "cam3", "cam4"],
    }


def zero_chunk_frames(rec):
    return {
        "code": 2,
        "says": ["--chunk-frames must be a positive number"],
        "args": ["--chunk-frames", "0"],
    }


def negative_chunk_frames(rec):
    return {
        "code": 2,
        "says": ["--chunk-frames must be a positive number"],
        "args": ["--chunk-frames=-3"],
    }


def store_is_a_file(rec):
    (rec / "out.zarr").write_text("precious")
    return {
        "code": 2,
        "says": ["out.zarr: exists and is not a folder"],
        "store": rec / "out.zarr",
        "keep": rec / "out.zarr",
    }


def store_is_foreign_zarr(rec):
    foreign = rec / "other.zarr"
    xr.Dataset({"a": ("x", np.arange(3))}).to_zarr(foreign, zarr_format=3, consolidated=False)
    return {
        "code": 2,
        "says": ["other.zarr: exists and is not a mocapflow store"],
        "store": foreign,
        "keep": foreign / "a",
    }


def spaces_and_non_ascii(rec):
    target = rec.parent / "séance 01 — caméras"
    shutil.copytree(rec, target)
    return {"code": 0, "says": [], "good": CAMS, "root": target}


def wrong_frame_count(rec):
    f = videos(rec) / "cam2.mp4"
    avi = videos(rec) / "cam2.avi"
    write_video(avi, sequential_frames(f), "mjpg")
    f.unlink()
    data = bytearray(avi.read_bytes())
    for tag, offset in ((b"avih", 24), (b"strh", 40)):  # dwTotalFrames, dwLength
        at = data.index(tag) + offset
        data[at : at + 4] = (500).to_bytes(4, "little")
    avi.write_bytes(bytes(data))
    return {
        "code": 0,
        "says": ["cam2.avi: the container claims 500 frames but holds 90"],
        "good": CAMS,
        "lengths": [90, 90, 90, 90],
    }


CASES = [
    zero_byte,
    text_as_mp4,
    truncated_h264,
    unequal_lengths,
    mixed_sizes_and_codecs,
    unreadable_file,
    missing_folder,
    empty_folder,
    same_stem,
    zero_chunk_frames,
    negative_chunk_frames,
    store_is_a_file,
    store_is_foreign_zarr,
    spaces_and_non_ascii,
    wrong_frame_count,
]


@pytest.mark.parametrize("case", CASES, ids=[c.__name__ for c in CASES])
def test_bad_input(case, markers_recording, tmp_path):
    rec = tmp_path / "rec"
    shutil.copytree(markers_recording / "synchronized_videos", videos(rec))
    expect = case(rec)
    root = expect.get("root", rec)
    store = expect.get("store", tmp_path / "out" / "s.zarr")
    cmd = [
        EXE,
        "process",
        str(root),
        "-t",
        "framestats",
        "--out",
        str(store),
        "--no-report",
        "--chunk-frames",
        "30",
        *expect.get("args", []),
    ]
    if expect.get("unreadable") and os.geteuid() == 0:
        # Root reads everything; drop the capabilities that bypass file permissions.
        if not shutil.which("setpriv"):
            pytest.skip("running as root without setpriv: cannot make a file unreadable")
        caps = "-dac_override,-dac_read_search"
        cmd = ["setpriv", "--bounding-set", caps, "--inh-caps", caps, *cmd]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    output = proc.stdout + proc.stderr
    assert "Traceback" not in output, output
    assert proc.returncode == expect["code"], output
    for text in expect["says"]:
        lines = [ln for ln in proc.stderr.splitlines() if text in ln]
        assert lines, f"{text!r} not on one line of stderr:\n{proc.stderr}"
    if expect["code"] == 2:
        assert len([ln for ln in proc.stderr.splitlines() if ln.strip()]) == 1, proc.stderr
        assert proc.stderr.startswith("error: ")
    if "keep" in expect:
        assert expect["keep"].exists()
    if "good" not in expect:
        return
    ds = xr.open_zarr(store, consolidated=False)
    names = [str(v) for v in ds.view.values]
    for name in expect["good"]:
        i = names.index(name)
        n = int(ds.n_frames.values[i])
        assert n > 0 and ds.decoded.values[i, :n].all(), name
        assert np.isfinite(ds.frame_mean.values[i, :n]).all(), name
        assert ds.attrs["view_status"][name]["status"] == "ok", name
    if "lengths" in expect:
        assert list(ds.n_frames.values) == expect["lengths"]
        for i, n in enumerate(expect["lengths"]):
            assert (
                np.isnan(ds.frame_mean.values[i, n:]).all() and not ds.decoded.values[i, n:].any()
            )
    if "partial" in expect:
        i = names.index(expect["partial"])
        status = ds.attrs["view_status"][expect["partial"]]
        assert status["status"] == "partial" and 0 < status["n_decoded"] < 90
        assert int(ds.n_frames.values[i]) == 90  # never silently shortened
        assert ds.decoded.values[i].sum() == status["n_decoded"]
    for name in set(names) - set(expect["good"]) - {expect.get("partial")}:
        assert ds.attrs["view_status"][name]["status"] == "failed", name
