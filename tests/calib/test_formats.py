"""The Qualisys .qca.txt calibration shipped with the Pose2Sim fixture."""

from __future__ import annotations

import numpy as np
import pytest

from mocapflow.calib import read_calibration
from mocapflow.errors import CalibrationError
from mocapflow.triangulate import CameraSet, triangulate_points


@pytest.fixture(scope="module")
def qca(pose2sim):
    cams, meta = read_calibration(pose2sim.parent / "Calib.qca.txt")
    return cams, meta


def test_four_cameras_named_like_the_videos(qca, pose2sim):
    cams, meta = qca
    assert (
        list(cams)
        == ["cam01", "cam02", "cam03", "cam04"]
        == sorted(p.stem for p in pose2sim.glob("*.mp4"))
    )
    assert meta["source"] == "qualisys"
    for cam in cams.values():
        assert cam.size == (1088, 1920)  # portrait video, as the fixture's videos
        assert 1600 < cam.matrix[0, 0] < 1750 and 0 < cam.matrix[0, 2] < 1088
        assert np.isclose(np.linalg.det(cam.rotation_matrix), 1.0)


def test_cameras_look_at_one_place(qca):
    cams = list(qca[0].values())
    # The point nearest every optical axis lies in front of every camera, inside
    # its image, and within 15 cm of each axis.
    a = np.zeros((3, 3))
    b = np.zeros(3)
    for c in cams:
        d = c.rotation_matrix[2]
        p = np.eye(3) - np.outer(d, d)
        a += p
        b += p @ c.center
    focus = np.linalg.solve(a, b)
    for c in cams:
        rel = focus - c.center
        depth = rel @ c.rotation_matrix[2]
        assert 2000 < depth < 5000
        assert np.linalg.norm(rel - depth * c.rotation_matrix[2]) < 150
        u, v = c.project(focus[None])[0]
        assert 0 < u < c.size[0] and 0 < v < c.size[1]


def test_triangulated_points_reproject_consistently(qca):
    cams = list(qca[0].values())
    cset = CameraSet.from_cameras(cams)
    rng = np.random.default_rng(4)
    pts = np.array([-943.0, -22.0, 900.0]) + rng.uniform(-400, 400, (200, 3))
    uv = cset.project(pts)
    inside = np.all(
        [
            (uv[v, :, 0] > 0) & (uv[v, :, 0] < 1088) & (uv[v, :, 1] > 0) & (uv[v, :, 1] < 1920)
            for v in range(4)
        ],
        axis=0,
    )
    assert inside.mean() > 0.9
    noisy = uv + rng.normal(0, 0.5, uv.shape)
    xyz, err, n = triangulate_points(noisy[:, inside], cset)
    assert (n == 4).all() and np.nanmean(err) < 0.7
    assert np.sqrt(np.mean(np.sum((xyz - pts[inside]) ** 2, axis=1))) < 3.0


def test_bad_calibration_files(tmp_path):
    with pytest.raises(CalibrationError, match="calibration file not found"):
        read_calibration(tmp_path / "nope.toml")
    (tmp_path / "x.qca.txt").write_text("<calibration><cameras></cameras></calibration>")
    with pytest.raises(CalibrationError, match="no <camera> entries"):
        read_calibration(tmp_path / "x.qca.txt")
    (tmp_path / "x.toml").write_text("[cam_0]\nname = 'a'\nmatrix = [")
    with pytest.raises(CalibrationError, match="not a valid calibration TOML"):
        read_calibration(tmp_path / "x.toml")
