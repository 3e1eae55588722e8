"""ChArUco board corners with OpenCV's ``CharucoDetector``."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import ClassVar

import cv2
import numpy as np

from .base import Output, pose_outputs

__all__ = ["Charuco", "make_board"]


def make_board(
    squares_x: int = 7,
    squares_y: int = 5,
    square_length: float = 1.0,
    marker_ratio: float = 0.8,
    dictionary: str = "DICT_4X4_250",
    legacy: bool = False,
) -> cv2.aruco.CharucoBoard:
    """Build a ChArUco board (FreeMoCap's 7x5 ``DICT_4X4_250`` by default).

    Parameters
    ----------
    squares_x, squares_y : int
        Squares across and down.
    square_length : float
        Side of a square, in the world unit (only 3-D work uses it).
    marker_ratio : float
        Marker side as a fraction of the square side.
    dictionary : str
        Name of an OpenCV predefined ArUco dictionary.
    legacy : bool
        OpenCV's pattern before 4.6 (boards printed from older tools, and
        caliscope's ``legacy_pattern``): with an even number of rows the first
        square is white instead of black.

    Returns
    -------
    cv2.aruco.CharucoBoard
        The board.

    """
    if not hasattr(cv2.aruco, dictionary):
        raise ValueError(f"charuco: unknown dictionary {dictionary!r} (e.g. DICT_4X4_250)")
    dic = cv2.aruco.getPredefinedDictionary(getattr(cv2.aruco, dictionary))
    board = cv2.aruco.CharucoBoard(
        (squares_x, squares_y), square_length, square_length * marker_ratio, dic
    )
    board.setLegacyPattern(bool(legacy))
    return board


_DETECTORS = threading.local()


def _detector(params: tuple) -> cv2.aruco.CharucoDetector:
    # Built once per thread: detectors do not pickle (parameters do), and worker
    # threads of one process must not share one detector's state.
    cache = _DETECTORS.__dict__.setdefault("cache", {})
    if params not in cache:
        cache[params] = cv2.aruco.CharucoDetector(make_board(*params))
    return cache[params]


@dataclass(frozen=True)
class Charuco:
    """Detect ChArUco corners; keypoints are the board's corner ids.

    Parameters
    ----------
    squares_x, squares_y, square_length, marker_ratio, dictionary, legacy
        The board, as :func:`make_board` takes them.
    inverted : bool
        The board is printed in inverted colours (white squares where the
        standard board has black, light markers on dark): each frame's luma is
        inverted before detection.

    """

    squares_x: int = 7
    squares_y: int = 5
    square_length: float = 1.0
    marker_ratio: float = 0.8
    dictionary: str = "DICT_4X4_250"
    legacy: bool = False
    inverted: bool = False
    name: str = field(default="charuco", init=False)
    #: Detection works on luma: decoded straight to gray, no colour conversion.
    pixel_format: str = field(default="gray", init=False, repr=False)
    #: Frame by frame: each decoded frame comes as it is, with no batch copy.
    batch_frames: ClassVar[int] = 1

    def __post_init__(self) -> None:
        if self.squares_x < 2 or self.squares_y < 2:
            raise ValueError("charuco: a board needs at least 2x2 squares")
        if not 0 < self.marker_ratio < 1:
            raise ValueError("charuco: marker_ratio must be between 0 and 1")
        if not self.square_length > 0:
            raise ValueError(f"charuco: square_length={self.square_length} must be above 0")
        if hasattr(cv2.aruco, str(self.dictionary)):
            dictionary = cv2.aruco.getPredefinedDictionary(getattr(cv2.aruco, self.dictionary))
            markers = self.squares_x * self.squares_y // 2
            if markers > dictionary.bytesList.shape[0]:
                raise ValueError(
                    f"charuco: a {self.squares_x}x{self.squares_y} board needs {markers} markers, "
                    f"more than the {dictionary.bytesList.shape[0]} of {self.dictionary}; check "
                    "squares_x and squares_y, or choose a larger dictionary"
                )
        make_board(*self._board_params())

    def _board_params(self) -> tuple:
        return (
            self.squares_x,
            self.squares_y,
            float(self.square_length),
            float(self.marker_ratio),
            self.dictionary,
            bool(self.legacy),
        )

    @property
    def n_corners(self) -> int:
        """Inner corners of the board."""
        return (self.squares_x - 1) * (self.squares_y - 1)

    def board(self) -> cv2.aruco.CharucoBoard:
        """Return the board."""
        return make_board(*self._board_params())

    def params(self) -> dict:
        """Return the parameters."""
        return {
            "squares_x": self.squares_x,
            "squares_y": self.squares_y,
            "square_length": float(self.square_length),
            "marker_ratio": float(self.marker_ratio),
            "dictionary": self.dictionary,
            "legacy": bool(self.legacy),
            "inverted": bool(self.inverted),
        }

    def object_points(self) -> np.ndarray:
        """Return the corners' coordinates on the board ``(corner, 3)``, in the world unit."""
        return np.asarray(self.board().getChessboardCorners(), np.float64)

    def outputs(self) -> dict[str, Output]:
        """Declare ``position`` and ``confidence`` over the corner ids."""
        return pose_outputs([str(i) for i in range(self.n_corners)])

    def __call__(self, frames: np.ndarray) -> dict[str, np.ndarray]:
        """Detect the board's corners in every frame (gray ``(n, h, w)`` or BGR)."""
        detector = _detector(self._board_params())
        n, k = len(frames), self.n_corners
        position = np.full((n, 2, k, 1), np.nan, np.float32)
        confidence = np.full((n, k, 1), np.nan, np.float32)
        for i, frame in enumerate(frames):
            gray = frame if frame.ndim == 2 else cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
            if self.inverted:
                gray = 255 - gray
            corners, ids, _, _ = detector.detectBoard(gray)
            if ids is None or len(ids) == 0:
                continue
            ids = np.asarray(ids).reshape(-1)
            pts = np.asarray(corners, np.float32).reshape(-1, 2)
            position[i, :, ids, 0] = pts
            confidence[i, ids, 0] = 1.0
        return {"position": position, "confidence": confidence}
