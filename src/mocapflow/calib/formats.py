"""Calibration files: mocapflow's own and those of other tools.

Formats, tried in this order by :func:`read_calibration` (see :data:`BUILTIN`):

``qualisys``   Qualisys ``.qca.txt`` (read).
``easymocap``  EasyMocap's ``intri.yml`` + ``extri.yml`` (read), in metres.
``caliscope``  caliscope's ``camera_array.toml`` (read and write), in metres.
``pose2sim``   Pose2Sim's ``Calib*.toml`` (read and write), in metres.
``anipose``    anipose/FreeMoCap TOML (read and write), in the world unit (mm); it
               takes any file the others do not claim.

The anipose TOML holds one ``[cam_N]`` table per camera with ``name``, ``size``,
``matrix``, ``distortions`` (k1 k2 p1 p2 k3), ``rotation`` (a Rodrigues vector,
world to camera) and ``translation``, plus a ``[metadata]`` table. Cameras are
matched to views by ``name``, never by position. Every reader returns cameras in
mm, world to camera, OpenCV's pinhole model; :func:`write_calibration` writes any
writable format, converting back to the format's own unit.
"""

from __future__ import annotations

import logging
import re
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import tomli_w

from .. import registry
from ..errors import CalibrationError
from .camera import Camera

__all__ = [
    "BUILTIN",
    "ENTRY_POINT_GROUP",
    "SIZE_SLACK",
    "CalibrationFormat",
    "calibration_formats",
    "format_of",
    "check_camera",
    "fit_to_videos",
    "read_caliscope",
    "read_calibration",
    "read_easymocap",
    "read_pose2sim",
    "read_qca",
    "read_toml",
    "up_axis",
    "write_caliscope",
    "write_calibration",
    "write_pose2sim",
    "write_toml",
]

logger = logging.getLogger(__name__)

#: Millimetres (mocapflow's world unit) per metre (caliscope's, Pose2Sim's and EasyMocap's).
MM_PER_M = 1000.0

#: A video and a calibration whose sizes differ by less than this many pixels on
#: each side are one image: encoders pad frames to whole 16-pixel macroblocks
#: (1080 rows are coded as 1088), and that padding lies at the bottom and right,
#: where it moves no pixel.
SIZE_SLACK = 16
#: Aspect ratios this close (relative) count as the same: a binned or downscaled video.
ASPECT_SLACK = 0.01


def up_axis(metadata: dict) -> str | None:
    """Return the world's up axis a calibration declares (``+z`` for Qualisys), or None."""
    if metadata.get("source") == "qualisys":
        return "+z"
    axis = metadata.get("up_axis")
    return axis if axis in ("+x", "-x", "+y", "-y", "+z", "-z") else None


def check_camera(cam: Camera, path: str | Path) -> None:
    """Refuse a camera with non-finite or impossible values, naming the file and the camera.

    Raises
    ------
    CalibrationError
        If a value is NaN or infinite, a focal length or the image size is not
        positive, or the intrinsic matrix is not upper triangular with a last row
        of ``0 0 1``.

    """
    where = f"{path}: camera {cam.name}"
    for field_name in ("matrix", "distortions", "rotation", "translation"):
        value = np.asarray(getattr(cam, field_name), float)
        if not np.isfinite(value).all():
            raise CalibrationError(
                f"{where}: its {field_name} holds NaN or infinite values; recalibrate"
            )
    m = np.asarray(cam.matrix, float)
    if m[0, 0] <= 0 or m[1, 1] <= 0:
        raise CalibrationError(
            f"{where}: focal lengths must be positive, got {m[0, 0]:g}, {m[1, 1]:g}"
        )
    if not np.allclose(m[2], [0, 0, 1]) or m[1, 0] != 0:
        raise CalibrationError(f"{where}: its matrix is not an intrinsic matrix (last row 0 0 1)")
    if cam.size is not None and min(cam.size) <= 0:
        raise CalibrationError(f"{where}: its image size {cam.size} is not positive")


def _check_rotation(rot: np.ndarray, where: str) -> None:
    if not np.isfinite(rot).all() or not np.allclose(rot @ rot.T, np.eye(3), atol=1e-3):
        raise CalibrationError(f"{where}: its rotation is not a rotation matrix; recalibrate")
    if np.linalg.det(rot) < 0:
        raise CalibrationError(f"{where}: its rotation is a reflection (determinant -1)")


def write_toml(path: str | Path, cameras: list[Camera], metadata: dict | None = None) -> Path:
    """Write cameras as an anipose/FreeMoCap calibration TOML.

    Parameters
    ----------
    path : str or pathlib.Path
        The file to write.
    cameras : list of Camera
        The cameras, written as ``[cam_00]``, ``[cam_01]``, ... (keys that sort as
        text in camera order, since anipose's loader sorts them so).
    metadata : dict, optional
        The ``[metadata]`` table.

    Returns
    -------
    pathlib.Path
        The file written.

    """
    width = max(2, len(str(len(cameras) - 1)))  # cam_00, cam_01...: text order = camera order
    doc: dict = {f"cam_{i:0{width}d}": cam.to_dict() for i, cam in enumerate(cameras)}
    doc["metadata"] = dict(metadata or {})
    path = Path(path)
    path.write_text(tomli_w.dumps(doc))
    return path


def read_toml(path: str | Path) -> tuple[dict[str, Camera], dict]:
    """Read an anipose/FreeMoCap calibration TOML.

    Parameters
    ----------
    path : str or pathlib.Path
        The file.

    Returns
    -------
    cameras : dict of str to Camera
        Cameras by ``name``.
    metadata : dict
        The ``[metadata]`` table (empty if absent).

    """
    doc = tomllib.loads(Path(path).read_text())
    cameras = {}
    tables: dict[str, str] = {}  # camera name -> the table that holds it
    for key, table in doc.items():
        if key == "metadata" or not isinstance(table, dict) or "matrix" not in table:
            continue
        cam = Camera.from_dict({"name": key, **table})
        if cam.name in tables:
            raise CalibrationError(
                f"{path}: cameras [{tables[cam.name]}] and [{key}] are both named "
                f"{cam.name!r}; cameras are matched to views by name, so give each the name "
                "of its own video (the file's stem)"
            )
        tables[cam.name] = key
        cameras[cam.name] = cam
    return cameras, dict(doc.get("metadata", {}))


def read_qca(path: str | Path) -> dict[str, Camera]:
    """Read a Qualisys ``.qca.txt`` calibration (as Pose2Sim reads it), in mm.

    Qualisys stores each camera's position (mm) and a rotation whose rows are the
    camera's axes in the world, with y up and z backwards; OpenCV's camera looks
    along +z with y down, a half turn about x. Intrinsics are in sub-pixel units
    of 1/64 pixel on the full sensor, offset by the video field of view.

    Parameters
    ----------
    path : str or pathlib.Path
        The ``.qca.txt`` file.

    Returns
    -------
    dict of str to Camera
        Cameras by their ``serial`` (the view name), in natural order.

    """
    import xml.etree.ElementTree as ET

    from ..recording import natural_key

    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError) as exc:
        raise CalibrationError(f"{path}: not a readable Qualisys .qca.txt file ({exc})") from exc
    cameras = {}
    flip = np.diag([1.0, -1.0, -1.0])
    for tag in root.findall("cameras/camera"):
        try:
            name = tag.attrib["serial"]
            fov = tag.find("fov_video").attrib
            tr = tag.find("transform").attrib
            intr = tag.find("intrinsic").attrib
            left, top = float(fov["left"]), float(fov["top"])
            size = (
                int(float(fov["right"]) - left + 1),
                int(float(fov["bottom"]) - top + 1),
            )
            rows = np.array([[float(tr[f"r{i}{j}"]) for j in (1, 2, 3)] for i in (1, 2, 3)])
            _check_rotation(rows, f"{path}: camera {name}")
            position = np.array([float(tr[k]) for k in "xyz"])
            rot = flip @ rows
            matrix = np.array(
                [
                    [
                        float(intr["focalLengthU"]) / 64,
                        0.0,
                        float(intr["centerPointU"]) / 64 - left,
                    ],
                    [0.0, float(intr["focalLengthV"]) / 64, float(intr["centerPointV"]) / 64 - top],
                    [0.0, 0.0, 1.0],
                ]
            )
            keys = ("radialDistortion1", "radialDistortion2", "tangentalDistortion1")
            dist = [float(intr[k]) / 64 for k in (*keys, "tangentalDistortion2")] + [0.0]
        except (KeyError, AttributeError, ValueError) as exc:
            raise CalibrationError(f"{path}: camera entry incomplete ({exc})") from exc
        if name in cameras:
            raise CalibrationError(
                f"{path}: two cameras have the serial {name!r}; cameras are matched to views "
                "by serial, so give each the name of its own video (the file's stem)"
            )
        cameras[name] = Camera(
            name, size, matrix, np.array(dist), cv2.Rodrigues(rot)[0].ravel(), -rot @ position
        )
        check_camera(cameras[name], path)
    if not cameras:
        raise CalibrationError(f"{path}: no <camera> entries found")
    return {k: cameras[k] for k in sorted(cameras, key=natural_key)}


# --- Shared helpers for the other tools' files ------------------------------------------

#: Files larger than this are not opened to look inside when recognising a format.
_PEEK_LIMIT = 64 * 2**20


def _peek_toml(path: Path) -> dict | None:
    """Return a ``.toml`` file's document for a format's ``matches``, or None (never raises)."""
    try:
        if path.suffix.lower() != ".toml" or not path.is_file():
            return None
        if path.stat().st_size > _PEEK_LIMIT:
            return None
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None


def _load_toml(path: Path, what: str, fix: str) -> dict:
    """Parse a TOML calibration, turning any failure into one-line :class:`CalibrationError`."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise CalibrationError(f"{path}: not a readable {what} ({exc}); {fix}") from exc


def _array(value: object, count: int | tuple[int, ...], what: str, where: str) -> np.ndarray:
    """Return ``value`` as a float array of ``count`` values (any of them, for a tuple).

    Raises
    ------
    CalibrationError
        If it is missing, not numeric, or of another length.

    """
    counts = (count,) if isinstance(count, int) else count
    if value is None:
        raise CalibrationError(f"{where}: it has no {what}; add it, or recalibrate")
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise CalibrationError(f"{where}: its {what} is not numeric ({exc}); fix the file") from exc
    if arr.size not in counts:
        wanted = " or ".join(str(c) for c in counts)
        raise CalibrationError(
            f"{where}: its {what} has {arr.size} values, {wanted} expected; fix the file"
        )
    return arr


def _rotation_vector(value: object, where: str) -> np.ndarray:
    """Return a Rodrigues vector from a Rodrigues vector or a 3x3 rotation matrix."""
    rot = _array(value, (3, 9), "rotation", where)
    if rot.size == 9:
        rot = rot.reshape(3, 3)
        _check_rotation(rot, where)
        return cv2.Rodrigues(rot)[0].ravel()
    return rot.ravel()


def _distortions(value: object, where: str) -> np.ndarray:
    """Return ``(k1, k2, p1, p2, k3)`` from 4 or 5 values (OpenCV's order; k3 = 0 if absent)."""
    given = _array(value, (4, 5), "distortions", where).ravel()
    dist = np.zeros(5)
    dist[: given.size] = given
    return dist


def _image_size(value: object, where: str) -> tuple[int, int] | None:
    """Return ``(width, height)`` from a 2-list of whole numbers (floats like 1088.0 too)."""
    if value is None:
        return None
    size = _array(value, 2, "size", where).ravel()
    if not np.all(size == np.round(size)):
        raise CalibrationError(
            f"{where}: its size {size.tolist()} is not whole pixels; write it as [width, height]"
        )
    return int(size[0]), int(size[1])


def _unique(cameras: dict[str, Camera], cam: Camera, path: Path, where: str) -> None:
    """Add ``cam`` to ``cameras``, refusing a second camera of the same name."""
    if cam.name in cameras:
        raise CalibrationError(
            f"{path}: two cameras are named {cam.name!r} ({where}); cameras are matched to "
            "views by name, so give each the name of its own video (the file's stem)"
        )
    check_camera(cam, path)
    cameras[cam.name] = cam


def _need_sizes(cameras: list[Camera], path: Path, tool: str) -> None:
    for cam in cameras:
        if cam.size is None:
            raise CalibrationError(
                f"{path}: camera {cam.name} has no image size, which {tool} needs; read the "
                "calibration from a file that records it, or recalibrate"
            )


def _dump_toml(path: Path, doc: dict) -> Path:
    """Write a TOML document, refusing values TOML cannot hold (None, objects) in one line."""
    try:
        text = tomli_w.dumps(doc)
    except TypeError as exc:
        raise CalibrationError(
            f"{path}: cannot be written as TOML ({exc}); pass metadata of strings, numbers, "
            "booleans, lists and tables only"
        ) from exc
    path.write_text(text, encoding="utf-8")
    return path


def _pose_in_metres(cam: Camera) -> tuple[list[float], list[float]]:
    """Return a camera's Rodrigues rotation and its translation in metres, as lists."""
    rotation = np.asarray(cam.rotation, np.float64).ravel().tolist()
    translation = (np.asarray(cam.translation, np.float64).ravel() / MM_PER_M).tolist()
    return rotation, translation


# --- caliscope: camera_array.toml ------------------------------------------------------
#
# From caliscope's source (github.com/mprib/caliscope), ``CameraArray.to_toml`` and
# ``from_toml`` in src/caliscope/cameras/camera_array.py (before March 2026:
# save_camera_array / load_camera_array in src/caliscope/persistence.py): one table
# ``[cameras.<id>]`` per camera, keyed by its integer id, holding ``cam_id`` (``port``
# before February 2026), ``size`` [width, height], ``rotation_count`` (quarter turns the
# GUI shows the frames turned by; detection runs on the unturned frames), ``error``,
# ``matrix``, ``distortions`` (5, OpenCV), ``translation``, ``rotation`` (Rodrigues; a
# 3x3 matrix in older files), ``exposure``, ``grid_count``, ``ignore``, ``fisheye``.
# Keys of uncalibrated values are left out. Rotation and translation map world to camera
# (``CameraData.extrinsics_to_vector`` feeds them to cv2.projectPoints); lengths are in
# metres (caliscope's charuco board sizes are converted from cm to m). Releases before
# December 2025 kept the same tables as ``[cam_<port>]`` in config.toml. caliscope also
# exports ``camera_array_aniposelib.toml`` (``to_aniposelib_toml``): anipose's tables
# ``[cam_<id>]``, in metres, known only by that name.

_CALISCOPE_LEGACY = re.compile(r"cam_(\d+)")
_CALISCOPE_NAME = re.compile(r"(?:cam|port)_(\d+)")
#: caliscope's export for aniposelib (``CameraArray.to_aniposelib_toml``): anipose's
#: ``[cam_N]`` tables (name ``cam_N``, ``fisheye``), in caliscope's metres.
_CALISCOPE_ANIPOSELIB = "camera_array_aniposelib.toml"


def _caliscope_tables(doc: dict, name: str) -> tuple[list[tuple[int, dict]], str] | None:
    """Return caliscope's camera tables as ``(id, table)`` and the id key, or None.

    ``name`` is the file's name: caliscope's aniposelib export,
    ``camera_array_aniposelib.toml``, is known by it alone (anipose's tables, in metres).
    """
    cams = doc.get("cameras")
    if isinstance(cams, dict) and all(
        str(k).isdigit() and isinstance(t, dict) for k, t in cams.items()
    ):
        key = "port" if any("port" in t and "cam_id" not in t for t in cams.values()) else "cam"
        return sorted((int(k), t) for k, t in cams.items()), key
    export = name.lower() == _CALISCOPE_ANIPOSELIB
    legacy = [
        (int(m[1]), t)
        for k, t in doc.items()
        if (m := _CALISCOPE_LEGACY.fullmatch(k))
        and isinstance(t, dict)
        and ("port" in t or (export and "matrix" in t))
    ]
    if not legacy:
        return None
    return sorted(legacy, key=lambda item: item[0]), "cam" if export else "port"


def _is_caliscope(path: Path) -> bool:
    doc = _peek_toml(path)
    if doc is None:  # an unreadable camera_array.toml is reported by caliscope's reader
        return path.name.lower() in ("camera_array.toml", _CALISCOPE_ANIPOSELIB) and path.is_file()
    return _caliscope_tables(doc, path.name) is not None


def read_caliscope(path: str | Path) -> tuple[dict[str, Camera], dict]:
    """Read a caliscope ``camera_array.toml`` (or an older ``config.toml``, or its export).

    Besides ``camera_array.toml``, this reads caliscope's ``config.toml`` from before
    December 2025 and its aniposelib export ``camera_array_aniposelib.toml`` (anipose's
    layout, but in metres, so known by its name).

    Cameras are named by their ``name`` key where the file has one (mocapflow writes
    it), else ``cam_<id>`` (``port_<id>`` in files from before February 2026, which
    used ports), the stems of the videos caliscope records. Cameras marked ``ignore``
    or not yet calibrated (no matrix, rotation or translation) are left out, with a
    warning. Translations are converted from metres to mm.

    Parameters
    ----------
    path : str or pathlib.Path
        The file.

    Returns
    -------
    cameras : dict of str to Camera
        Cameras by name, in id order.
    metadata : dict
        The file's ``[metadata]`` table (mocapflow writes one), with ``source``
        ``caliscope`` unless it names another.

    Raises
    ------
    CalibrationError
        If the file is not caliscope's, a camera is fisheye or has impossible values,
        two cameras share a name, or no camera is calibrated.

    """
    path = Path(path)
    fix = "export the camera array from caliscope again"
    doc = _load_toml(path, "caliscope camera_array.toml", fix)
    found = _caliscope_tables(doc, path.name)
    if found is None:
        raise CalibrationError(
            f"{path}: no caliscope camera tables ([cameras.N] with cam_id, size, matrix, ...) "
            f"found; {fix}, or pass an anipose TOML under another name"
        )
    tables, prefix = found
    cameras: dict[str, Camera] = {}
    skipped = []
    for cam_id, table in tables:
        where = f"{path}: camera {cam_id}"
        if table.get("ignore", False):
            skipped.append(f"{cam_id} (ignored in caliscope)")
            continue
        if any(table.get(k) is None for k in ("matrix", "rotation", "translation")):
            skipped.append(f"{cam_id} (not calibrated)")
            continue
        if table.get("fisheye", False):
            raise CalibrationError(
                f"{where}: a fisheye camera, which mocapflow's pinhole model cannot use; "
                "calibrate it in caliscope with the standard model"
            )
        cam = Camera(
            name=str(table.get("name") or f"{prefix}_{cam_id}"),
            size=_image_size(table.get("size"), where),
            matrix=_array(table.get("matrix"), 9, "matrix", where).reshape(3, 3),
            distortions=_distortions(table.get("distortions", [0.0] * 5), where),
            rotation=_rotation_vector(table.get("rotation"), where),
            translation=_array(table.get("translation"), 3, "translation", where).ravel()
            * MM_PER_M,
        )
        _unique(cameras, cam, path, f"camera {cam_id}")
    if skipped:
        logger.warning("%s: cameras left out: %s", path, ", ".join(skipped))
    if not cameras:
        raise CalibrationError(
            f"{path}: no calibrated camera (every one is ignored or lacks its matrix, "
            "rotation or translation); finish the calibration in caliscope"
        )
    meta = dict(doc.get("metadata") or {})
    meta.setdefault("source", "caliscope")
    return cameras, meta


def _caliscope_ids(cameras: list[Camera]) -> list[int]:
    """Give each camera a caliscope id: N for a camera named ``cam_N`` or ``port_N``.

    Other cameras (and a second camera claiming an id) take the smallest ids left,
    in order.
    """
    ids: list[int | None] = [None] * len(cameras)
    used: set[int] = set()
    for i, cam in enumerate(cameras):
        m = _CALISCOPE_NAME.fullmatch(cam.name)
        if m and int(m[1]) not in used:
            ids[i] = int(m[1])
            used.add(ids[i])
    free = (n for n in range(len(cameras) + len(used) + 1) if n not in used)
    return [i if i is not None else next(free) for i in ids]


def write_caliscope(path: str | Path, cameras: list[Camera], metadata: dict | None = None) -> Path:
    """Write cameras as a caliscope ``camera_array.toml``, in metres.

    Each camera is a ``[cameras.<id>]`` table as caliscope writes it (``cam_id``,
    ``size``, ``rotation_count`` 0, ``matrix``, ``distortions``, ``translation`` in
    metres, ``rotation`` as a Rodrigues vector, ``fisheye`` and ``ignore`` false),
    plus a ``name`` key that caliscope ignores and :func:`read_caliscope` reads.
    A camera named ``cam_N`` or ``port_N`` gets id N; the others the smallest ids
    left, in order. ``metadata``, if any, goes in a ``[metadata]`` table.

    Parameters
    ----------
    path : str or pathlib.Path
        The file to write.
    cameras : list of Camera
        The cameras; each needs its image size.
    metadata : dict, optional
        Written as ``[metadata]`` (caliscope ignores it).

    Returns
    -------
    pathlib.Path
        The file written.

    Raises
    ------
    CalibrationError
        If a camera has no image size.

    """
    path = Path(path)
    _need_sizes(cameras, path, "caliscope")
    tables = {}
    for cam_id, cam in sorted(zip(_caliscope_ids(cameras), cameras, strict=True)):
        rotation, translation = _pose_in_metres(cam)
        tables[str(cam_id)] = {
            "cam_id": cam_id,
            "name": cam.name,
            "size": [int(cam.size[0]), int(cam.size[1])],
            "rotation_count": 0,
            "matrix": np.asarray(cam.matrix, np.float64).tolist(),
            "distortions": np.asarray(cam.distortions, np.float64).ravel().tolist(),
            "translation": translation,
            "rotation": rotation,
            "ignore": False,
            "fisheye": False,
        }
    doc: dict = {"cameras": tables}
    if metadata:
        doc["metadata"] = dict(metadata)
    return _dump_toml(path, doc)


# --- Pose2Sim: Calib*.toml ---------------------------------------------------------------
#
# From Pose2Sim's source (github.com/perfanalytics/pose2sim), ``toml_write`` in
# Pose2Sim/calibration.py and ``retrieve_calib_params`` / ``computeP`` in
# Pose2Sim/common.py: one table per camera, named by the camera, holding ``name``,
# ``size`` [width, height] (floats such as 1088.0 in converted files), ``matrix``,
# ``distortions`` (4: k1 k2 p1 p2), ``rotation`` (Rodrigues) and ``translation``, world
# to camera (P = K [R|T]), in metres, and ``fisheye = false``; then ``[metadata]`` with
# ``adjusted = false`` and ``error = 0.0``. Pose2Sim skips the tables ``metadata``,
# ``capture_volume``, ``charuco`` and ``checkerboard``, and names a camera by its
# ``name`` key, else its table. It writes files ``Calib_<method>.toml``.
#
# The anipose TOML has the same tables, but never ``fisheye = false`` (aniposelib
# writes ``fisheye`` only for fisheye cameras) and 5 distortions: a file is Pose2Sim's
# when every camera table says ``fisheye = false`` and has 4 distortions.

_POSE2SIM_SKIP = ("metadata", "capture_volume", "charuco", "checkerboard")


def _pose2sim_tables(doc: dict) -> list[tuple[str, dict]]:
    return [(k, t) for k, t in doc.items() if k not in _POSE2SIM_SKIP and isinstance(t, dict)]


def _is_pose2sim(path: Path) -> bool:
    doc = _peek_toml(path)
    if doc is None:
        return False
    tables = _pose2sim_tables(doc)
    return bool(tables) and all(
        "matrix" in t
        and t.get("fisheye") is False
        and isinstance(t.get("distortions"), list)
        and len(t["distortions"]) == 4
        for _, t in tables
    )


def read_pose2sim(path: str | Path) -> tuple[dict[str, Camera], dict]:
    """Read a Pose2Sim ``Calib*.toml``, converting translations from metres to mm.

    Parameters
    ----------
    path : str or pathlib.Path
        The file.

    Returns
    -------
    cameras : dict of str to Camera
        Cameras by their ``name`` (else their table's name), in file order, with
        ``k3 = 0``.
    metadata : dict
        The ``[metadata]`` table (``adjusted``, ``error``), with ``source``
        ``pose2sim`` unless it names another.

    Raises
    ------
    CalibrationError
        If the file cannot be parsed, a camera table lacks a value or is fisheye,
        two cameras share a name, or a value is impossible.

    """
    path = Path(path)
    fix = "calibrate again with Pose2Sim, or fix the file"
    doc = _load_toml(path, "Pose2Sim calibration TOML", fix)
    tables = _pose2sim_tables(doc)
    if not tables:
        raise CalibrationError(f"{path}: no camera tables found; {fix}")
    cameras: dict[str, Camera] = {}
    for key, table in tables:
        where = f"{path}: camera [{key}]"
        if table.get("fisheye", False):
            raise CalibrationError(
                f"{where}: a fisheye camera, which mocapflow's pinhole model cannot use; "
                "calibrate it with the pinhole model"
            )
        cam = Camera(
            name=str(table.get("name") or key),
            size=_image_size(table.get("size"), where),
            matrix=_array(table.get("matrix"), 9, "matrix", where).reshape(3, 3),
            distortions=_distortions(table.get("distortions"), where),
            rotation=_rotation_vector(table.get("rotation"), where),
            translation=_array(table.get("translation"), 3, "translation", where).ravel()
            * MM_PER_M,
        )
        _unique(cameras, cam, path, f"table [{key}]")
    meta = dict(doc.get("metadata") or {})
    meta.setdefault("source", "pose2sim")
    return cameras, meta


def write_pose2sim(path: str | Path, cameras: list[Camera], metadata: dict | None = None) -> Path:
    """Write cameras as a Pose2Sim ``Calib.toml``, in metres.

    Each camera is a table named by the camera, as Pose2Sim's ``toml_write`` writes
    it; ``[metadata]`` holds ``adjusted = false`` and ``error = 0.0`` (Pose2Sim's
    own values) and whatever ``metadata`` adds.

    Pose2Sim's model has 4 distortion coefficients: a camera with ``k3 != 0`` is
    refused rather than written with its k3 dropped, which would move its pixels
    (mocapflow calibrates with k3 fixed at 0 unless told otherwise).

    Parameters
    ----------
    path : str or pathlib.Path
        The file to write; Pose2Sim finds files named ``Calib*.toml``.
    cameras : list of Camera
        The cameras; each needs its image size and ``k3 = 0``.
    metadata : dict, optional
        More ``[metadata]`` keys.

    Returns
    -------
    pathlib.Path
        The file written.

    Raises
    ------
    CalibrationError
        If a camera has no image size, has ``k3 != 0``, or is named as one of the
        tables Pose2Sim skips (``metadata``, ``charuco``, ...).

    """
    path = Path(path)
    _need_sizes(cameras, path, "Pose2Sim")
    doc: dict = {}
    for cam in cameras:
        dist = np.asarray(cam.distortions, np.float64).ravel()
        if dist.size > 4 and np.any(dist[4:] != 0):
            raise CalibrationError(
                f"{path}: camera {cam.name} has k3 = {dist[4]:g}, which Pose2Sim's 4 "
                "distortion coefficients cannot hold; recalibrate with k3 fixed at 0 "
                "(mocapflow calibrate's default), or write the anipose TOML (format='anipose')"
            )
        if cam.name in _POSE2SIM_SKIP:
            raise CalibrationError(
                f"{path}: a camera is named {cam.name!r}, a table Pose2Sim skips; rename it"
            )
        rotation, translation = _pose_in_metres(cam)
        doc[cam.name] = {
            "name": cam.name,
            "size": [int(cam.size[0]), int(cam.size[1])],
            "matrix": np.asarray(cam.matrix, np.float64).tolist(),
            "distortions": dist[:4].tolist(),
            "rotation": rotation,
            "translation": translation,
            "fisheye": False,
        }
    doc["metadata"] = {"adjusted": False, "error": 0.0, **(metadata or {})}
    return _dump_toml(path, doc)


# --- EasyMocap: intri.yml and extri.yml ------------------------------------------------
#
# From EasyMocap's source (github.com/zju3dv/EasyMocap), ``write_camera`` /
# ``read_camera`` in easymocap/mytools/camera_utils.py: two OpenCV FileStorage YAML
# files in one folder. intri.yml: ``names`` (a list of camera names), and per camera
# ``K_<name>`` (3x3), ``dist_<name>`` (1x5; ``D_<name>`` is read if it is absent) and,
# optionally, ``H_<name>`` and ``W_<name>`` (image height and width). extri.yml:
# ``names``, ``R_<name>`` (Rodrigues 3x1, what read_camera uses), ``Rot_<name>`` (the
# same rotation as 3x3) and ``T_<name>`` (3x1), world to camera (P = K [R|T]), in metres
# (Pose2Sim's calib_easymocap_to_toml copies T unchanged into its metre TOML).


def _swap_part(name: str, old: str, new: str) -> str:
    i = name.lower().index(old)
    return name[:i] + new + name[i + len(old) :]


def _easymocap_files(path: Path) -> tuple[Path, Path] | None:
    """Return EasyMocap's ``(intri, extri)`` pair for a file of it or its folder, or None."""
    if path.is_dir():
        intri, extri = path / "intri.yml", path / "extri.yml"
        return (intri, extri) if intri.is_file() and extri.is_file() else None
    if path.suffix.lower() not in (".yml", ".yaml"):
        return None
    low = path.name.lower()
    if "intri" in low:
        return path, path.with_name(_swap_part(path.name, "intri", "extri"))
    if "extri" in low:
        return path.with_name(_swap_part(path.name, "extri", "intri")), path
    return None


def _open_storage(path: Path) -> cv2.FileStorage:
    fix = "write it again with EasyMocap (an OpenCV FileStorage YAML file)"
    if not path.is_file():
        raise CalibrationError(
            f"{path}: EasyMocap's {path.name} not found; EasyMocap keeps intri.yml and "
            "extri.yml side by side, so put both in one folder"
        )
    try:
        fs = cv2.FileStorage(str(path), cv2.FILE_STORAGE_READ)
    except (cv2.error, SystemError) as exc:  # OpenCV's error can surface as a SystemError
        cause = exc.__context__ if isinstance(exc, SystemError) and exc.__context__ else exc
        detail = " ".join(str(cause).split())
        detail = detail.split(" error: ", 1)[-1][:300]
        raise CalibrationError(
            f"{path}: not a readable OpenCV YAML file ({detail}); {fix}"
        ) from exc
    if not fs.isOpened():
        raise CalibrationError(f"{path}: cannot be opened as an OpenCV YAML file; {fix}")
    return fs


def _storage_names(fs: cv2.FileStorage, path: Path) -> list[str]:
    """Read EasyMocap's ``names`` list as EasyMocap does (numbers become their digits)."""
    node = fs.getNode("names")
    if node.isNone() or not node.isSeq() or node.size() == 0:
        raise CalibrationError(f"{path}: no 'names' list of cameras; write it again with EasyMocap")
    names = []
    for i in range(node.size()):
        item = node.at(i)
        name = item.string() if item.isString() else str(int(item.real()))
        if name != "none":
            names.append(name)
    return names


def _storage_matrix(
    fs: cv2.FileStorage, keys: tuple[str, ...], count: int | tuple[int, ...], path: Path
) -> np.ndarray:
    """Return the first of ``keys`` holding a matrix, with ``count`` values."""
    for key in keys:
        node = fs.getNode(key)
        if node.isNone():
            continue
        try:
            mat = node.mat()
        except cv2.error:
            mat = None
        if mat is None:
            raise CalibrationError(f"{path}: {key} is not an opencv-matrix; fix the file")
        return _array(mat, count, key, str(path))
    raise CalibrationError(f"{path}: {' or '.join(keys)} missing; write it again with EasyMocap")


def read_easymocap(path: str | Path) -> tuple[dict[str, Camera], dict]:
    """Read EasyMocap's ``intri.yml`` and ``extri.yml``, converting metres to mm.

    Parameters
    ----------
    path : str or pathlib.Path
        Either file, or the folder holding both; the other file is found beside it
        (``intri`` and ``extri`` swapped in the name).

    Returns
    -------
    cameras : dict of str to Camera
        Cameras by the names in intri.yml, in its order. The image size is known
        where intri.yml has ``H_<name>`` and ``W_<name>``, else None.
    metadata : dict
        ``source`` ``easymocap`` and both files.

    Raises
    ------
    CalibrationError
        If a file is missing or unreadable, a camera lacks a value, or a value is
        impossible.

    """
    path = Path(path)
    pair = _easymocap_files(path)
    if pair is None:
        raise CalibrationError(
            f"{path}: not an EasyMocap calibration; pass intri.yml, extri.yml or their folder"
        )
    intri_path, extri_path = pair
    intri, extri = _open_storage(intri_path), _open_storage(extri_path)
    try:
        cameras: dict[str, Camera] = {}
        for name in _storage_names(intri, intri_path):
            matrix = _storage_matrix(intri, (f"K_{name}",), 9, intri_path).reshape(3, 3)
            dist_keys = (f"dist_{name}", f"D_{name}")
            dist = _storage_matrix(intri, dist_keys, (4, 5, 8, 12, 14), intri_path).ravel()
            if np.any(dist[5:] != 0):
                raise CalibrationError(
                    f"{intri_path}: dist_{name} uses OpenCV's rational or prism model "
                    f"({dist.size} values), which mocapflow's 5-coefficient model cannot hold; "
                    "recalibrate with k1 k2 p1 p2 k3"
                )
            height, width = (intri.getNode(f"{k}_{name}") for k in "HW")
            size = None
            if not height.isNone() and not width.isNone():
                h, w = int(height.real()), int(width.real())
                size = (w, h) if w > 0 and h > 0 else None
            # R_ (Rodrigues) is what EasyMocap reads; Rot_ (3x3) holds the same rotation.
            rotation = _rotation_vector(
                _storage_matrix(extri, (f"R_{name}", f"Rot_{name}"), (3, 9), extri_path),
                f"{extri_path}: camera {name}",
            )
            translation = _storage_matrix(extri, (f"T_{name}",), 3, extri_path).ravel()
            dist = _distortions(dist[:5], f"{intri_path}: camera {name}")
            cam = Camera(name, size, matrix, dist, rotation, translation * MM_PER_M)
            _unique(cameras, cam, intri_path, "names")
    finally:
        intri.release()
        extri.release()
    meta = {"source": "easymocap", "file": str(intri_path), "extrinsics": str(extri_path)}
    return cameras, meta


# --- Reading and writing any format ------------------------------------------------------


def read_calibration(path: str | Path) -> tuple[dict[str, Camera], dict]:
    """Read cameras from any calibration format mocapflow knows (see :data:`BUILTIN`).

    The format is the first whose ``matches`` claims the file: a Qualisys
    ``.qca.txt``, EasyMocap's ``intri.yml``/``extri.yml`` (or their folder), a
    caliscope ``camera_array.toml``, a Pose2Sim ``Calib*.toml``, else an
    anipose/FreeMoCap ``.toml``.

    Parameters
    ----------
    path : str or pathlib.Path
        The calibration file (or, for EasyMocap, the folder holding its two files).

    Returns
    -------
    cameras : dict of str to Camera
        Cameras by name, in mm, world to camera.
    metadata : dict
        The TOML's ``[metadata]`` (for other formats: their source).

    Raises
    ------
    CalibrationError
        If the file is missing or cannot be parsed, two cameras share a name, or
        a camera's values are impossible (see :func:`check_camera`).

    """
    path = Path(path)
    if path.is_dir():
        # Only a format that claims a folder reads one; the anipose TOML takes files only.
        fmt = next(
            (f for f in calibration_formats().values() if f.name != "anipose" and f.matches(path)),
            None,
        )
        if fmt is not None:
            return fmt.read(path)
    if not path.is_file():
        raise CalibrationError(
            f"{path}: calibration file not found; pass an existing calibration (an anipose "
            "or FreeMoCap .toml, a Qualisys .qca.txt, a caliscope camera_array.toml, a "
            "Pose2Sim Calib.toml, or EasyMocap's intri.yml and extri.yml)"
        )
    return format_of(path).read(path)


def _format_for_path(path: Path) -> str:
    """Return the format a file's name asks for when writing.

    ``camera_array.toml`` is caliscope's; a ``.toml`` whose name starts with
    ``Calib`` (capital C: Pose2Sim's ``Calib_<method>.toml``) is Pose2Sim's; any
    other ``.toml`` (mocapflow's ``calibration.toml`` among them) is anipose's.
    """
    low = path.name.lower()
    if low == "camera_array.toml":
        return "caliscope"
    if low.endswith(".toml"):
        return "pose2sim" if path.name.startswith("Calib") else "anipose"
    if low.endswith(".qca.txt"):
        return "qualisys"
    if low.endswith((".yml", ".yaml")):
        return "easymocap"
    raise CalibrationError(
        f"{path}: cannot tell the calibration format from the file name; name it *.toml "
        "(anipose), camera_array.toml (caliscope) or Calib*.toml (Pose2Sim), or pass format="
    )


def write_calibration(
    path: str | Path,
    cameras: Iterable[Camera] | Mapping[str, Camera],
    metadata: dict | None = None,
    format: str | None = None,
) -> Path:
    """Write cameras in a calibration format chosen by name or by the file's name.

    Parameters
    ----------
    path : str or pathlib.Path
        The file to write.
    cameras : list of Camera, or dict of str to Camera
        The cameras (a dict's values), in mm, world to camera.
    metadata : dict, optional
        The calibration's metadata, where the format keeps it.
    format : str, optional
        A writable format's name (``anipose``, ``caliscope``, ``pose2sim``, or a
        registered one); it always wins. Without it the file's name decides:
        ``camera_array.toml`` is caliscope's, ``Calib*.toml`` (capital C, as
        Pose2Sim names its files) Pose2Sim's, any other ``.toml`` anipose's.

    Returns
    -------
    pathlib.Path
        The file written.

    Raises
    ------
    CalibrationError
        If the format is unknown or read only, there are no cameras, two share a
        name, a camera's values are impossible, or the format cannot hold a camera
        (no image size for caliscope and Pose2Sim, ``k3 != 0`` for Pose2Sim).

    """
    path = Path(path)
    cams = list(cameras.values() if isinstance(cameras, Mapping) else cameras)
    formats = calibration_formats()
    writable = ", ".join(n for n, f in formats.items() if f.write is not None)
    name = format or _format_for_path(path)
    fmt = formats.get(name)
    if fmt is None:
        raise CalibrationError(
            f"{path}: unknown calibration format {name!r}; use one of {writable}"
        )
    if fmt.write is None:
        raise CalibrationError(
            f"{path}: mocapflow reads the {name} format but does not write it; "
            f"write one of {writable} (pass format=)"
        )
    if not cams:
        raise CalibrationError(f"{path}: no cameras to write; pass at least one camera")
    seen: set[str] = set()
    for cam in cams:
        if cam.name in seen:
            raise CalibrationError(
                f"{path}: two cameras are named {cam.name!r}; cameras are matched to views by "
                "name, so give each the name of its own video (the file's stem)"
            )
        seen.add(cam.name)
        check_camera(cam, path)
    logger.info("Writing %d cameras to %s as %s", len(cams), path, name)
    return fmt.write(path, cams, metadata)


def _read_qualisys(path: Path) -> tuple[dict[str, Camera], dict]:
    return read_qca(path), {"source": "qualisys", "file": str(path)}


def _read_anipose(path: Path) -> tuple[dict[str, Camera], dict]:
    try:
        cameras, meta = read_toml(path)
    except CalibrationError:
        raise
    except (tomllib.TOMLDecodeError, KeyError, ValueError, TypeError) as exc:
        raise CalibrationError(f"{path}: not a valid calibration TOML ({exc})") from exc
    if not cameras:
        raise CalibrationError(f"{path}: no camera tables ([cam_N] with name and matrix) found")
    for cam in cameras.values():
        check_camera(cam, path)
    return cameras, meta


@dataclass(frozen=True)
class CalibrationFormat:
    """One kind of calibration file: how to recognise it, read it and (maybe) write it.

    Attributes
    ----------
    name : str
        The format's name.
    matches : callable
        ``matches(path) -> bool``: whether a file is of this format (its name,
        or a look inside it).
    read : callable
        ``read(path) -> (cameras by name, metadata)``; raises
        :class:`~mocapflow.errors.CalibrationError` naming the file.
    write : callable, optional
        ``write(path, cameras, metadata)``, for formats mocapflow writes.

    """

    name: str
    matches: Callable[[Path], bool]
    read: Callable[[Path], tuple[dict[str, Camera], dict]]
    write: Callable[..., Path] | None = None


#: The built-in formats, tried in this order; the anipose TOML takes any other file.
#: The peers' formats are recognised by a look inside (caliscope: a ``[cameras]``
#: table of numbered cameras, ``[cam_N]`` tables with a ``port``, or the name
#: ``camera_array_aniposelib.toml``; Pose2Sim: every
#: camera with ``fisheye = false`` and 4 distortions) or by name (EasyMocap:
#: ``intri``/``extri`` ``.yml``), so a TOML :func:`write_toml` wrote stays anipose's.
BUILTIN = {
    f.name: f
    for f in (
        CalibrationFormat(
            "qualisys", lambda p: p.name.lower().endswith(".qca.txt"), _read_qualisys
        ),
        CalibrationFormat("easymocap", lambda p: _easymocap_files(p) is not None, read_easymocap),
        CalibrationFormat("caliscope", _is_caliscope, read_caliscope, write_caliscope),
        CalibrationFormat("pose2sim", _is_pose2sim, read_pose2sim, write_pose2sim),
        CalibrationFormat("anipose", lambda p: True, _read_anipose, write_toml),
    )
}

#: Entry-point group under which packages register formats of their own (a CalibrationFormat).
ENTRY_POINT_GROUP = "mocapflow.calibrations"


def calibration_formats() -> dict[str, CalibrationFormat]:
    """Return every calibration format: the registered ones first, then the built-in ones.

    Raises
    ------
    CalibrationError
        If a registered entry point does not load to a :class:`CalibrationFormat`.

    """
    return registry.table(ENTRY_POINT_GROUP, CalibrationFormat, CalibrationError, BUILTIN, True)


def format_of(path: str | Path) -> CalibrationFormat:
    """Return the format a calibration file is read as: the first whose ``matches`` says so."""
    path = Path(path)
    return next(f for f in calibration_formats().values() if f.matches(path))


def fit_to_videos(
    cameras: dict[str, Camera], sizes: dict[str, tuple[int, int]], source: str | Path
) -> tuple[dict[str, Camera], list[str]]:
    """Check each camera's image size against its video's; scale the intrinsics of binned video.

    A camera whose size equals its video's (within :data:`SIZE_SLACK` pixels a
    side) is kept as it is. A video of another size but the same aspect ratio
    (a Qualisys camera's binning, a downscaled export) gets the camera with its
    focal lengths and principal point scaled by the ratio, and a note saying so.
    Any other size is refused. Cameras without a size (a calibration file that
    does not record one) and views of unknown size are not checked.

    Parameters
    ----------
    cameras : dict of str to Camera
        Cameras by view name.
    sizes : dict of str to (int, int)
        Each view's ``(width, height)`` as its frames are read (turned as
        players show a rotated video); views missing here are not checked.
    source : str or pathlib.Path
        The calibration file, named in messages.

    Returns
    -------
    cameras : dict of str to Camera
        The cameras to use, scaled where the video is scaled.
    notes : list of str
        One line per scaled camera, for a warning.

    Raises
    ------
    CalibrationError
        If a camera's size and its video's differ in aspect ratio; the message
        names the camera, both sizes and the fix.

    """
    out = dict(cameras)
    scaled: dict[tuple, list[str]] = {}  # (calibrated size, video size) -> cameras
    for name, cam in cameras.items():
        video = sizes.get(name)
        if cam.size is None or not video or min(video) <= 0:
            continue
        (cw, ch), (vw, vh) = cam.size, video
        if abs(vw - cw) < SIZE_SLACK and abs(vh - ch) < SIZE_SLACK:
            continue
        sx, sy = vw / cw, vh / ch
        if abs(sx / sy - 1) > ASPECT_SLACK:
            turned = (
                " (the calibration's size turned a quarter: calibrate from the frames as "
                "players show them, turned by the video's rotation)"
                if abs(vw - ch) < SIZE_SLACK and abs(vh - cw) < SIZE_SLACK
                else ""
            )
            raise CalibrationError(
                f"{source}: camera {name} was calibrated at {cw}x{ch} but its video is "
                f"{vw}x{vh}, another aspect ratio{turned}; use the calibration made for these "
                "videos, or recalibrate (mocapflow calibrate)"
            )
        out[name] = cam.scaled(sx, sy)
        scaled.setdefault((cw, ch, vw, vh), []).append(name)
    notes = []
    for (cw, ch, vw, vh), names in scaled.items():
        sx, sy = vw / cw, vh / ch
        ratio = f"{sx:.4g}" if abs(sx - sy) < 1e-9 else f"{sx:.4g} across, {sy:.4g} down"
        which = (
            f"camera {names[0]} was calibrated at {cw}x{ch} and its video is"
            if len(names) == 1
            else f"cameras {', '.join(names)} were calibrated at {cw}x{ch} and their videos are"
        )
        notes.append(
            f"{source}: {which} {vw}x{vh}, the same aspect ratio: focal lengths and principal "
            f"points scaled by {ratio} (binned or resized video); if the video was cropped "
            "instead, recalibrate"
        )
    return out, notes
