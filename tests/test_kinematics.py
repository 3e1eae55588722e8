"""Kinematics: joint angles and centres of mass against a forward model, OpenSim IK against
the known curves, against OpenSim's own IK tool, and on the real sample."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import xarray as xr

from helpers import body as forward
from helpers.cli import mocapflow, one_line
from mocapflow import body, osim
from mocapflow.errors import UsageError
from mocapflow.kinematics import _solve_block, person_model
from mocapflow.report import run_report_path
from mocapflow.trackers.mediapipe_pose import BODY

SAMPLE_ARGS = ("-t", "mediapipe", "-p", "max_people=1", "-f", "trc")
SIDE_ANGLES = [n for n in body.angle_names() if n.startswith(("left_", "right_"))]
needs_opensim = pytest.mark.skipif(not osim.available(), reason="needs the opensim extra")


def _noisy(kp: np.ndarray, sd: float, seed: int = 0) -> np.ndarray:
    return kp + np.random.default_rng(seed).normal(0, sd, kp.shape)


def _coordinate_of(angle: str) -> str:
    side, rest = angle.split("_", 1)
    return f"{rest}_{side[0]}"


# --- geometric angles and the centre of mass -------------------------------------------------


def test_angles_recover_the_forward_models_curves():
    c = forward.curves(300)
    got = body.joint_angles(_noisy(forward.keypoints(c), 0.5), BODY, "+z")[..., 0]
    for j, name in enumerate(body.angle_names()):
        if name in c:
            assert np.abs(got[:, j] - c[name]).max() < 1.0, name
    assert set(SIDE_ANGLES) <= set(c)


def test_trunk_and_pelvis_angles_to_the_worlds_up():
    c = forward.standing(200)
    t = np.linspace(0, 1, 200)
    c["pelvis_tilt"] = -20 * t  # OpenSim's tilt about +Z leans the trunk back: -tilt forward
    kp = forward.keypoints(c)
    got = body.joint_angles(kp, BODY, "+z")[..., 0]
    names = body.angle_names()
    np.testing.assert_allclose(got[:, names.index("trunk_flexion")], 20 * t, atol=1e-9)
    np.testing.assert_allclose(got[:, names.index("pelvis_obliquity")], 0, atol=1e-9)
    a = np.radians(35)  # the heading does not matter: turn everything about the vertical
    turn = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    turned = body.joint_angles(np.einsum("ij,tjkn->tikn", turn, kp), BODY, "+z")[..., 0]
    np.testing.assert_allclose(turned, got, atol=1e-9)
    c = forward.standing(50)
    c["pelvis_list"] = np.full(50, 7.0)  # about +X: the right hip drops, the trunk leans right
    got = body.joint_angles(forward.keypoints(c), BODY, "+z")[..., 0]
    np.testing.assert_allclose(got[:, names.index("pelvis_obliquity")], 7, atol=1e-9)
    np.testing.assert_allclose(got[:, names.index("trunk_lateral_flexion")], 7, atol=1e-9)


def test_without_an_up_axis_only_the_world_angles_are_nan():
    got = body.joint_angles(forward.keypoints(forward.curves(20)), BODY, None)[..., 0]
    names = body.angle_names()
    world = [names.index(n) for n in ("trunk_flexion", "trunk_lateral_flexion", "pelvis_obliquity")]
    assert np.isnan(got[:, world]).all()
    assert np.isfinite(np.delete(got, world, axis=1)).all()


def test_a_frame_without_the_person_is_nan_and_the_others_are_not():
    kp = forward.keypoints(forward.curves(30))
    kp[10:13] = np.nan
    kp[20, :, BODY.index("left_knee")] = np.nan
    got = body.joint_angles(kp, BODY, "+z")[..., 0]
    assert np.isnan(got[10:13]).all()
    names = body.angle_names()
    assert np.isnan(got[20, names.index("left_knee_flexion")])
    assert np.isfinite(got[20, names.index("right_knee_flexion")])
    assert np.isfinite(got[:10]).all() and np.isfinite(got[21:]).all()


def test_centre_of_mass_of_a_symmetric_standing_pose():
    com = body.centre_of_mass(forward.keypoints(forward.standing()), BODY)[0, :, 0, 0]
    # world x is the body's lateral axis (OpenSim's Z); the mid-line is x = 0
    assert abs(com[0]) < 1e-9
    sole = 0.0  # the forward model's heel and toe lie on the sole, at z = 0
    assert 0.50 <= (com[2] - sole) / forward.STATURE <= 0.60
    female = body.centre_of_mass(forward.keypoints(forward.standing()), BODY, "female")
    assert 0.50 <= female[0, 2, 0, 0] / forward.STATURE <= 0.60


def test_the_centre_of_mass_is_the_mass_weighted_mean_of_the_segments():
    com = body.centre_of_mass(forward.keypoints(forward.curves(40)), BODY)
    weights = np.array([
        body.DE_LEVA["male"][s.split("_", 1)[1] if s.startswith(("left_", "right_")) else s][2]
        for s in body.SEGMENTS
    ])  # fmt: skip
    assert weights.sum() == pytest.approx(1.0, abs=1e-3)  # de Leva's fractions add up
    mean = np.einsum("tsk,k->ts", com[:, :, 1:, 0], weights) / weights.sum()
    np.testing.assert_allclose(com[:, :, 0, 0], mean, atol=1e-9)


def test_a_store_without_body_keypoints_is_refused_in_one_line():
    with pytest.raises(UsageError, match="body tracker.*-t mediapipe"):
        body.check_keypoints(["marker0", "marker1"])


# --- OpenSim inverse kinematics on the forward model -----------------------------------------


@needs_opensim
def test_ik_recovers_the_curves():
    c = forward.curves(150)
    kp = _noisy(forward.keypoints(c), 1.0)[..., 0]
    model = person_model(kp, BODY, "+z")
    got = _solve_block(model, kp, BODY, "+z", np.arange(150) / 60, 0)
    names = list(osim.COORDINATES)
    for angle in SIDE_ANGLES:
        rms = np.sqrt(np.mean((got[:, names.index(_coordinate_of(angle))] - c[angle]) ** 2))
        assert rms < 2.0, (angle, rms)
    rms_mm = got[:, -3] * 1000
    assert np.median(rms_mm) < 2.0  # 1 mm of noise per axis


@needs_opensim
def test_ik_solves_again_after_frames_without_the_person():
    c = forward.curves(80)
    kp = forward.keypoints(c)[..., 0]
    model = person_model(kp, BODY, "+z")
    gap = kp.copy()
    gap[30:40] = np.nan
    got = _solve_block(model, gap, BODY, "+z", np.arange(80) / 60, 0)
    assert np.isnan(got[30:40]).all()
    knee = got[:, list(osim.COORDINATES).index("knee_flexion_l")]
    assert np.abs(knee[40:] - c["left_knee_flexion"][40:]).max() < 0.5


@needs_opensim
def test_ik_blocks_equal_one_sequential_solve():
    c = forward.curves(120)
    kp = _noisy(forward.keypoints(c), 2.0, seed=1)[..., 0]
    model = person_model(kp, BODY, "+z")
    t = np.arange(120) / 60
    whole = _solve_block(model, kp, BODY, "+z", t, 0)
    parts = []
    for start in range(0, 120, 25):
        lo = max(0, start - osim.WARMUP)
        parts.append(_solve_block(model, kp[lo : start + 25], BODY, "+z", t[lo : start + 25],
                                  start - lo))  # fmt: skip
    chunked = np.concatenate(parts)
    k = len(osim.COORDINATES)
    assert np.abs(chunked[:, :k] - whole[:, :k]).max() < 0.1


# --- the real sample, end to end ---------------------------------------------------------------


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    from conftest import SAMPLE

    out = tmp_path_factory.mktemp("kin") / "pose.zarr"
    proc = mocapflow("run", SAMPLE, "-c", SAMPLE / "Calib.qca.txt", "--out", out,
                     *SAMPLE_ARGS, "--kinematics")  # fmt: skip
    return out, proc


@pytest.mark.slow  # make test-all (and CI)
def test_run_kinematics_writes_angles_and_com(sample):
    store, proc = sample
    angles = xr.open_zarr(store, group="angles", consolidated=False).load()
    assert set(body.angle_names()) <= set(angles.data_vars)
    assert angles.left_knee_flexion.attrs["units"] == "degrees"
    assert angles.attrs["time_unit"] == "seconds" and angles.attrs["fps"] == 60
    for side in ("left", "right"):
        knee = angles[f"{side}_knee_flexion"].values
        assert np.isfinite(knee).all()
        assert -10 <= knee.min() and knee.max() <= 150
    com = xr.open_zarr(store, group="com", consolidated=False).load()
    assert list(com.keypoint.values[:1]) == ["com"] and com.attrs["space_unit"] == "mm"
    # the centre of mass lies between the hips and the shoulders, over the feet's height
    filtered = xr.open_zarr(store, group="filtered", consolidated=False).load()
    z = filtered.position.sel(space="z")
    mid_hip = z.sel(keypoint=["left_hip", "right_hip"]).mean("keypoint")
    mid_sh = z.sel(keypoint=["left_shoulder", "right_shoulder"]).mean("keypoint")
    com_z = com.position.sel(space="z", keypoint="com")
    assert ((com_z > mid_hip - 150) & (com_z < mid_sh)).all()
    assert (store.parent / "pose.com.trc").is_file()
    pytest.importorskip("movement", reason="movement needs Python 3.12")
    from movement.validators.datasets import ValidPosesInputs

    ValidPosesInputs.validate(com)


@needs_opensim
def test_ik_on_the_sample(sample):
    store, proc = sample
    ik = xr.open_zarr(store, group="ik", consolidated=False).load()
    rms = ik.marker_rms.values[:, 0]
    assert np.isfinite(rms).all() and rms.max() <= 30.0  # mm
    assert not ik.flagged.values.any()
    assert "IK solved 100 of 100 frames" in one_line(proc.stdout)
    angles = xr.open_zarr(store, group="angles", consolidated=False).load()
    for side in ("left", "right"):
        for joint in ("knee_flexion", "elbow_flexion"):
            ik_deg = ik[f"{joint}_{side[0]}"].values[:, 0]
            geo = angles[f"{side}_{joint}"].values[:, 0]
            assert np.median(np.abs(ik_deg - geo)) <= 10.0, (side, joint)
        knee = ik[f"knee_flexion_{side[0]}"].values
        assert -10 <= knee.min() and knee.max() <= 150
    page = run_report_path(store).read_text()
    assert "Kinematics" in page and "OpenSim IK: marker error" in page
    assert "knee flexion" in page
    info = one_line(mocapflow("info", store).stdout)
    assert "angles: 17 joint angles (degrees) from filtered" in info
    assert "ik: id_0: 100 of 100 frames solved, marker RMS median" in info


@needs_opensim
def test_chunked_ik_equals_opensims_own_tool(sample, tmp_path):
    """Chunks of 20 frames on the cluster against one InverseKinematicsTool run on the TRC."""
    store, _ = sample
    copy = tmp_path / "pose.zarr"
    shutil.copytree(store, copy)
    proc = mocapflow("kinematics", copy, "--ik-frames", "20", "--workers", "2", cwd=tmp_path)
    assert "IK solved 100 of 100 frames" in one_line(proc.stdout)
    assert not (tmp_path / "opensim.log").exists()  # OpenSim's own log file stays off
    opensim = osim.require()
    model = tmp_path / "pose.osim"
    assert opensim.Model(str(model)).getCoordinateSet().getSize() == len(osim.COORDINATES)
    osim.run_ik_tool(model, store.parent / "pose.filtered.trc", tmp_path / "tool.mot")
    tool = opensim.TimeSeriesTable(str(tmp_path / "tool.mot"))
    ours = opensim.TimeSeriesTable(str(tmp_path / "pose.ik.mot"))
    assert list(ours.getColumnLabels()) == list(osim.COORDINATES)
    a, b = tool.getMatrix().to_numpy(), ours.getMatrix().to_numpy()
    labels = list(tool.getColumnLabels())
    order = [labels.index(n) for n in osim.COORDINATES]
    assert a.shape == b.shape == (100, len(osim.COORDINATES))
    rotational = [j for j, lin in enumerate(osim.COORDINATES.values()) if not lin]
    assert np.abs(a[:, order][:, rotational] - b[:, rotational]).max() < 0.1  # degrees


def test_kinematics_refuses_a_bad_mass(sample):
    store, _ = sample
    proc = mocapflow("kinematics", store, "--mass", "-3", ok=(2,))
    assert "--mass -3" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
