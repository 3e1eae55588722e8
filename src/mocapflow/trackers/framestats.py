"""Per-frame colour statistics: a QA tool for black, frozen or dropped frames."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import cv2
import numpy as np

from .base import Output

__all__ = ["FrameStats"]


@dataclass(frozen=True)
class FrameStats:
    """Mean and standard deviation of each colour channel of every frame.

    Outputs ``frame_mean`` and ``frame_std`` with dims ``(channel,)`` after
    ``(view, time)``, channel ``["b", "g", "r"]``.
    """

    name: str = "framestats"
    #: Frame by frame: each decoded frame comes as it is, with no batch copy.
    batch_frames: ClassVar[int] = 1

    def params(self) -> dict:
        """Return the parameters (none)."""
        return {}

    def outputs(self) -> dict[str, Output]:
        """Declare ``frame_mean`` and ``frame_std``."""
        coords = {"channel": ["b", "g", "r"]}
        return {
            "frame_mean": Output(("channel",), coords, attrs={"description": "mean pixel value"}),
            "frame_std": Output(("channel",), coords, attrs={"description": "pixel std dev"}),
        }

    def __call__(self, frames: np.ndarray) -> dict[str, np.ndarray]:
        """Compute the statistics of each frame with ``cv2.meanStdDev``."""
        n = len(frames)
        mean = np.empty((n, 3), np.float32)
        std = np.empty((n, 3), np.float32)
        for i, frame in enumerate(frames):
            m, s = cv2.meanStdDev(frame)
            mean[i], std[i] = m[:, 0], s[:, 0]
        return {"frame_mean": mean, "frame_std": std}
