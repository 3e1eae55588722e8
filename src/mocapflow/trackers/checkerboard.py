"""Checkerboard inner corners with OpenCV's ``findChessboardCorners``, as Pose2Sim uses them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import cv2
import numpy as np

from .base import Output, pose_outputs

__all__ = ["Checkerboard"]

#: Sub-pixel refinement: most window half-size (pixels; Pose2Sim's 11), at most this
#: fraction of the corners' spacing so the window never reaches the next corner; stop criteria.
SUBPIX_WINDOW = 11
SUBPIX_SPACING = 0.4
SUBPIX_CRITERIA = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 30, 1e-3)
#: Frames are searched at most this wide; corners found there are refined at full size.
SEARCH_WIDTH = 1280


@dataclass(frozen=True)
class Checkerboard:
    """Detect a checkerboard's inner corners; keypoints are the corner ids, row by row.

    A checkerboard has no markers, so which corner comes first is decided from
    the picture: rows run so that the board is not mirrored, and with an odd
    number of squares in one direction and an even one in the other (a 4x7
    inner-corner board has 5x8 squares), the first corner is the one whose
    outer square is dark. A board with both counts of one parity looks the same
    turned half round: its corners serve one camera's intrinsics, not several
    cameras at once (see :attr:`symmetric`).

    Parameters
    ----------
    corners_x, corners_y : int
        Inner corners across and down (Pose2Sim's ``corners_nb``).
    square_length : float
        Side of a square, in the world unit (mm).
    inverted : bool
        Invert the luma before detection (a board printed in negative).

    """

    corners_x: int = 4
    corners_y: int = 7
    square_length: float = 1.0
    inverted: bool = False
    name: str = field(default="checkerboard", init=False)
    pixel_format: str = field(default="gray", init=False, repr=False)
    batch_frames: ClassVar[int] = 1

    def __post_init__(self) -> None:
        if self.corners_x < 2 or self.corners_y < 2:
            raise ValueError("checkerboard: a board needs at least 2x2 inner corners")
        if not self.square_length > 0:
            raise ValueError(f"checkerboard: square_length={self.square_length} must be above 0")

    @property
    def n_corners(self) -> int:
        """Inner corners of the board."""
        return self.corners_x * self.corners_y

    @property
    def symmetric(self) -> bool:
        """Whether the board looks the same turned half round (its first corner is ambiguous)."""
        return (self.corners_x + self.corners_y) % 2 == 0

    def params(self) -> dict:
        """Return the parameters."""
        return {
            "corners_x": self.corners_x,
            "corners_y": self.corners_y,
            "square_length": float(self.square_length),
            "inverted": bool(self.inverted),
        }

    def object_points(self) -> np.ndarray:
        """Return the corners' coordinates on the board ``(corner, 3)``, row by row."""
        grid = np.mgrid[0 : self.corners_x, 0 : self.corners_y].T.reshape(-1, 2)
        return np.hstack([grid * float(self.square_length), np.zeros((len(grid), 1))])

    def outputs(self) -> dict[str, Output]:
        """Declare ``position`` and ``confidence`` over the corner ids."""
        return pose_outputs([str(i) for i in range(self.n_corners)])

    def _orient(self, gray: np.ndarray, pts: np.ndarray) -> np.ndarray:
        """Put the corners in the board's own order (see the class docstring)."""
        nx, ny = self.corners_x, self.corners_y
        grid = pts.reshape(ny, nx, 2)
        a, b = grid[0, 1] - grid[0, 0], grid[1, 0] - grid[0, 0]
        if a[0] * b[1] - a[1] * b[0] < 0:  # mirrored: rows run the other way
            grid = grid[:, ::-1]
        if not self.symmetric:
            # The outer squares at the first and last corners differ in colour.
            def outer(corner, inner):
                x, y = np.round(corner + 0.5 * (corner - inner)).astype(int)
                h, w = gray.shape
                return float(gray[min(max(y, 0), h - 1), min(max(x, 0), w - 1)])

            first = outer(grid[0, 0], grid[1, 1])
            last = outer(grid[-1, -1], grid[-2, -2])
            if first > last:
                grid = grid[::-1, ::-1]
        return grid.reshape(-1, 2)

    def __call__(self, frames: np.ndarray) -> dict[str, np.ndarray]:
        """Detect the board's inner corners in every frame (gray ``(n, h, w)`` or BGR)."""
        n, k = len(frames), self.n_corners
        position = np.full((n, 2, k, 1), np.nan, np.float32)
        confidence = np.full((n, k, 1), np.nan, np.float32)
        flags = (
            cv2.CALIB_CB_ADAPTIVE_THRESH | cv2.CALIB_CB_NORMALIZE_IMAGE | cv2.CALIB_CB_FAST_CHECK
        )
        for i, frame in enumerate(frames):
            gray = frame if frame.ndim == 2 else cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
            if self.inverted:
                gray = 255 - gray
            scale = min(1.0, SEARCH_WIDTH / max(gray.shape))
            small = gray if scale == 1.0 else cv2.resize(gray, None, fx=scale, fy=scale)
            ok, corners = cv2.findChessboardCorners(small, (self.corners_x, self.corners_y), flags)
            if not ok:
                continue
            corners = (corners.reshape(-1, 2) / scale).astype(np.float32)
            grid = corners.reshape(self.corners_y, self.corners_x, 2)
            spacing = min(
                np.linalg.norm(np.diff(grid, axis=0), axis=-1).min(),
                np.linalg.norm(np.diff(grid, axis=1), axis=-1).min(),
            )
            half = int(np.clip(SUBPIX_SPACING * spacing, 2, SUBPIX_WINDOW))
            corners = cv2.cornerSubPix(
                gray, corners.reshape(-1, 1, 2), (half, half), (-1, -1), SUBPIX_CRITERIA
            ).reshape(-1, 2)
            position[i, :, :, 0] = self._orient(gray, corners).T
            confidence[i, :, 0] = 1.0
        return {"position": position, "confidence": confidence}
