"""Pinhole cameras with distortion, and anipose/FreeMoCap calibration TOML files.

The TOML holds one ``[cam_N]`` table per camera with ``name``, ``size``,
``matrix``, ``distortions`` (k1 k2 p1 p2 k3), ``rotation`` (a Rodrigues vector,
world to camera) and ``translation``, plus a ``[metadata]`` table. Cameras are
matched to views by ``name``, never by position.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import tomli_w

__all__ = [
    "Camera",
    "CalibrationError",
    "align_worlds",
    "look_at",
    "project_points",
    "read_calibration",
    "read_qca",
    "read_toml",
    "rodrigues",
    "write_toml",
]


class CalibrationError(ValueError):
    """A calibration file cannot be read, or does not match the recording."""


def rodrigues(rvec: np.ndarray) -> np.ndarray:
    """Rotation matrices ``(..., 3, 3)`` from Rodrigues vectors ``(..., 3)``, vectorised."""
    r = np.asarray(rvec, np.float64)
    theta = np.linalg.norm(r, axis=-1)[..., None, None]
    safe = np.where(theta > 1e-12, theta, 1.0)
    k = r / safe[..., 0]
    kx = np.zeros((*r.shape[:-1], 3, 3))
    kx[..., 0, 1], kx[..., 0, 2] = -k[..., 2], k[..., 1]
    kx[..., 1, 0], kx[..., 1, 2] = k[..., 2], -k[..., 0]
    kx[..., 2, 0], kx[..., 2, 1] = -k[..., 1], k[..., 0]
    eye = np.broadcast_to(np.eye(3), kx.shape)
    rot = eye + np.sin(theta) * kx + (1 - np.cos(theta)) * (kx @ kx)
    # Below 1e-12 rad the first-order form is exact to double precision.
    small = theta < 1e-12
    if np.any(small):
        rx = np.zeros_like(kx)
        rx[..., 0, 1], rx[..., 0, 2] = -r[..., 2], r[..., 1]
        rx[..., 1, 0], rx[..., 1, 2] = r[..., 2], -r[..., 0]
        rx[..., 2, 0], rx[..., 2, 1] = -r[..., 1], r[..., 0]
        rot = np.where(small, eye + rx, rot)
    return rot


def project_points(
    points_cam: np.ndarray, matrix: np.ndarray, distortions: np.ndarray
) -> np.ndarray:
    """Project camera-frame points ``(..., 3)`` to distorted pixels ``(..., 2)``.

    OpenCV's model with ``(k1, k2, p1, p2, k3)``, vectorised with broadcasting:
    ``matrix`` may be ``(..., 3, 3)`` and ``distortions`` ``(..., 5)`` per point.
    """
    p = np.asarray(points_cam, np.float64)
    m = np.asarray(matrix, np.float64)
    d = np.asarray(distortions, np.float64)
    x, y = p[..., 0] / p[..., 2], p[..., 1] / p[..., 2]
    k1, k2, p1, p2, k3 = (d[..., i] for i in range(5))
    r2 = x * x + y * y
    radial = 1 + r2 * (k1 + r2 * (k2 + r2 * k3))
    xd = x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
    yd = y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
    u = m[..., 0, 0] * xd + m[..., 0, 1] * yd + m[..., 0, 2]
    v = m[..., 1, 1] * yd + m[..., 1, 2]
    return np.stack([u, v], axis=-1)


@dataclass(frozen=True)
class Camera:
    """A calibrated camera: OpenCV's pinhole model with 5 distortion coefficients.

    Attributes
    ----------
    name : str
        The view name it belongs to.
    size : tuple of int
        ``(width, height)`` in pixels.
    matrix : numpy.ndarray
        3x3 intrinsic matrix.
    distortions : numpy.ndarray
        ``(k1, k2, p1, p2, k3)``.
    rotation : numpy.ndarray
        Rodrigues vector, world to camera.
    translation : numpy.ndarray
        Translation, world to camera, in the world unit.

    """

    name: str
    size: tuple[int, int]
    matrix: np.ndarray = field(repr=False)
    distortions: np.ndarray = field(repr=False)
    rotation: np.ndarray = field(repr=False)
    translation: np.ndarray = field(repr=False)

    @property
    def rotation_matrix(self) -> np.ndarray:
        """The 3x3 rotation, world to camera."""
        return cv2.Rodrigues(np.asarray(self.rotation, np.float64))[0]

    @property
    def center(self) -> np.ndarray:
        """The camera centre in world coordinates."""
        return -self.rotation_matrix.T @ np.asarray(self.translation, np.float64)

    def to_camera(self, points: np.ndarray) -> np.ndarray:
        """Transform world points ``(..., 3)`` into this camera's frame."""
        p = np.asarray(points, np.float64)
        return p @ self.rotation_matrix.T + np.asarray(self.translation, np.float64)

    def project(self, points: np.ndarray) -> np.ndarray:
        """Project world points ``(..., 3)`` to distorted pixels ``(..., 2)``."""
        p = np.asarray(points, np.float64)
        flat = p.reshape(-1, 3)
        uv, _ = cv2.projectPoints(
            flat,
            np.asarray(self.rotation, np.float64),
            np.asarray(self.translation, np.float64),
            np.asarray(self.matrix, np.float64),
            np.asarray(self.distortions, np.float64),
        )
        return uv.reshape(*p.shape[:-1], 2)

    def to_dict(self) -> dict:
        """Return the anipose TOML table for this camera."""
        return {
            "name": self.name,
            "size": [int(self.size[0]), int(self.size[1])],
            "matrix": np.asarray(self.matrix, float).tolist(),
            "distortions": np.asarray(self.distortions, float).ravel().tolist(),
            "rotation": np.asarray(self.rotation, float).ravel().tolist(),
            "translation": np.asarray(self.translation, float).ravel().tolist(),
        }

    @classmethod
    def from_dict(cls, table: dict) -> Camera:
        """Build a camera from an anipose TOML table."""
        dist = np.zeros(5)
        given = np.asarray(table.get("distortions", []), float).ravel()[:5]
        dist[: len(given)] = given
        return cls(
            name=str(table["name"]),
            size=(int(table["size"][0]), int(table["size"][1])),
            matrix=np.asarray(table["matrix"], float).reshape(3, 3),
            distortions=dist,
            rotation=np.asarray(table["rotation"], float).ravel(),
            translation=np.asarray(table["translation"], float).ravel(),
        )


def look_at(eye: np.ndarray, target: np.ndarray, up: np.ndarray = (0, 0, 1)) -> np.ndarray:
    """Return the world-to-camera rotation of a camera at ``eye`` looking at ``target``.

    The camera follows OpenCV's convention: x right, y down, z forward.
    """
    eye, target, up = (np.asarray(v, float) for v in (eye, target, up))
    z = target - eye
    z /= np.linalg.norm(z)
    x = np.cross(z, up)
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    return np.stack([x, y, z])


def align_worlds(estimated: list[Camera], truth: list[Camera]) -> tuple[np.ndarray, np.ndarray]:
    """Rigid transform taking an estimated world onto another, by the camera centres.

    A calibration fixes its world only up to a rigid motion (camera 0 at the
    origin, say); this finds the rotation and translation that best map the
    estimated camera centres onto the true ones (Kabsch, via scipy's
    ``Rotation.align_vectors``), for comparing positions in one frame.

    Parameters
    ----------
    estimated, truth : list of Camera
        The same cameras, in the same order.

    Returns
    -------
    rotation : numpy.ndarray
        3x3.
    translation : numpy.ndarray
        ``(3,)``: ``x_truth = rotation @ x_estimated + translation``.

    """
    from scipy.spatial.transform import Rotation

    a = np.stack([c.center for c in estimated])
    b = np.stack([c.center for c in truth])
    rot, _ = Rotation.align_vectors(b - b.mean(0), a - a.mean(0))
    r = rot.as_matrix()
    return r, b.mean(0) - r @ a.mean(0)


def write_toml(path: str | Path, cameras: list[Camera], metadata: dict | None = None) -> Path:
    """Write cameras as an anipose/FreeMoCap calibration TOML.

    Parameters
    ----------
    path : str or pathlib.Path
        The file to write.
    cameras : list of Camera
        The cameras, written as ``[cam_0]``, ``[cam_1]``, ...
    metadata : dict, optional
        The ``[metadata]`` table.

    Returns
    -------
    pathlib.Path
        The file written.

    """
    doc: dict = {f"cam_{i}": cam.to_dict() for i, cam in enumerate(cameras)}
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
    for key, table in doc.items():
        if key == "metadata" or not isinstance(table, dict) or "matrix" not in table:
            continue
        cam = Camera.from_dict({"name": key, **table})
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

    from .recording import natural_key

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
        cameras[name] = Camera(
            name, size, matrix, np.array(dist), cv2.Rodrigues(rot)[0].ravel(), -rot @ position
        )
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
        If the file is missing or cannot be parsed.

    """
    path = Path(path)
    if not path.is_file():
        raise CalibrationError(f"{path}: calibration file not found; pass an existing .toml")
    if path.name.lower().endswith(".qca.txt"):
        return read_qca(path), {"source": "qualisys", "file": str(path)}
    try:
        cameras, meta = read_toml(path)
    except (tomllib.TOMLDecodeError, KeyError, ValueError, TypeError) as exc:
        raise CalibrationError(f"{path}: not a valid calibration TOML ({exc})") from exc
    if not cameras:
        raise CalibrationError(f"{path}: no camera tables ([cam_N] with name and matrix) found")
    return cameras, meta
