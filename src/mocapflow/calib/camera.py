"""Pinhole cameras with OpenCV's distortion model, and comparing calibrated worlds."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import cv2
import numpy as np

__all__ = ["Camera", "align_worlds", "look_at"]


@dataclass(frozen=True)
class Camera:
    """A calibrated camera: OpenCV's pinhole model with 5 distortion coefficients.

    Attributes
    ----------
    name : str
        The view name it belongs to.
    size : tuple of int or None
        ``(width, height)`` in pixels of the images it was calibrated on; None
        when the calibration file does not say.
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
    size: tuple[int, int] | None
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

    def scaled(self, sx: float, sy: float) -> Camera:
        """Return this camera for images scaled by ``sx`` across and ``sy`` down.

        Binning or downscaling a video scales the focal lengths and the principal
        point; the distortion coefficients (in normalised coordinates) and the
        pose stay as they are.
        """
        matrix = np.asarray(self.matrix, np.float64) * np.array([[sx], [sy], [1.0]])
        size = None
        if self.size is not None:
            size = (round(self.size[0] * sx), round(self.size[1] * sy))
        return replace(self, size=size, matrix=matrix)

    def to_dict(self) -> dict:
        """Return the anipose TOML table for this camera (``size`` only when known)."""
        table: dict = {"name": self.name}
        if self.size is not None:
            table["size"] = [int(self.size[0]), int(self.size[1])]
        return {
            **table,
            "matrix": np.asarray(self.matrix, float).tolist(),
            "distortions": np.asarray(self.distortions, float).ravel().tolist(),
            "rotation": np.asarray(self.rotation, float).ravel().tolist(),
            "translation": np.asarray(self.translation, float).ravel().tolist(),
        }

    @classmethod
    def from_dict(cls, table: dict) -> Camera:
        """Build a camera from an anipose TOML table (its ``size`` may be absent)."""
        dist = np.zeros(5)
        given = np.asarray(table.get("distortions", []), float).ravel()[:5]
        dist[: len(given)] = given
        size = table.get("size")
        return cls(
            name=str(table["name"]),
            size=None if size is None else (int(size[0]), int(size[1])),
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


def centre_errors(estimated: list[Camera], truth: list[Camera]) -> np.ndarray:
    """Each estimated camera centre's distance from the true one, worlds aligned.

    Parameters
    ----------
    estimated, truth : list of Camera
        The same cameras, in the same order.

    Returns
    -------
    numpy.ndarray
        ``(camera,)`` distances in the world unit, after :func:`align_worlds`.

    """
    rot, shift = align_worlds(estimated, truth)
    est = np.stack([c.center for c in estimated]) @ rot.T + shift
    return np.linalg.norm(est - np.stack([c.center for c in truth]), axis=1)
