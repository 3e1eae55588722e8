"""Other tools' calibration files: caliscope, Pose2Sim and EasyMocap.

Each peer's file is written here as the peer's own source writes it (the writers
below follow caliscope's ``CameraArray.to_toml``, Pose2Sim's ``toml_write`` and
EasyMocap's ``write_camera`` line by line), with numbers whose meaning is checked:
a camera centre in metres reads as mm, and a point projects, through mocapflow's
``Camera``, to the pixel the peer's own projection (OpenCV's, with the file's
values) gives it.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
import tomli_w

from mocapflow.calib import Camera, look_at, read_calibration, write_calibration, write_toml
from mocapflow.calib.formats import format_of
from mocapflow.errors import CalibrationError

QCA = Path("/work/shared/fixtures/pose2sim_single_person/Calib.qca.txt")
if not QCA.is_file():  # the same file, kept in the repository
    QCA = Path(__file__).resolve().parents[2] / "samples/pose2sim_single_person/Calib.qca.txt"
DATA = Path(__file__).resolve().parent / "data"

# A camera whose meaning is known: 1.5 m up, 4 m from the origin, looking at it.
CENTRE_M = np.array([3.0, -2.0, 1.5])
K = np.array([[1200.5, 0.0, 955.25], [0.0, 1199.75, 541.5], [0.0, 0.0, 1.0]])
DIST5 = np.array([-0.125, 0.0625, 0.001, -0.002, 0.015])
POINTS_M = np.array([[0.0, 0.0, 0.0], [0.3, -0.2, 1.1], [-0.4, 0.5, 0.2]])


def _pose_m() -> tuple[np.ndarray, np.ndarray]:
    """Rodrigues rotation and translation (metres) of the known camera, world to camera."""
    rot = look_at(CENTRE_M, np.zeros(3))
    return cv2.Rodrigues(rot)[0].ravel(), -rot @ CENTRE_M


def _peer_pixels(rvec, tvec_m, matrix, dist) -> np.ndarray:
    """Project POINTS_M as the peers do: cv2.projectPoints with the file's values."""
    uv, _ = cv2.projectPoints(POINTS_M, np.asarray(rvec, float), np.asarray(tvec_m, float),
                              np.asarray(matrix, float), np.asarray(dist, float))  # fmt: skip
    return uv.reshape(-1, 2)


def _assert_known_camera(cam: Camera, dist, tol: float = 1e-9) -> None:
    """The camera read is the known one: its centre in mm, the peer's pixels."""
    rvec, tvec = _pose_m()
    np.testing.assert_allclose(cam.center, CENTRE_M * 1000, atol=1e-6)
    np.testing.assert_allclose(cam.translation, tvec * 1000, atol=tol)
    np.testing.assert_allclose(cam.matrix, K, atol=tol)
    np.testing.assert_allclose(cam.distortions[: len(dist)], dist, atol=tol)
    np.testing.assert_allclose(
        cam.project(POINTS_M * 1000), _peer_pixels(rvec, tvec, K, dist), atol=1e-6
    )
    assert np.all(cam.to_camera(POINTS_M * 1000)[:, 2] > 0)  # in front of it


@pytest.fixture(scope="module")
def qualisys() -> list[Camera]:
    """The Pose2Sim demo's four real cameras (Qualisys, mm, k3 = 0)."""
    return list(read_calibration(QCA)[0].values())


def _assert_same(a: list[Camera], b: list[Camera], tol: float = 1e-9) -> None:
    assert [c.name for c in a] == [c.name for c in b]
    for x, y in zip(a, b, strict=True):
        assert x.size == y.size
        for field in ("matrix", "distortions", "rotation", "translation"):
            np.testing.assert_allclose(
                np.asarray(getattr(x, field), float).ravel(),
                np.asarray(getattr(y, field), float).ravel(),
                rtol=0,
                atol=tol,
                err_msg=f"{x.name}.{field}",
            )


def _one_line_error(call, match: str) -> str:
    with pytest.raises(CalibrationError, match=match) as info:
        call()
    text = str(info.value)
    assert "\n" not in text
    return text


# --- Round trips ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("camera_array.toml", "caliscope"),
        ("Calib.toml", "pose2sim"),
        ("Calib_scene.toml", "pose2sim"),
        ("calibration.toml", "anipose"),
    ],
)
def test_round_trip_by_file_name(tmp_path, qualisys, name, fmt):
    path = write_calibration(tmp_path / name, qualisys, {"source": "qualisys"})
    assert format_of(path).name == fmt
    cams, meta = read_calibration(path)
    _assert_same(qualisys, list(cams.values()))
    assert meta["source"] == "qualisys"


@pytest.mark.parametrize("fmt", ["caliscope", "pose2sim", "anipose"])
def test_round_trip_with_the_format_named(tmp_path, qualisys, fmt):
    """An explicit format wins over the file's name; a dict of cameras works too."""
    path = write_calibration(tmp_path / "rig.toml", {c.name: c for c in qualisys}, format=fmt)
    assert format_of(path).name == fmt
    _assert_same(qualisys, list(read_calibration(path)[0].values()))


def test_anipose_named_like_a_peer_stays_anipose(tmp_path, qualisys):
    for name in ("Calib.toml", "camera_array.toml"):
        path = write_calibration(tmp_path / name, qualisys, format="anipose")
        assert format_of(path).name == "anipose"
        _assert_same(qualisys, list(read_calibration(path)[0].values()))


def test_the_known_camera_round_trips_with_k3(tmp_path):
    """A non-zero k3 survives caliscope's and anipose's 5 coefficients."""
    rvec, tvec = _pose_m()
    cam = Camera("cam_2", (1920, 1080), K, DIST5, rvec, tvec * 1000)
    for name in ("camera_array.toml", "calibration.toml"):
        (back,) = read_calibration(write_calibration(tmp_path / name, [cam]))[0].values()
        _assert_same([cam], [back])
        _assert_known_camera(back, DIST5)


# --- caliscope --------------------------------------------------------------------------


def _caliscope_table(cam_id: int, rotation, translation_m, key: str = "cam_id") -> dict:
    """A camera as caliscope's ``CameraArray.to_toml`` writes it (``None`` keys left out)."""
    return {
        key: cam_id,
        "size": [1920, 1080],
        "rotation_count": 0,
        "error": 0.31,
        "matrix": K.tolist(),
        "distortions": DIST5.tolist(),
        "translation": list(translation_m),
        "rotation": rotation,
        "exposure": -7,
        "grid_count": 24,
        "fisheye": False,
    }


def test_a_caliscope_camera_array(tmp_path, caplog):
    rvec, tvec = _pose_m()
    doc = {
        "cameras": {
            # Not yet calibrated: caliscope leaves the missing values out.
            "0": {"cam_id": 0, "size": [1280, 720], "rotation_count": 0, "fisheye": False},
            "2": _caliscope_table(2, rvec.tolist(), tvec),
            # Calibrated but set aside in caliscope.
            "3": {**_caliscope_table(3, rvec.tolist(), tvec), "ignore": True},
        }
    }
    path = tmp_path / "camera_array.toml"
    path.write_text(tomli_w.dumps(doc))
    assert format_of(path).name == "caliscope"
    with caplog.at_level(logging.WARNING, logger="mocapflow.calib.formats"):
        cams, meta = read_calibration(path)
    assert list(cams) == ["cam_2"] and meta == {"source": "caliscope"}
    assert "0 (not calibrated)" in caplog.text and "3 (ignored in caliscope)" in caplog.text
    assert cams["cam_2"].size == (1920, 1080)
    _assert_known_camera(cams["cam_2"], DIST5)


def test_older_caliscope_files(tmp_path):
    """Before February 2026 caliscope keyed cameras by ``port`` (videos ``port_N.mp4``);
    before December 2025 it kept them as ``[cam_N]`` in config.toml, rotations as 3x3."""
    rvec, tvec = _pose_m()
    rot = cv2.Rodrigues(rvec)[0].tolist()
    ported = tmp_path / "camera_array.toml"
    ported.write_text(tomli_w.dumps({"cameras": {"1": _caliscope_table(1, rot, tvec, "port")}}))
    config = tmp_path / "config.toml"
    config.write_text(
        tomli_w.dumps(
            {
                "fps_recording": 24,
                "charuco": {"columns": 4, "rows": 5},
                "cam_1": _caliscope_table(1, rot, tvec, "port"),
            }
        )
    )
    for path in (ported, config):
        assert format_of(path).name == "caliscope"
        cams, _ = read_calibration(path)
        assert list(cams) == ["port_1"]
        _assert_known_camera(cams["port_1"], DIST5)


def test_caliscopes_aniposelib_export(tmp_path):
    """``CameraArray.to_aniposelib_toml``: anipose's tables, but in metres, known by name."""
    rvec, tvec = _pose_m()
    doc = {
        "cam_4": {"name": "cam_4", "size": [1920, 1080], "matrix": K.tolist(),
                  "distortions": DIST5.tolist(), "rotation": rvec.tolist(),
                  "translation": tvec.tolist(), "fisheye": False},
        "metadata": {"adjusted": False, "error": 0.0},
    }  # fmt: skip
    path = tmp_path / "camera_array_aniposelib.toml"
    path.write_text(tomli_w.dumps(doc))
    assert format_of(path).name == "caliscope"
    cams, _ = read_calibration(path)
    assert list(cams) == ["cam_4"]
    _assert_known_camera(cams["cam_4"], DIST5)
    other = tmp_path / "calibration.toml"  # the same tables under another name: anipose's, mm
    other.write_text(path.read_text())
    assert format_of(other).name == "anipose"


def test_caliscope_ids_follow_the_names(tmp_path, qualisys):
    """``cam_N`` keeps id N; other names take the ids left; our name is kept."""
    import tomllib

    cams = [replace(qualisys[0], name="cam_3"), replace(qualisys[1], name="cam_1"),
            replace(qualisys[2], name="left"), replace(qualisys[3], name="cam_1x")]  # fmt: skip
    path = write_calibration(tmp_path / "camera_array.toml", cams)
    doc = tomllib.loads(path.read_text())["cameras"]
    assert {k: (t["cam_id"], t["name"]) for k, t in doc.items()} == {
        "0": (0, "left"),
        "1": (1, "cam_1"),
        "2": (2, "cam_1x"),
        "3": (3, "cam_3"),
    }
    assert doc["3"]["translation"] == pytest.approx(np.asarray(qualisys[0].translation) / 1000)
    back = read_calibration(path)[0]
    _assert_same(cams, [back[c.name] for c in cams])


# --- Pose2Sim ---------------------------------------------------------------------------


def _pose2sim_toml_write(calib_path, C, S, D, K, R, T):  # noqa: N803 - Pose2Sim's names
    """Pose2Sim's ``toml_write`` (Pose2Sim/calibration.py), unchanged."""
    with open(calib_path, "w+") as cal_f:
        for c in range(len(C)):
            cam = f"[{C[c]}]\n"
            name = f'name = "{C[c]}"\n'
            size = f"size = [ {S[c][0]}, {S[c][1]}]\n"
            mat = f"matrix = [ [ {K[c][0, 0]}, 0.0, {K[c][0, 2]}], [ 0.0, {K[c][1, 1]}, {K[c][1, 2]}], [ 0.0, 0.0, 1.0]]\n"  # noqa: E501
            dist = f"distortions = [ {D[c][0]}, {D[c][1]}, {D[c][2]}, {D[c][3]}]\n"
            rot = f"rotation = [ {R[c][0]}, {R[c][1]}, {R[c][2]}]\n"
            tran = f"translation = [ {T[c][0]}, {T[c][1]}, {T[c][2]}]\n"
            fish = "fisheye = false\n\n"
            cal_f.write(cam + name + size + mat + dist + rot + tran + fish)
        meta = "[metadata]\nadjusted = false\nerror = 0.0\n"
        cal_f.write(meta)


def test_a_file_written_by_pose2sim(tmp_path):
    rvec, tvec = _pose_m()
    path = tmp_path / "Calib_board.toml"
    _pose2sim_toml_write(path, ["cam_07"], [[1920.0, 1080.0]], [DIST5[:4]], [K], [rvec], [tvec])
    assert format_of(path).name == "pose2sim"
    cams, meta = read_calibration(path)
    assert meta == {"adjusted": False, "error": 0.0, "source": "pose2sim"}
    assert list(cams) == ["cam_07"] and cams["cam_07"].size == (1920, 1080)
    assert cams["cam_07"].distortions[4] == 0
    _assert_known_camera(cams["cam_07"], DIST5[:4])


def test_pose2sims_own_demo_calibration_is_its_qualisys_file(qualisys):
    """Pose2Sim converted the demo's Calib.qca.txt to this Calib.toml (metres): read back,
    it is the cameras mocapflow reads from the .qca.txt (mm), to rounding."""
    path = DATA / "pose2sim_demo_Calib.toml"
    assert format_of(path).name == "pose2sim"
    cams, meta = read_calibration(path)
    assert list(cams) == ["cam_01", "cam_02", "cam_03", "cam_04"]
    assert meta["adjusted"] is False
    theirs = list(cams.values())
    _assert_same([replace(c, name=t.name) for c, t in zip(qualisys, theirs, strict=True)],
                 theirs, tol=1e-8)  # fmt: skip
    points = np.array([-943.0, -22.0, 900.0]) + np.random.default_rng(1).uniform(-400, 400, (50, 3))
    for ours, their in zip(qualisys, theirs, strict=True):
        np.testing.assert_allclose(their.center, ours.center, atol=1e-9)
        np.testing.assert_allclose(their.project(points), ours.project(points), atol=1e-9)


def test_pose2sim_has_no_k3(tmp_path, qualisys):
    """k3 = 0 goes through exactly; a k3 Pose2Sim cannot hold is refused, not dropped."""
    assert all(c.distortions[4] == 0 for c in qualisys)
    path = write_calibration(tmp_path / "Calib.toml", qualisys)
    assert "distortions = [\n" in path.read_text()
    back = list(read_calibration(path)[0].values())
    for ours, theirs in zip(qualisys, back, strict=True):
        assert np.array_equal(ours.distortions, theirs.distortions)
    bent = [replace(qualisys[0], distortions=np.array([0.1, 0.01, 0.0, 0.0, 0.002]))]
    text = _one_line_error(
        lambda: write_calibration(tmp_path / "Calib_k3.toml", bent), "camera cam01 has k3 = 0.002"
    )
    assert "format='anipose'" in text
    assert not (tmp_path / "Calib_k3.toml").exists()


# --- EasyMocap --------------------------------------------------------------------------


def _easymocap_write_camera(camera: dict, path: Path) -> None:
    """EasyMocap's ``write_camera`` with its ``FileStorage`` writer
    (easymocap/mytools/camera_utils.py): OpenCV YAML written as text, 6 decimals."""

    def storage(name):
        fs = open(name, "w")  # noqa: SIM115
        fs.write("%YAML:1.0\r\n")
        fs.write("---\r\n")
        return fs

    def write(fs, key, value, dt="mat"):
        if dt == "mat":
            fs.write(f"{key}: !!opencv-matrix\r\n")
            fs.write(f"  rows: {value.shape[0]}\r\n")
            fs.write(f"  cols: {value.shape[1]}\r\n")
            fs.write("  dt: d\r\n")
            fs.write("  data: [{}]\r\n".format(", ".join(f"{i:.6f}" for i in value.reshape(-1))))
        elif dt == "list":
            fs.write(f"{key}:\r\n")
            for elem in value:
                fs.write(f'  - "{elem}"\r\n')
        elif dt == "int":
            fs.write(f"{key}: {value}\r\n")

    intri, extri = storage(path / "intri.yml"), storage(path / "extri.yml")
    camnames = [key_.split(".")[0] for key_ in camera]
    write(intri, "names", camnames, "list")
    write(extri, "names", camnames, "list")
    for key_, val in camera.items():
        key = key_.split(".")[0]
        write(intri, f"K_{key}", val["K"])
        write(intri, f"dist_{key}", val["dist"])
        if "H" in val and "W" in val:
            write(intri, f"H_{key}", val["H"], dt="int")
            write(intri, f"W_{key}", val["W"], dt="int")
        if "Rvec" not in val:
            val["Rvec"] = cv2.Rodrigues(val["R"])[0]
        write(extri, f"R_{key}", val["Rvec"])
        write(extri, f"Rot_{key}", val["R"])
        write(extri, f"T_{key}", val["T"])
    intri.close()
    extri.close()


def _six_decimals() -> tuple[np.ndarray, np.ndarray]:
    """The known camera's pose rounded as EasyMocap writes it (what the file then means)."""
    rvec, tvec = _pose_m()
    return np.round(rvec, 6), np.round(tvec, 6)


def test_files_written_by_easymocap(tmp_path):
    rvec, tvec = _six_decimals()
    rot = cv2.Rodrigues(rvec)[0]
    camera = {
        "01": {"K": K, "dist": DIST5[None], "H": 1080, "W": 1920, "R": rot,
               "Rvec": rvec[:, None], "T": tvec[:, None]},
        "02": {"K": K, "dist": DIST5[None], "R": rot, "T": tvec[:, None] + [[0.5], [0], [0]]},
    }  # fmt: skip
    _easymocap_write_camera(camera, tmp_path)
    assert (tmp_path / "intri.yml").read_bytes().startswith(b"%YAML:1.0\r\n---\r\n")
    for path in (tmp_path / "intri.yml", tmp_path / "extri.yml", tmp_path):
        assert format_of(path).name == "easymocap"
        cams, meta = read_calibration(path)
        assert list(cams) == ["01", "02"] and meta["source"] == "easymocap"
        assert cams["01"].size == (1920, 1080) and cams["02"].size is None
        np.testing.assert_allclose(cams["01"].rotation, rvec, atol=1e-12)
        np.testing.assert_allclose(cams["01"].translation, tvec * 1000, atol=1e-9)
        np.testing.assert_allclose(cams["02"].translation, (tvec + [0.5, 0, 0]) * 1000, atol=1e-9)
        np.testing.assert_allclose(cams["01"].center, CENTRE_M * 1000, atol=5e-3)  # 6 decimals
        np.testing.assert_allclose(
            cams["01"].project(POINTS_M * 1000), _peer_pixels(rvec, tvec, K, DIST5), atol=1e-6
        )


def test_easymocap_files_written_with_cv2_filestorage(tmp_path):
    """Written by OpenCV itself (full precision), with EasyMocap's keys; only ``Rot_`` and
    ``D_`` for the second camera, which EasyMocap's reader also takes; 4 distortions."""
    rvec, tvec = _pose_m()
    intri = cv2.FileStorage(str(tmp_path / "intri.yml"), cv2.FILE_STORAGE_WRITE)
    extri = cv2.FileStorage(str(tmp_path / "extri.yml"), cv2.FILE_STORAGE_WRITE)
    for fs in (intri, extri):
        fs.startWriteStruct("names", cv2.FileNode_SEQ)
        for name in ("left", "right"):
            fs.write("", name)
        fs.endWriteStruct()
    intri.write("K_left", K)
    intri.write("dist_left", DIST5[None])
    intri.write("H_left", 1080)
    intri.write("W_left", 1920)
    intri.write("K_right", K)
    intri.write("D_right", DIST5[None, :4])
    extri.write("R_left", rvec[:, None])
    extri.write("Rot_left", cv2.Rodrigues(rvec)[0])
    extri.write("T_left", tvec[:, None])
    extri.write("Rot_right", cv2.Rodrigues(rvec)[0])
    extri.write("T_right", tvec[:, None])
    intri.release()
    extri.release()
    cams, _ = read_calibration(tmp_path / "extri.yml")
    assert list(cams) == ["left", "right"]
    assert cams["left"].size == (1920, 1080)
    _assert_known_camera(cams["left"], DIST5)
    _assert_known_camera(cams["right"], DIST5[:4])


# --- Dispatch and malformed files ----------------------------------------------------------


def test_dispatch_leaves_anipose_to_anipose(tmp_path, qualisys):
    """Files :func:`write_toml` writes, and anipose tables with 4 distortions, stay anipose."""
    path = write_toml(tmp_path / "calibration.toml", qualisys, {"adjusted": True, "error": 0.4})
    assert format_of(path).name == "anipose"
    _assert_same(qualisys, list(read_calibration(path)[0].values()))
    four = tmp_path / "four.toml"
    table = {**qualisys[0].to_dict(), "distortions": [0.1, 0.0, 0.0, 0.0]}
    four.write_text(tomli_w.dumps({"cam_0": table, "metadata": {}}))
    assert format_of(four).name == "anipose"
    assert format_of(QCA).name == "qualisys"


def test_malformed_peer_files(tmp_path, qualisys):
    path = tmp_path / "camera_array.toml"
    path.write_text("[cameras.0\ncam_id = 0")
    _one_line_error(lambda: read_calibration(path), r"camera_array.toml: not a readable caliscope")
    rvec, tvec = _pose_m()
    table = _caliscope_table(0, rvec.tolist(), tvec)
    for bad, match in (
        ({"matrix": [[1.0, 0.0], [0.0, 1.0]]}, "camera 0: its matrix has 4 values, 9 expected"),
        ({"distortions": ["a", 0, 0, 0, 0]}, "camera 0: its distortions is not numeric"),
        ({"size": [1920.5, 1080]}, "is not whole pixels"),
        ({"fisheye": True}, "camera 0: a fisheye camera"),
        ({"matrix": (-K).tolist()}, "focal lengths must be positive"),
    ):
        path.write_text(tomli_w.dumps({"cameras": {"0": {**table, **bad}}}))
        _one_line_error(lambda: read_calibration(path), match)  # noqa: B023
    path.write_text(tomli_w.dumps({"cameras": {"0": {"cam_id": 0, "size": [640, 480]}}}))
    _one_line_error(lambda: read_calibration(path), "no calibrated camera")

    p2s = tmp_path / "Calib.toml"
    _pose2sim_toml_write(p2s, ["a", "b"], [[1920, 1080]] * 2, [DIST5] * 2, [K] * 2,
                         [rvec] * 2, [tvec] * 2)  # fmt: skip
    text = p2s.read_text()
    p2s.write_text(text.replace("translation", "shift", 1))
    _one_line_error(lambda: read_calibration(p2s), r"camera \[a\]: it has no translation")
    p2s.write_text(text.replace('name = "b"', 'name = "a"'))
    _one_line_error(lambda: read_calibration(p2s), "two cameras are named 'a'")

    yml = tmp_path / "intri.yml"
    _easymocap_write_camera({"c1": {"K": K, "dist": DIST5[None], "R": np.eye(3),
                                    "T": np.zeros((3, 1))}}, tmp_path)  # fmt: skip
    (tmp_path / "extri.yml").unlink()
    _one_line_error(lambda: read_calibration(yml), r"extri.yml not found")
    _one_line_error(lambda: read_calibration(tmp_path), "calibration file not found")
    (tmp_path / "extri.yml").write_text("%YAML:1.0\n---\nnames: [ 'c1'\n  R_c1: {{")
    _one_line_error(lambda: read_calibration(yml), "extri.yml: not a readable OpenCV YAML")
    (tmp_path / "extri.yml").write_text('%YAML:1.0\n---\nnames:\n  - "c1"\n')
    _one_line_error(lambda: read_calibration(yml), r"extri.yml: R_c1 or Rot_c1 missing")
    (tmp_path / "extri.yml").write_text('%YAML:1.0\n---\nnames:\n  - "c1"\nR_c1: [1, 2]\n')
    _one_line_error(lambda: read_calibration(yml), r"extri.yml: R_c1 is not an opencv-matrix")
    yml.write_text("%YAML:1.0\n---\nK_c1: 3\n")
    _one_line_error(lambda: read_calibration(yml), "intri.yml: no 'names' list")


def test_writing_what_cannot_be_written(tmp_path, qualisys):
    unsized = [replace(qualisys[0], size=None)]
    for name in ("camera_array.toml", "Calib.toml"):
        _one_line_error(lambda: write_calibration(tmp_path / name, unsized), "no image size")  # noqa: B023
    _one_line_error(
        lambda: write_calibration(tmp_path / "x.qca.txt", qualisys), "does not write it"
    )
    _one_line_error(
        lambda: write_calibration(tmp_path / "a.toml", qualisys, format="easymocap"),
        "reads the easymocap format but does not write it",
    )
    _one_line_error(
        lambda: write_calibration(tmp_path / "a.toml", qualisys, format="vicon"),
        "unknown calibration format 'vicon'",
    )
    _one_line_error(lambda: write_calibration(tmp_path / "a.json", qualisys), "pass format=")
    twins = [qualisys[0], replace(qualisys[1], name="cam01")]
    _one_line_error(lambda: write_calibration(tmp_path / "a.toml", twins), "two cameras are named")
    _one_line_error(
        lambda: write_calibration(tmp_path / "camera_array.toml", qualisys, {"note": None}),
        "cannot be written as TOML",
    )
    _one_line_error(
        lambda: write_calibration(tmp_path / "Calib.toml", [replace(qualisys[0], name="metadata")]),
        "a table Pose2Sim skips",
    )


def test_written_files_mean_the_same_to_the_peers(tmp_path, qualisys):
    """Read back as the peers read them (Pose2Sim's ``computeP``, caliscope's
    ``CameraArray.from_toml``), the written files project a point (metres) to the pixel
    mocapflow's camera gives it (mm)."""
    import tomllib

    point_mm = np.array([-943.0, -22.0, 900.0])
    ours = np.stack([c.project(point_mm[None])[0] for c in qualisys])
    # Pose2Sim: P = K [R|T] per table other than metadata, in file order; no distortion.
    doc = tomllib.loads(write_calibration(tmp_path / "Calib.toml", qualisys).read_text())
    keys = [k for k in doc if k not in ("metadata", "capture_volume", "charuco", "checkerboard")]
    for cam, key in zip(qualisys, keys, strict=True):
        t = doc[key]
        rt = np.hstack([cv2.Rodrigues(np.array(t["rotation"]))[0], np.c_[t["translation"]]])
        x = np.array(t["matrix"]) @ rt @ np.append(point_mm / 1000, 1)
        undistorted = cam.matrix @ cam.to_camera(point_mm)
        np.testing.assert_allclose(x[:2] / x[2], undistorted[:2] / undistorted[2], atol=1e-9)
    # caliscope: cameras by their integer key, rotation from Rodrigues, projectPoints.
    doc = tomllib.loads(write_calibration(tmp_path / "camera_array.toml", qualisys).read_text())
    for i, (cam_id, t) in enumerate(sorted((int(k), t) for k, t in doc["cameras"].items())):
        assert cam_id == i and t["size"] == list(qualisys[i].size)
        rot = cv2.Rodrigues(np.array(t["rotation"]))[0]
        uv, _ = cv2.projectPoints(point_mm[None] / 1000, cv2.Rodrigues(rot)[0],
                                  np.array(t["translation"]), np.array(t["matrix"]),
                                  np.array(t["distortions"]))  # fmt: skip
        np.testing.assert_allclose(uv.ravel(), ours[i], atol=1e-9)
