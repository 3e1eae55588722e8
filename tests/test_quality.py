"""The verdict on a 3-D group: synthetic bodies with known proportions (seeded rng)."""

from __future__ import annotations

import numpy as np
import xarray as xr

from mocapflow.quality import LIMB_BONES, MAX_LIMB_CV, doubts, limb_cv, trust_verdict

NAMES = sorted({k for bone in LIMB_BONES for k in bone})
RNG = np.random.default_rng(7)


def _body(scale: float) -> np.ndarray:
    """``(3, keypoint)`` a standing body in mm (x right, z up), its size times ``scale``."""
    side = {"left": -1.0, "right": 1.0}
    height = {"shoulder": 1400, "elbow": 1100, "wrist": 850, "hip": 900, "knee": 500, "ankle": 80}
    width = {"shoulder": 200, "elbow": 230, "wrist": 240, "hip": 120, "knee": 110, "ankle": 100}
    out = np.zeros((3, len(NAMES)))
    for i, name in enumerate(NAMES):
        s, part = name.split("_")
        out[:, i] = [side[s] * width[part], 0.0, height[part]]
    return out * scale


def _group(frames: list[np.ndarray], error_px: float, diagonal: float = 2203.0) -> xr.Dataset:
    """A 3-D group of one individual walking along y, with noise of 5 mm."""
    t = len(frames)
    pos = (
        np.stack(frames)
        + np.array([0.0, 1.0, 0.0])[None, :, None] * 20 * np.arange(t)[:, None, None]
    )
    pos = pos + RNG.normal(0, 5, pos.shape)
    err = np.abs(RNG.normal(error_px, 1.0, (t, len(NAMES), 1)))
    return xr.Dataset(
        {
            "position": (("time", "space", "keypoint", "individual"), pos[..., None]),
            "reprojection_error": (("time", "keypoint", "individual"), err),
        },
        coords={"keypoint": NAMES, "individual": ["person0"], "space": list("xyz")},
        attrs={"image_diagonal": diagonal},
    )


def test_one_person_is_trusted():
    ds = _group([_body(1.0)] * 60, error_px=6.0)
    pos = ds.position.values[..., 0]
    assert limb_cv(pos, NAMES) < 0.03
    assert doubts(ds) == {} and trust_verdict(ds, "s/points3d", "fix it") is None


def test_two_people_mixed_frame_by_frame_are_not():
    # Every third frame is another person, half the size (a child): limbs jump.
    frames = [_body(0.5 if t % 3 == 0 else 1.0) for t in range(60)]
    ds = _group(frames, error_px=6.0)
    assert limb_cv(ds.position.values[..., 0], NAMES) > MAX_LIMB_CV
    line = trust_verdict(ds, "s/points3d", "fix it")
    assert line.startswith("s/points3d cannot be trusted (person0: ")
    assert "limb length CV" in line and line.endswith("fix it") and "\n" not in line
    assert doubts(ds)["person0"]["frames"][:2] == [(0, 0), (3, 3)]


def test_an_error_far_above_tracking_noise_is_not():
    ds = _group([_body(1.0)] * 60, error_px=120.0)
    found = doubts(ds)["person0"]
    assert found["limit_px"] == 0.025 * 2203.0 and found["frames"] == [(0, 59)]
    assert "reprojection error median 12" in trust_verdict(ds, "s/points3d", "x", "cam1 300 px")
    assert "views by their distance to the others' points: cam1 300 px" in trust_verdict(
        ds, "s/points3d", "x", "cam1 300 px"
    )


def test_no_point_at_all_is_said():
    ds = _group([_body(1.0)] * 10, error_px=6.0)
    ds["position"][:] = np.nan
    line = trust_verdict(ds, "s/points3d", "check the calibration")
    assert line == (
        "s/points3d: not one point was triangulated: no two views agree on a point; "
        "check the calibration"
    )


def test_limb_cv_needs_a_body():
    # Markers or a board: fewer than four limb bones measured, so no figure.
    pos = RNG.normal(size=(30, 3, 3))
    assert np.isnan(limb_cv(pos, ["a", "b", "c"]))
