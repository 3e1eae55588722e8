"""The tracker protocol: a stack of BGR frames in, named per-frame arrays out."""

from __future__ import annotations

import numbers
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from ..errors import TrackerError

__all__ = [
    "INDIVIDUAL",
    "PIXEL_FORMATS",
    "Output",
    "Tracker",
    "TrackerError",
    "batch_of",
    "pixel_format_of",
    "pose_outputs",
    "reset_of",
    "warmup_of",
]

#: The one individual name the built-in trackers report (movement's default style).
INDIVIDUAL = "id_0"
#: Pixel formats a tracker may ask frames in (PyAV/FFmpeg names); ``bgr24`` is the default.
PIXEL_FORMATS = ("bgr24", "rgb24", "gray")


@dataclass(frozen=True)
class Output:
    """Declares one variable a tracker returns.

    Attributes
    ----------
    dims : tuple of str
        Dimensions after the leading ``(view, time)``.
    coords : dict
        Coordinate labels for each of ``dims``.
    dtype : str
        NumPy dtype of the values.
    fill : Any
        Value where nothing was measured (NaN for floats).
    attrs : dict
        Variable attributes (units, description).

    """

    dims: tuple[str, ...]
    coords: dict[str, list] = field(default_factory=dict)
    dtype: str = "float32"
    fill: Any = np.nan
    attrs: dict = field(default_factory=dict)

    def frame_shape(self) -> tuple[int, ...]:
        """Shape of one frame's values."""
        return tuple(len(self.coords[d]) for d in self.dims)


@runtime_checkable
class Tracker(Protocol):
    """What mocapflow needs of a tracker.

    A tracker must pickle cheaply (it travels to every worker): keep only
    parameters on it and build heavy state lazily inside ``__call__``.

    Four optional attributes refine how a task feeds it (see :func:`pixel_format_of`,
    :func:`warmup_of`, :func:`reset_of` and :func:`batch_of`):

    ``pixel_format``
        ``"bgr24"`` (the default, as ``cv2.VideoCapture`` gives), ``"rgb24"``, or
        ``"gray"`` (the decoder's luma stretched to full range, ``(n, h, w)``):
        frames are decoded straight into it, with no conversion in the tracker.
    ``warmup_frames``
        Frames a task decodes before its first one and runs through the
        tracker without keeping the results, for trackers that carry state
        from frame to frame.
    ``reset()``
        Called at the start of every task, before any frame: forget the state
        of the previous task.
    ``batch_frames``
        Frames per call (default :data:`~mocapflow.schema.BATCH_FRAMES`). A
        tracker that works frame by frame declares 1 and gets each decoded
        frame as it is (a read-only ``(1, ...)`` view), with no copy into a
        batch buffer (for a cheap tracker the copy is a large share of the
        time per frame).
    """

    name: str

    def params(self) -> dict:
        """Return the JSON-serialisable parameters (stored in the output's attrs)."""
        ...

    def outputs(self) -> dict[str, Output]:
        """Return the variables this tracker produces, by name."""
        ...

    def __call__(self, frames: np.ndarray) -> dict[str, np.ndarray]:
        """Track a stack of frames.

        Parameters
        ----------
        frames : numpy.ndarray
            ``uint8`` BGR frames shaped ``(n, height, width, 3)``.

        Returns
        -------
        dict of str to numpy.ndarray
            One array per declared output, shaped ``(n, *output.frame_shape())``.

        """
        ...


def pixel_format_of(tracker: Tracker) -> str:
    """Return the pixel format a tracker wants its frames in (default ``bgr24``)."""
    fmt = getattr(tracker, "pixel_format", "bgr24")
    if fmt not in PIXEL_FORMATS:
        raise TrackerError(
            f"tracker {tracker.name}: pixel_format {fmt!r} is not one of {', '.join(PIXEL_FORMATS)}"
        )
    return fmt


def warmup_of(tracker: Tracker) -> int:
    """Return the frames a task runs through a tracker before its first (default 0)."""
    return max(0, int(getattr(tracker, "warmup_frames", 0) or 0))


def batch_of(tracker: Tracker, default: int) -> int:
    """Return the frames a tracker takes per call: its ``batch_frames``, else ``default``."""
    n = getattr(tracker, "batch_frames", None)
    if n is None:
        return default
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
        raise TrackerError(
            f"tracker {tracker.name}: batch_frames must be a positive integer, got {n!r}"
        )
    return int(n)


def reset_of(tracker: Tracker):
    """Return the tracker's ``reset`` method, or ``None`` if it keeps no state."""
    reset = getattr(tracker, "reset", None)
    return reset if callable(reset) else None


def pose_outputs(keypoints: list[str], individuals: list[str] | None = None) -> dict[str, Output]:
    """Return movement's 2-D pose outputs: ``position`` and ``confidence``.

    Parameters
    ----------
    keypoints : list of str
        Keypoint names.
    individuals : list of str, optional
        Individual names; default one, ``id_0``.

    Returns
    -------
    dict of str to Output
        ``position (space, keypoint, individual)`` in pixels and
        ``confidence (keypoint, individual)`` in [0, 1].

    """
    individuals = individuals or [INDIVIDUAL]
    return {
        "position": Output(
            dims=("space", "keypoint", "individual"),
            coords={"space": ["x", "y"], "keypoint": keypoints, "individual": individuals},
            attrs={"units": "pixels", "description": "image coordinates, NaN where not found"},
        ),
        "confidence": Output(
            dims=("keypoint", "individual"),
            coords={"keypoint": keypoints, "individual": individuals},
            attrs={"description": "detection confidence in [0, 1], NaN where not found"},
        ),
    }
