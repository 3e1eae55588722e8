"""Trackers: built-in ones, ``package.module:factory`` specs, and entry points.

A tracker is any object with ``name``, ``params()``, ``outputs()`` and
``__call__(frames)`` (see :class:`Tracker`). Packages register factories under
the entry-point group ``mocapflow.trackers``.
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points

from .base import (
    INDIVIDUAL,
    Output,
    Tracker,
    TrackerError,
    batch_of,
    pixel_format_of,
    pose_outputs,
    reset_of,
    warmup_of,
)
from .charuco import Charuco, make_board
from .checkerboard import Checkerboard
from .framestats import FrameStats
from .markers import Markers, palette
from .mediapipe_pose import MediaPipeHolistic, MediaPipePose
from .params import check_params, coerce_params

__all__ = [
    "BUILTIN",
    "ENTRY_POINT_GROUP",
    "INDIVIDUAL",
    "Charuco",
    "Checkerboard",
    "FrameStats",
    "Markers",
    "MediaPipeHolistic",
    "MediaPipePose",
    "Output",
    "Tracker",
    "TrackerError",
    "available",
    "get_tracker",
    "make_board",
    "palette",
    "batch_of",
    "pixel_format_of",
    "pose_outputs",
    "reset_of",
    "warmup_of",
]

ENTRY_POINT_GROUP = "mocapflow.trackers"
BUILTIN = {
    "framestats": FrameStats,
    "markers": Markers,
    "charuco": Charuco,
    "checkerboard": Checkerboard,
    "mediapipe": MediaPipePose,
    "mediapipe_holistic": MediaPipeHolistic,
}


def available() -> list[str]:
    """Return the names of the built-in and registered trackers."""
    registered = [ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)]
    return sorted(set(BUILTIN) | set(registered))


def _load_spec(spec: str):
    module_name, _, attr = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            raise TrackerError(
                f"tracker {spec!r}: no module {module_name!r}; check the name, or put its "
                "folder on PYTHONPATH"
            ) from None
        raise TrackerError(
            f"tracker {spec!r}: your module {module_name!r} failed to import: {exc}; "
            "install what it needs"
        ) from None
    except Exception as exc:  # the user's module: a SyntaxError, or anything it raises
        where = ""
        if isinstance(exc, SyntaxError) and exc.filename:
            where = f" ({exc.filename}, line {exc.lineno})"
        raise TrackerError(
            f"tracker {spec!r}: your module {module_name!r} failed to import{where}: "
            f"{type(exc).__name__}: {exc}; fix the module"
        ) from None
    try:
        return getattr(module, attr)
    except AttributeError:
        raise TrackerError(f"tracker {spec!r}: {module_name} has no {attr!r}") from None


def get_tracker(spec: str | Tracker, **params) -> Tracker:
    """Build a tracker from a name, a ``package.module:factory`` spec, or an instance.

    Parameters
    ----------
    spec : str or Tracker
        ``"framestats"``, ``"markers"``, ``"charuco"``, a registered entry-point
        name, ``"package.module:factory"``, or a tracker instance (returned as is).
    **params
        Keyword arguments for the factory.

    Returns
    -------
    Tracker
        The tracker.

    Raises
    ------
    TrackerError
        If the name is unknown or the factory rejects the parameters.

    """
    if not isinstance(spec, str):
        if not isinstance(spec, Tracker):
            raise TrackerError(f"{spec!r} is not a tracker (needs name, params, outputs, __call__)")
        return spec
    if ":" in spec:
        factory = _load_spec(spec)
    elif spec in BUILTIN:
        factory = BUILTIN[spec]
    else:
        eps = {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}
        if spec not in eps:
            raise TrackerError(
                f"unknown tracker {spec!r}; choose one of {', '.join(available())} "
                "or give package.module:factory"
            )
        factory = eps[spec].load()
    params = coerce_params(spec, factory, params)
    try:
        tracker = factory(**params)
    except (TypeError, ValueError) as exc:
        raise TrackerError(f"tracker {spec!r}: bad parameters ({exc})") from None
    except Exception as exc:  # the factory is the user's code: say so, not "a bug in mocapflow"
        raise TrackerError(
            f"tracker {spec!r}: its factory raised {type(exc).__name__}: {exc}; "
            "fix the tracker or its parameters"
        ) from None
    if not isinstance(tracker, Tracker):
        raise TrackerError(
            f"tracker {spec!r}: the factory returned {type(tracker).__name__}, "
            "which lacks name, params, outputs or __call__"
        )
    check_params(spec, tracker)
    try:
        tracker.outputs()
    except Exception as exc:
        raise TrackerError(
            f"tracker {spec!r}: its outputs() raised {type(exc).__name__}: {exc}; fix the tracker"
        ) from None
    return tracker
