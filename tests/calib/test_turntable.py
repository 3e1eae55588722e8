"""Calibration on the harder synthetic scene: a small board turning once near the centre.

``synthesize(kind="charuco", scene="turntable")``: 4 cameras in a ring 2.5 m
from the centre, 960x720, 150 frames, an 80 mm-square 7x5 board turning once
about the vertical, so that each camera sees it face-on only part of the time.
"""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from mocapflow.calib import centre_errors, read_toml
from mocapflow.calibration import calibrate
from mocapflow.synthetic import synthesize


@pytest.fixture(scope="module")
def turntable(tmp_path_factory):
    """The turntable render (seed 0), calibrated by the real pipeline: ``(root, fit)``."""
    root = tmp_path_factory.mktemp("turntable") / "rec"
    synthesize(root, kind="charuco", scene="turntable", seed=0)
    fit, _ = calibrate(
        root, root / "estimated.toml", board={"square_length": 80}, report=False, html=False
    )
    return root, fit


def _facing_angles(root) -> np.ndarray:
    """Degrees between the board's printed face and each true camera, ``(frame, camera)``."""
    truth, _ = read_toml(root / "true_calibration.toml")
    gt = xr.open_zarr(root / "ground_truth.zarr", consolidated=False)
    corners = gt.position.values[..., 0]  # (time, 3, corner); 6 corners a row
    out = []
    for pts in np.moveaxis(corners, 2, 1):  # (corner, 3)
        into = np.cross(pts[1] - pts[0], pts[6] - pts[0])  # the board's z, into its back
        into /= np.linalg.norm(into)
        sight = np.stack([c.center for c in truth.values()]) - pts.mean(0)
        sight /= np.linalg.norm(sight, axis=1, keepdims=True)
        out.append(np.degrees(np.arccos(np.clip(sight @ -into, -1, 1))))
    return np.array(out)


def _centre_errors(root, fit) -> list[float]:
    """Millimetres between each fitted camera centre and the true one, worlds aligned."""
    truth, _ = read_toml(root / "true_calibration.toml")
    return centre_errors(fit.cameras, [truth[c.name] for c in fit.cameras]).tolist()


def test_the_scene_is_what_it_claims(turntable):
    root, _ = turntable
    truth, meta = read_toml(root / "true_calibration.toml")
    assert meta["scene"] == "turntable" and len(truth) == 4
    assert all(c.size == (960, 720) for c in truth.values())
    radii = [np.hypot(*c.center[:2]) for c in truth.values()]
    assert all(2300 < r < 2700 for r in radii), radii
    gt = xr.open_zarr(root / "ground_truth.zarr", consolidated=False)
    assert gt.sizes["time"] == 150 and gt.attrs["board"]["square_length"] == 80.0
    angles = _facing_angles(root)
    face_on = (angles < 45).sum(1)
    # Face-on (within 45 degrees) to one or two cameras at a time, never more.
    assert face_on.max() <= 2 and (face_on >= 1).mean() > 0.8
    # The board turns once: every camera sees it face-on, and steeply, for a while
    # (measured on seeds 0-2: 30-39 frames within 45 degrees, 19-25 at 55-80).
    assert ((angles < 45).sum(0) >= 25).all()
    assert (((angles > 55) & (angles < 80)).sum(0) >= 10).all()
    # The board stays near the centre.
    centre = gt.position.values[..., 0].mean(axis=2)
    assert np.hypot(*centre[:, :2].T).max() < 300


def test_focal_lengths_within_half_a_percent(turntable):
    root, fit = turntable
    truth, _ = read_toml(root / "true_calibration.toml")
    for cam in fit.cameras:
        rel = abs(cam.matrix[0, 0] / truth[cam.name].matrix[0, 0] - 1)
        assert rel < 0.005, (cam.name, rel)


@pytest.mark.xfail(
    strict=True,
    reason="the corners' own noise: 4.1-6.7 mm measured on seeds 0-2; 1.5-11 mm (median "
    "3.2-4.3 per seed) fitting ideal corners of the same noise (benchmarks/calibration_limit.py)",
)
def test_camera_centres_within_2_mm(turntable):
    err = _centre_errors(*turntable)
    assert max(err) < 2.0, err


def test_camera_centres_within_10_mm(turntable):
    """Today's bound from this recording alone (2 mm is the goal, above)."""
    err = _centre_errors(*turntable)
    assert max(err) < 10.0, err


def test_with_intrinsics_known_camera_centres_within_2_mm(turntable):
    """What the recording pins is the rig: with the intrinsics held (here the true ones, which
    intrinsics fitted apart from close-ups approach), every camera lands within 2 mm."""
    root, _ = turntable
    fit, _ = calibrate(
        root,
        root / "held.toml",
        board={"square_length": 80},
        intrinsics=root / "true_calibration.toml",
        report=False,
        html=False,
    )
    err = _centre_errors(root, fit)
    # Measured 0.18-0.39 mm on seeds 0-2 (4.1-6.7 mm with the intrinsics fitted too).
    assert max(err) < 2.0, err
