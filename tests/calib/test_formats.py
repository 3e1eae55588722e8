"""Calibration files: the Qualisys .qca.txt of the Pose2Sim fixture, names, image sizes."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from mocapflow.calib import Camera, fit_to_videos, read_calibration, write_toml
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


def test_two_cameras_with_one_name_are_refused(tmp_path):
    """The last one would win: a view triangulated with another camera's values."""
    sample = Path(__file__).resolve().parents[2] / "samples/pose2sim_single_person/Calib.qca.txt"
    qca = tmp_path / "dup.qca.txt"
    qca.write_text(sample.read_text().replace('serial="cam01"', 'serial="cam02"'))
    with pytest.raises(CalibrationError, match="dup.qca.txt: two cameras have the serial 'cam02'"):
        read_calibration(qca)
    cams = list(read_calibration(sample)[0].values())
    write_toml(tmp_path / "dup.toml", [cams[0], replace(cams[1], name="cam01")])
    with pytest.raises(CalibrationError, match=r"\[cam_00\] and \[cam_01\] are both named 'cam01'"):
        read_calibration(tmp_path / "dup.toml")


def test_image_sizes_are_checked_against_the_videos():
    matrix = np.array([[800.0, 0, 320], [0, 800, 240], [0, 0, 1]])
    cam = Camera("cam1", (640, 480), matrix, np.zeros(5), np.zeros(3), np.zeros(3))
    # Equal, or within an encoder's macroblock padding (1080 rows coded as 1088): as it is.
    for size in ((640, 480), (632, 472)):
        fitted, notes = fit_to_videos({"cam1": cam}, {"cam1": size}, "c.toml")
        assert fitted["cam1"] is cam and notes == []
    # Binned: intrinsics scaled, with a note.
    fitted, notes = fit_to_videos({"cam1": cam}, {"cam1": (320, 240)}, "c.toml")
    np.testing.assert_allclose(fitted["cam1"].matrix, [[400, 0, 160], [0, 400, 120], [0, 0, 1]])
    assert fitted["cam1"].size == (320, 240) and "scaled by 0.5" in notes[0]
    # Another aspect ratio: refused.
    with pytest.raises(CalibrationError, match="camera cam1 was calibrated at 640x480 but its"):
        fit_to_videos({"cam1": cam}, {"cam1": (640, 360)}, "c.toml")
    # No size on either side, or a view without a camera: nothing to check.
    for cams, sizes in (({"cam1": replace(cam, size=None)}, {"cam1": (1, 1)}), ({"cam1": cam}, {})):
        assert fit_to_videos(cams, sizes, "c.toml") == (cams, [])


def test_the_real_sample_fits_its_videos(qca, pose2sim):
    """cam01 and cam02 are 1080 pixels wide, calibrated at 1088: the encoder's padding."""
    from mocapflow.video import probe

    sizes = {p.stem: (probe(p).width, probe(p).height) for p in pose2sim.glob("*.mp4")}
    assert sizes["cam01"] == (1080, 1920)
    assert fit_to_videos(qca[0], sizes, "Calib.qca.txt") == (qca[0], [])


def test_a_calibration_format_registered_by_a_package(tmp_path):
    """A package adds a format through the ``mocapflow.calibrations`` entry points; it is
    tried before the built-in ones, which still read what it does not claim."""
    import subprocess
    import sys
    import textwrap

    (tmp_path / "mycal.py").write_text(
        textwrap.dedent("""
        import json
        import numpy as np
        from mocapflow.calib import CalibrationFormat, Camera

        def read(path):
            doc = json.loads(path.read_text())
            cams = {n: Camera(n, tuple(c["size"]), np.array(c["K"], float), np.zeros(5),
                              np.zeros(3), np.zeros(3)) for n, c in doc.items()}
            return cams, {"source": "mycal"}

        FMT = CalibrationFormat("mycal", lambda p: p.suffix == ".mycal", read)
    """)
    )
    info = tmp_path / "mycal-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: mycal\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[mocapflow.calibrations]\nmycal = mycal:FMT\n")
    K = [[800, 0, 320], [0, 800, 240], [0, 0, 1]]
    (tmp_path / "rig.mycal").write_text(json.dumps({"cam1": {"K": K, "size": [640, 480]}}))
    code = (
        "import sys; from mocapflow.calib import read_calibration, calibration_formats;"
        f"cams, meta = read_calibration({str(tmp_path / 'rig.mycal')!r});"
        "print(list(cams), cams['cam1'].size, meta['source'], list(calibration_formats()))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(tmp_path)}, timeout=60)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["['cam1']", "(640,", "480)", "mycal",
                                   "['mycal',", "'qualisys',", "'easymocap',", "'caliscope',", "'pose2sim',", "'anipose']"]  # fmt: skip  # noqa: E501
