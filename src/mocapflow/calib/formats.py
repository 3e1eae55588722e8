"""Calibration files: anipose/FreeMoCap TOML (read and write) and Qualisys ``.qca.txt``.

The TOML holds one ``[cam_N]`` table per camera with ``name``, ``size``,
``matrix``, ``distortions`` (k1 k2 p1 p2 k3), ``rotation`` (a Rodrigues vector,
world to camera) and ``translation``, plus a ``[metadata]`` table. Cameras are
matched to views by ``name``, never by position.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable
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
    "read_calibration",
    "read_qca",
    "read_toml",
    "up_axis",
    "write_toml",
]

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


def read_calibration(path: str | Path) -> tuple[dict[str, Camera], dict]:
    """Read cameras from an anipose/FreeMoCap ``.toml`` or a Qualisys ``.qca.txt``.

    Parameters
    ----------
    path : str or pathlib.Path
        The calibration file.

    Returns
    -------
    cameras : dict of str to Camera
        Cameras by name.
    metadata : dict
        The TOML's ``[metadata]`` (for a ``.qca.txt``: its source).

    Raises
    ------
    CalibrationError
        If the file is missing or cannot be parsed, two cameras share a name, or
        a camera's values are impossible (see :func:`check_camera`).

    """
    path = Path(path)
    if not path.is_file():
        raise CalibrationError(
            f"{path}: calibration file not found; pass an existing calibration (an anipose "
            "or FreeMoCap .toml, or a Qualisys .qca.txt)"
        )
    return format_of(path).read(path)


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
BUILTIN = {
    f.name: f
    for f in (
        CalibrationFormat(
            "qualisys", lambda p: p.name.lower().endswith(".qca.txt"), _read_qualisys
        ),
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
