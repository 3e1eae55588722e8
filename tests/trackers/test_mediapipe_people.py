"""Several people per frame (``-p max_people=N``) on real footage, no mocks.

The legacy MediaPipe API runs only in a subprocess (tests/oracles/mediapipe_sequential.py;
a process that forks after using a MediaPipe graph crashes its children); the
multi-person path (LiteRT interpreters, no MediaPipe graph) runs here.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import mocapflow
from mocapflow.trackers import TrackerError, get_tracker
from mocapflow.trackers.mediapipe_people import detect_people, regions
from mocapflow.trackers.mediapipe_pose import _package_dir
from mocapflow.video import read_frames

ROOT = Path(__file__).resolve().parents[2]
SINGLE = ROOT / "samples" / "pose2sim_single_person" / "synchronized_videos"
MULTI = ROOT / "samples" / "pose2sim_multi_person"
MULTI_VIDEOS = sorted((MULTI / "synchronized_videos").glob("*.mp4"))
ORACLE = ROOT / "tests" / "oracles" / "mediapipe_sequential.py"
#: Views of the one-person sample compared with the legacy API (two keep the test short).
LEGACY_VIEWS = ("cam01.mp4", "cam04.mp4")
MODELS = _package_dir() / "modules"
DETECTOR = str(MODELS / "pose_detection" / "pose_detection.tflite")
LANDMARKS = str(MODELS / "pose_landmark" / "pose_landmark_full.tflite")


@pytest.fixture(scope="module")
def legacy(tmp_path_factory) -> dict:
    """The legacy API's static-mode landmarks of two views of the one-person sample."""
    out = tmp_path_factory.mktemp("legacy") / "static.npz"
    videos = [str(SINGLE / v) for v in LEGACY_VIEWS]
    subprocess.run(
        [sys.executable, str(ORACLE), str(out), *videos], check=True, capture_output=True,
        timeout=300,
    )  # fmt: skip
    return dict(np.load(out))


@pytest.fixture(scope="module")
def multi() -> dict[str, np.ndarray]:
    """``max_people=4`` on every frame of each view of the two-person demo, read in order."""
    tracker = get_tracker("mediapipe", max_people=4)
    return {v.stem: tracker(read_frames(v, 0, 10**6, pixel_format="rgb24")) for v in MULTI_VIDEOS}


def _gaps(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pixel distance per frame and keypoint between ``(n, 2, k)`` arrays."""
    return np.hypot(*(a - b).transpose(1, 0, 2))


@pytest.mark.slow  # make test-all (and CI)
def test_whole_frame_path_equals_the_legacy_api_on_one_person(legacy):
    """MediaPipe's own steps, repeated, give the legacy landmarks within a fraction of a pixel.

    Measured on these 200 frames (cam01, cam04): median 0.35 and 0.48 px,
    95th percentile 3.3 and 4.7 px, largest 35 and 17 px (the heatmap window
    moves by a cell on float differences). MediaPipe Tasks' PoseLandmarker,
    built from the same two models, differs from the legacy API by the same
    amounts, and from this path by a median 0.005 px. Visibilities agree
    within 0.0006.
    """
    for v, name in enumerate(LEGACY_VIEWS):
        frames = read_frames(SINGLE / name, 0, 10**6, pixel_format="rgb24")
        found = [detect_people(f, DETECTOR, LANDMARKS, 1, tiles=False) for f in frames]
        assert all(len(p) == 1 for p in found)
        pos = np.stack([p[0][1] for p in found])
        vis = np.stack([p[0][2] for p in found])
        gaps = _gaps(pos, legacy["position"][v])
        assert np.median(gaps) < 0.6, np.median(gaps)
        assert np.percentile(gaps, 95) < 6.0, np.percentile(gaps, 95)
        assert np.abs(vis - legacy["confidence"][v]).max() < 0.005


@pytest.mark.slow
def test_default_path_finds_the_one_person_as_the_whole_frame_does():
    """Searching the frame's squares too changes nothing for a person the whole frame finds."""
    tracker = get_tracker("mediapipe", max_people=2)
    for name in LEGACY_VIEWS:
        frames = read_frames(SINGLE / name, 0, 10**6, pixel_format="rgb24")
        got = tracker(frames)
        whole = np.stack(
            [detect_people(f, DETECTOR, LANDMARKS, 1, tiles=False)[0][1] for f in frames]
        )
        np.testing.assert_array_equal(got["position"][..., 0], whole.astype(np.float32))
        assert np.isnan(got["position"][..., 1]).all()  # nobody else in this recording
        assert np.isnan(got["confidence"][..., 1]).all()


def test_two_people_in_most_frames(multi):
    """The two-person demo: both found in most frames of the views that see both.

    cam03 sees the man from behind and the woman mostly hidden behind him
    (the detector needs a face): 40 % of its frames have both. Measured:
    cam01 90 %, cam02 90 %, cam04 83 %; no frame had three.
    """
    share = {}
    for view, out in multi.items():
        assert out["position"].shape == (100, 2, 33, 4)
        share[view] = float((np.isfinite(out["position"][:, 0, 0]).sum(1) >= 2).mean())
    assert share["cam01"] > 0.85 and share["cam02"] > 0.85 and share["cam04"] > 0.8, share
    assert share["cam03"] > 0.3, share


def test_slots_fill_from_id_0_and_empty_slots_are_nan(multi):
    for out in multi.values():
        pos, conf = out["position"], out["confidence"]
        filled = np.isfinite(pos).all(axis=(1, 2))  # (time, slot): a person has every landmark
        empty = np.isnan(pos).all(axis=(1, 2))
        assert (filled | empty).all()
        assert (np.isnan(conf).all(axis=1) == empty).all()
        assert not (empty[:, :-1] & filled[:, 1:]).any()  # no person after an empty slot
        assert (conf[filled.nonzero()[0], :, filled.nonzero()[1]] >= 0).all()
        # two slots of a frame never hold one person
        for t, s in zip(*np.nonzero(filled[:, 1:]), strict=True):
            assert np.median(np.hypot(*(pos[t, :, :, s + 1] - pos[t, :, :, 0]))) > 20


def test_chunked_equals_sequential(multi, tmp_path):
    """The pipeline in 13-frame tasks equals, frame by frame, the tracker on a sequential read."""
    rec = tmp_path / "two_views"
    (rec / "synchronized_videos").mkdir(parents=True)
    for name in ("cam01.mp4", "cam04.mp4"):
        shutil.copy(MULTI / "synchronized_videos" / name, rec / "synchronized_videos" / name)
    result = mocapflow.process(
        rec,
        "mediapipe",
        tmp_path / "s.zarr",
        tracker_params={"max_people": "4"},
        chunk_frames=13,
        cluster=mocapflow.ClusterOptions(workers=2),
        report=False,
    )
    ds = result.open()
    assert list(ds.individual.values) == ["id_0", "id_1", "id_2", "id_3"]
    assert "'max_people': 4" in str(ds.attrs["tracker_params"]) or '"max_people": 4' in str(
        ds.attrs["tracker_params"]
    )
    for view in ("cam01", "cam04"):
        pos = ds.position.sel(view=view).transpose("time", "space", "keypoint", "individual")
        conf = ds.confidence.sel(view=view).transpose("time", "keypoint", "individual")
        np.testing.assert_array_equal(pos.values, multi[view]["position"])
        np.testing.assert_array_equal(conf.values, multi[view]["confidence"])


def test_max_people_1_is_the_legacy_tracker_unchanged():
    default = get_tracker("mediapipe")
    assert get_tracker("mediapipe", max_people="1") == default
    assert "max_people" not in default.params()  # the store's attrs stay as they were
    assert list(default.outputs()["position"].coords["individual"]) == ["id_0"]
    four = get_tracker("mediapipe", max_people=4)
    assert four.params()["max_people"] == 4
    assert list(four.outputs()["confidence"].coords["individual"]) == [f"id_{i}" for i in range(4)]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"max_people": "0"}, "max_people must be a whole number, 1 or more"),
        ({"max_people": "x"}, "-p max_people=x: max_people takes a whole number"),
        ({"max_people": "2.5"}, "max_people takes a whole number"),
        ({"max_people": "2", "static_image_mode": "false"}, "static_image_mode=false"),
    ],
)
def test_bad_max_people_is_one_line(params, message):
    with pytest.raises(TrackerError, match=message) as info:
        get_tracker("mediapipe", **params)
    assert "\n" not in str(info.value)


def test_holistic_refuses_several_people():
    with pytest.raises(TrackerError, match="follows one person"):
        get_tracker("mediapipe_holistic", max_people=2)


def test_regions_cover_the_frame():
    assert regions(1088, 1920) == [
        (-416.0, 0.0, 1920.0), (0.0, 0.0, 1088.0), (0.0, 416.0, 1088.0), (0.0, 832.0, 1088.0),
    ]  # fmt: skip
    assert regions(1920, 1080)[1:] == [
        (0.0, 0.0, 1080.0),
        (420.0, 0.0, 1080.0),
        (840.0, 0.0, 1080.0),
    ]
    assert regions(800, 720) == [(0.0, -40.0, 800.0)]  # near square: the whole frame only
