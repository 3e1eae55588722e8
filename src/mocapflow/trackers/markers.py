"""Coloured markers: each marker has its own hue, so identities are known.

A pixel's chroma (max minus min of B, G, R) is linear in how much of it a
saturated marker covers when the marker is blended over a grey background, so a
chroma-weighted centroid over the blob and its anti-aliased rim gives the
centre to a fraction of a pixel.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import cv2
import numpy as np

from .base import Output, pose_outputs

__all__ = ["Markers", "palette"]


def palette(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Return ``n`` evenly spaced marker hues and their BGR colours.

    Parameters
    ----------
    n : int
        Number of markers.

    Returns
    -------
    hues : numpy.ndarray
        OpenCV hues in [0, 180).
    bgr : numpy.ndarray
        ``uint8`` colours shaped ``(n, 3)``, fully saturated and bright.

    """
    hues = (np.arange(n) * 180.0 / n).astype(np.float64)
    hsv = np.stack([np.round(hues), np.full(n, 255.0), np.full(n, 255.0)], -1)
    bgr = cv2.cvtColor(hsv.astype(np.uint8)[None], cv2.COLOR_HSV2BGR)[0]
    return np.round(hues) % 180, bgr


def _hue_distance(h: np.ndarray, target) -> np.ndarray:
    d = np.abs(np.asarray(h, np.float32) - np.asarray(target, np.float32))
    return np.minimum(d, 180.0 - d)


#: Most markers one tracker tells apart: their hues are 180 / n of OpenCV's hue steps apart.
MAX_MARKERS = 60


@dataclass(frozen=True)
class Markers:
    """Find coloured markers and report their sub-pixel centres.

    Parameters
    ----------
    n_markers : int
        Markers, with hues evenly spaced round the colour wheel (see :func:`palette`).
    names : list of str, optional
        Keypoint names; default ``marker0``, ``marker1``, ...
    min_chroma : int
        Least chroma (0-255) of a pixel that belongs to a marker's core.
    min_area : int
        Least area in pixels of a blob to count as a marker.

    """

    n_markers: int = 6
    names: tuple[str, ...] | None = None
    min_chroma: int = 60
    min_area: int = 4
    name: str = field(default="markers", init=False)
    #: Frame by frame: each decoded frame comes as it is, with no batch copy.
    batch_frames: ClassVar[int] = 1

    def __post_init__(self) -> None:
        if not 1 <= self.n_markers <= MAX_MARKERS:
            raise ValueError(
                f"markers: n_markers={self.n_markers} must be from 1 to {MAX_MARKERS} (hues "
                "closer than that cannot be told apart)"
            )
        if not 0 <= self.min_chroma <= 255:
            raise ValueError(
                f"markers: min_chroma={self.min_chroma} is outside 0-255 (a pixel's chroma); "
                "the default is 60"
            )
        if self.min_area < 1:
            raise ValueError(f"markers: min_area={self.min_area} must be at least 1 pixel")
        if self.names is not None:
            object.__setattr__(self, "names", tuple(self.names))
            if len(self.names) != self.n_markers:
                raise ValueError("markers: names must have one entry per marker")

    @property
    def keypoints(self) -> list[str]:
        """Keypoint names."""
        return list(self.names) if self.names else [f"marker{i}" for i in range(self.n_markers)]

    def params(self) -> dict:
        """Return the parameters."""
        return {
            "n_markers": self.n_markers,
            "names": self.keypoints,
            "min_chroma": self.min_chroma,
            "min_area": self.min_area,
        }

    def outputs(self) -> dict[str, Output]:
        """Declare ``position`` and ``confidence``."""
        return pose_outputs(self.keypoints)

    def __call__(self, frames: np.ndarray) -> dict[str, np.ndarray]:
        """Locate every marker in every frame."""
        n, k = len(frames), self.n_markers
        position = np.full((n, 2, k, 1), np.nan, np.float32)
        confidence = np.full((n, k, 1), np.nan, np.float32)
        for i, frame in enumerate(frames):
            found = self.detect(frame)
            for j, (x, y, c) in found.items():
                position[i, :, j, 0] = (x, y)
                confidence[i, j, 0] = c
        return {"position": position, "confidence": confidence}

    def _nearest_lut(self) -> np.ndarray:
        """Lookup table from OpenCV's 0-255 hue to the index of the nearest marker hue."""
        hues, _ = palette(self.n_markers)
        return np.argmin(_hue_distance(np.arange(256)[:, None] * (180 / 256), hues), 1).astype(
            np.uint8
        )

    def detect(self, frame: np.ndarray) -> dict[int, tuple[float, float, float]]:
        """Detect the markers of one BGR frame.

        Returns
        -------
        dict
            Marker index to ``(x, y, confidence)``.

        """
        b, g, r = cv2.split(frame)
        chroma = cv2.subtract(cv2.max(cv2.max(b, g), r), cv2.min(cv2.min(b, g), r))
        _, core = cv2.threshold(chroma, self.min_chroma - 1, 255, cv2.THRESH_BINARY)
        n_lab, labels, stats, _ = cv2.connectedComponentsWithStats(core, connectivity=8)
        if n_lab <= 1:
            return {}
        hue = cv2.cvtColor(frame, cv2.COLOR_BGR2HSV_FULL)[..., 0]
        cls = cv2.LUT(hue, self._nearest_lut())
        # Pixels are classified by hue first, so touching markers of different hues never
        # merge into one blob whose mean hue could pass for a third marker's.
        best: dict[int, tuple[int, int, int, int, int]] = {}  # class -> x0, y0, w, h, area
        for lab in np.flatnonzero(stats[1:, cv2.CC_STAT_AREA] >= self.min_area) + 1:
            x0, y0, w, h, _ = stats[lab]
            sub_cls = cls[y0 : y0 + h, x0 : x0 + w]
            sel = labels[y0 : y0 + h, x0 : x0 + w] == lab
            for j in np.unique(sub_cls[sel]):
                part = (sel & (sub_cls == j)).astype(np.uint8)
                n2, _, st2, _ = cv2.connectedComponentsWithStats(part, connectivity=8)
                k = 1 + int(np.argmax(st2[1:, cv2.CC_STAT_AREA]))
                bx, by, bw, bh, area = (int(v) for v in st2[k])
                if area >= self.min_area and area > best.get(int(j), (0, 0, 0, 0, 0))[4]:
                    best[int(j)] = (x0 + bx, y0 + by, bw, bh, area)
        return {j: self._refine(chroma, hue, j, box) for j, box in best.items()}

    def _refine(self, chroma, hue, j, box) -> tuple[float, float, float]:
        """Chroma-weighted centroid over a blob and its anti-aliased rim."""
        height, width = chroma.shape
        x0, y0, w, h, _ = box
        xa, ya = max(x0 - 2, 0), max(y0 - 2, 0)
        xb, yb = min(x0 + w + 2, width), min(y0 + h + 2, height)
        hues, _ = palette(self.n_markers)
        match = _hue_distance(hue[ya:yb, xa:xb] * (180 / 256), hues[j]) <= 90.0 / self.n_markers
        c = chroma[ya:yb, xa:xb].astype(np.float32)
        wgt = np.where(match, c, 0.0)
        total = float(wgt.sum())
        ys, xs = np.mgrid[ya:yb, xa:xb]
        x = float((wgt * xs).sum() / total)
        y = float((wgt * ys).sum() / total)
        core = c[match & (c >= self.min_chroma)]
        return x, y, float(np.clip(core.mean() / 255.0, 0.0, 1.0)) if core.size else 0.0
