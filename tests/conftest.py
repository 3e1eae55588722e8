"""Shared fixtures: synthetic recordings, codec test videos, and the sequential oracle."""

from __future__ import annotations

import shutil
import subprocess
import sys
from importlib.util import find_spec
from pathlib import Path

import cv2
import numpy as np
import pytest

from mocapflow.synthetic import synthesize
from mocapflow.video import VideoWriter

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures"
POSE2SIM = FIXTURES / "pose2sim_single_person"
SAMPLE = Path(__file__).resolve().parents[1] / "samples" / "pose2sim_single_person"
EXE = str(Path(sys.executable).with_name("mocapflow"))
# NWB, DeepLabCut and SLEAP go through movement, which needs Python 3.12.
EXPORT_FORMATS = "csv,trc,npy" + (",nwb,dlc,sleap" if find_spec("movement") else "")


@pytest.fixture(scope="session")
def sample_run(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """``mocapflow run`` on the repo's sample (MediaPipe, every export): the store and the CLI.

    One detection per view (``-p max_people=1``, MediaPipe's own API): the path these
    tests hold against a sequential run and a naive pipeline. ``run``'s default, which
    tracks several people per view and matches them, is tested in ``test_people.py``.
    """
    out = tmp_path_factory.mktemp("pose") / "pose.zarr"
    proc = subprocess.run(
        [EXE, "run", SAMPLE, "-c", SAMPLE / "Calib.qca.txt", "-t", "mediapipe", "--out", out,
         "-f", EXPORT_FORMATS, "-p", "max_people=1"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return out, proc


def sequential_frames(path: str | Path) -> np.ndarray:
    """The oracle: every frame of a video, read in order by cv2.VideoCapture."""
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    return np.stack(frames) if frames else np.zeros((0, 0, 0, 3), np.uint8)


def oracle_tracks(recording, tracker) -> dict[str, np.ndarray]:
    """Track a plain sequential read of every view: the expected store contents."""
    from mocapflow.recording import open_recording

    rec = open_recording(recording)
    out = {}
    for name, spec in tracker.outputs().items():
        full = np.full((len(rec.views), rec.n_frames, *spec.frame_shape()), spec.fill, spec.dtype)
        for i, v in enumerate(rec.views):
            if v.ok:
                frames = sequential_frames(v.path)
                full[i, : len(frames)] = tracker(frames)[name]
        out[name] = full
    return out


def moving_pattern(n: int, size=(160, 120), seed=0) -> np.ndarray:
    """Frames that differ from each other: a drifting square over a seeded texture."""
    rng = np.random.default_rng(seed)
    w, h = size
    base = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
    base = cv2.GaussianBlur(base, (0, 0), 2)
    frames = np.empty((n, h, w, 3), np.uint8)
    for i in range(n):
        f = np.roll(base, i, axis=1).copy()
        x = (i * 3) % (w - 20)
        f[10:30, x : x + 20] = ((i * 37) % 255, 255 - (i * 11) % 255, (i * 5) % 255)
        frames[i] = f
    return frames


def write_video(path: Path, frames: np.ndarray, codec: str, gop: int = 150, fps: float = 30):
    with VideoWriter(path, fps, codec, gop=gop) as w:
        for f in frames:
            w.write(f)
    return path


@pytest.fixture(scope="session")
def codec_videos(tmp_path_factory) -> dict[str, Path]:
    """One short video per codec; H.264 with B-frames and a 150-frame keyframe interval."""
    root = tmp_path_factory.mktemp("codecs")
    frames = moving_pattern(200)
    return {
        "mp4v": write_video(root / "mp4v.mp4", frames, "mp4v", gop=30),
        "mjpg": write_video(root / "mjpg.avi", frames, "mjpg"),
        "vp9": write_video(root / "vp9.webm", frames, "vp9", gop=60),
        "h264": write_video(root / "h264.mp4", frames, "h264", gop=150),
    }


@pytest.fixture(scope="session")
def markers_recording(tmp_path_factory) -> Path:
    """4 cameras x 90 frames of moving coloured markers, 320x240 H.264 (seed 3)."""
    root = tmp_path_factory.mktemp("markers") / "rec"
    synthesize(root, kind="markers", cameras=4, frames=90, size=(320, 240), seed=3, gop=40)
    return root


@pytest.fixture()
def recording_copy(markers_recording, tmp_path) -> Path:
    """A private copy of the markers recording that a test may damage."""
    dst = tmp_path / "rec copy é"
    shutil.copytree(markers_recording / "synchronized_videos", dst / "synchronized_videos")
    return dst


@pytest.fixture(scope="session")
def pose2sim() -> Path:
    if not (POSE2SIM / "videos").is_dir():
        pytest.skip("shared fixtures not present")
    return POSE2SIM / "videos"


class FailOn:
    """A framestats tracker that raises on the batch holding one chosen frame."""

    name = "failon"

    def __init__(self, fail_mean_above: float = 1e9):
        from mocapflow.trackers import FrameStats

        self._inner = FrameStats()
        self.fail_mean_above = fail_mean_above

    def params(self):
        return {"fail_mean_above": self.fail_mean_above}

    def outputs(self):
        return self._inner.outputs()

    def __call__(self, frames):
        out = self._inner(frames)
        if (out["frame_mean"].mean(axis=1) > self.fail_mean_above).any():
            raise RuntimeError("tracker blew up on a bright frame")
        return out


@pytest.fixture(scope="session")
def calibration_run(tmp_path_factory):
    """A synthetic ChArUco recording (4 cameras, 300 frames, 1280x720, seed 1), calibrated.

    Calibrated through the real pipeline: the charuco tracker on a LocalCluster,
    then the bundle adjustment. Returns ``(recording, fit, toml path)``.
    """
    from mocapflow.pipeline import calibrate

    root = tmp_path_factory.mktemp("calib") / "charuco"
    synthesize(root, kind="charuco", cameras=4, frames=300, size=(1280, 720), seed=1)
    fit, path = calibrate(root, root / "estimated.toml", report=False)
    return root, fit, path
