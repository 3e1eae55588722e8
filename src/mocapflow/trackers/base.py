"""The tracker protocol: a stack of BGR frames in, named per-frame arrays out."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

__all__ = ["Output", "Tracker", "INDIVIDUAL", "pose_outputs"]

#: The one individual name the built-in trackers report (movement's default style).
INDIVIDUAL = "id_0"


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
