"""The plan of a tracking run, made once: what is tracked, how it is cut, and the store's layout.

The planner cuts each video into tasks of about ``chunk_frames`` frames. Task
boundaries fall on the Zarr chunk grid along ``time`` (every ``time_chunk``
frames, the same for all views), and among the grid lines near the target it
picks the one just after a keyframe, so a task rarely decodes frames it does
not own.

:func:`make_plan` turns what the user asked (a recording, a tracker and its
parameters, ``chunk_frames``) into a :class:`Plan`: ``chunk_frames`` becomes the
time chunk here and nowhere else, and the tracker's parameters and outputs are
read here once. The ledger, the store's attributes, the graph builders and the
runner all take the plan.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import RecordingError
from .recording import Recording, open_recording
from .schema import (
    BATCH_FRAMES,
    DEFAULT_CHUNK_FRAMES,
    DEFAULT_TRACKER,
    FORMAT,
    POSITION,
    software_attrs,
    time_attrs,
    time_chunk_for,
    tracks_layout,
)
from .trackers import Output, Tracker, batch_of, get_tracker, warmup_of

__all__ = ["ChunkSpec", "Plan", "as_recording", "make_plan", "plan_chunks"]

logger = logging.getLogger(__name__)


def as_recording(recording: Recording | str | Path) -> Recording:
    """Return ``recording``, opened from its path if needed."""
    return recording if isinstance(recording, Recording) else open_recording(recording)


@dataclass(frozen=True)
class ChunkSpec:
    """One task: a frame range of one video. Only this travels in the graph.

    Attributes
    ----------
    view_index : int
        Position of the view on the ``view`` axis.
    view : str
        The view name.
    path : str
        The video file.
    start, stop : int
        The frames the task owns.
    start_pts : int
        Timestamp of frame ``start``.
    seek_pts : int
        Timestamp of the keyframe to seek to (at or before the first decoded frame).
    view_end : int
        The view's frame count.
    warmup : int
        Frames before ``start`` that the task decodes and runs through the
        tracker without keeping (trackers that carry state between frames).
    read_pts : int or None
        Timestamp of the first decoded frame, ``start - warmup``; None when
        ``warmup`` is 0.

    """

    view_index: int
    view: str
    path: str
    start: int
    stop: int
    start_pts: int
    seek_pts: int
    view_end: int
    warmup: int = 0
    read_pts: int | None = None

    @property
    def key(self) -> tuple[int, int, int]:
        """``(view_index, start, stop)``: the task's identity in the store."""
        return (self.view_index, self.start, self.stop)

    @property
    def n_frames(self) -> int:
        """Frames the task owns."""
        return self.stop - self.start


def _boundaries(n: int, keyframes: np.ndarray, chunk_frames: int, grid: int) -> list[int]:
    """Task boundaries on the ``grid`` for a video of ``n`` frames."""
    bounds = [0]
    while bounds[-1] < n:
        s = bounds[-1]
        target = s + chunk_frames
        if target >= n or n - s <= chunk_frames + grid // 2:
            bounds.append(n)
            break
        lo = s + max(grid, (chunk_frames // 2) // grid * grid)
        hi = min(s + chunk_frames + chunk_frames // 2, n - 1)
        candidates = np.arange(lo - lo % grid, hi + 1, grid)
        candidates = candidates[(candidates > s) & (candidates < n)]
        if candidates.size == 0:
            bounds.append(min(s + grid * max(1, chunk_frames // grid), n))
            continue
        kf_before = keyframes[np.searchsorted(keyframes, candidates, side="right") - 1]
        waste = candidates - kf_before
        aligned = candidates[waste < grid]
        pool = aligned if aligned.size else candidates
        bounds.append(int(pool[np.argmin(np.abs(pool - target))]))
    return bounds


def plan_chunks(
    recording: Recording, chunk_frames: int, warmup: int = 0, *, time_chunk: int | None = None
) -> list[ChunkSpec]:
    """Cut every readable view into tasks.

    Parameters
    ----------
    recording : Recording
        The probed recording.
    chunk_frames : int
        Target frames per task.
    warmup : int
        Frames each task decodes before its first (see :func:`warmup_of`).
    time_chunk : int, optional
        The Zarr chunk length along ``time``, the grid task boundaries fall on;
        default :func:`~mocapflow.schema.time_chunk_for` of ``chunk_frames``
        (a :class:`Plan` gives its own).

    Returns
    -------
    list of ChunkSpec
        Tasks of all views, view by view.

    """
    grid = time_chunk if time_chunk is not None else time_chunk_for(chunk_frames)
    specs = []
    for i, view in enumerate(recording.views):
        info = view.info
        if info is None:
            continue
        bounds = _boundaries(info.n_frames, info.keyframes, chunk_frames, grid)
        for a, b in zip(bounds[:-1], bounds[1:], strict=True):
            first = max(0, a - warmup)
            specs.append(
                ChunkSpec(
                    view_index=i,
                    view=view.name,
                    path=str(view.path),
                    start=a,
                    stop=b,
                    start_pts=int(info.pts[a]),
                    seek_pts=int(info.pts[info.keyframe_before(first)]),
                    view_end=info.n_frames,
                    warmup=a - first,
                    read_pts=int(info.pts[first]) if a > first else None,
                )
            )
    return specs


@dataclass(frozen=True)
class Plan:
    """A tracking run's plan: made once by :func:`make_plan`, then carried through.

    Attributes
    ----------
    recording : Recording
        The probed recording.
    tracker : Tracker
        The tracker.
    params : dict
        The tracker's parameters (its ``params()``, read once).
    outputs : dict of str to Output
        The tracker's outputs (its ``outputs()``, read once).
    chunk_frames : int
        Target frames per task, as asked.
    time_chunk : int
        The Zarr chunk length along ``time``, which task boundaries fall on.
    specs : tuple of ChunkSpec
        The tasks of every readable view.
    frame_bytes : int
        Bytes of the largest decoded frame (width x height x 3).

    """

    recording: Recording
    tracker: Tracker
    params: dict
    outputs: dict[str, Output]
    chunk_frames: int
    time_chunk: int
    specs: tuple[ChunkSpec, ...]
    frame_bytes: int

    def layout(self) -> dict:
        """Return the 2-D store's variables (see :func:`mocapflow.schema.tracks_layout`)."""
        return tracks_layout(self.recording, self.tracker, self.time_chunk, self.outputs)

    def attrs(self) -> dict:
        """Return a 2-D store's root attributes: software, recording, tracker, chunking.

        Time follows movement's convention: in seconds when the frame rate is
        known (``fps`` set), else in frames (no ``fps``).
        """
        rec = self.recording
        attrs = {
            **software_attrs(),
            "mocapflow_format": FORMAT,
            "ds_type": "poses" if POSITION in self.outputs else "frames",
            **time_attrs(rec.fps),
            "space_unit": "pixels",
            "recording": str(rec.path),
            "tracker": self.tracker.name,
            "tracker_params": self.params,
            "chunk_frames": int(self.chunk_frames),
            "time_chunk": self.time_chunk,
            "views": [v.metadata() for v in rec.views],
            "warnings": list(rec.warnings),
        }
        skeleton = getattr(self.tracker, "skeleton", None)
        if skeleton:
            attrs["skeleton"] = [list(map(str, bone)) for bone in skeleton]
        return attrs

    def describe(self) -> str:
        """Return the tracker and its parameters in words: ``name(key=value, ...)``."""
        return f"{self.tracker.name}({', '.join(f'{k}={v}' for k, v in self.params.items())})"


def make_plan(
    recording: Recording | str | Path,
    tracker: str | Tracker = DEFAULT_TRACKER,
    chunk_frames: int = DEFAULT_CHUNK_FRAMES,
    tracker_params: dict | None = None,
) -> Plan:
    """Plan a tracking run: build the tracker, probe the recording, cut the tasks.

    Parameters
    ----------
    recording : Recording or path
        The recording.
    tracker : str or Tracker
        Tracker name, ``package.module:factory``, or an instance.
    chunk_frames : int
        Target frames per task.
    tracker_params : dict, optional
        Parameters for the tracker.

    Returns
    -------
    Plan
        The plan.

    Raises
    ------
    UsageError
        If ``chunk_frames`` is not a positive number of frames.
    TrackerError
        If the tracker or its parameters are bad (a bad ``batch_frames`` too).
    RecordingError
        If none of the recording's videos can be read.

    """
    trk = get_tracker(tracker, **(tracker_params or {}))
    batch_of(trk, BATCH_FRAMES)  # a bad batch_frames fails here, once, not in every task
    time_chunk = time_chunk_for(chunk_frames)
    rec = as_recording(recording)
    if not rec.ok_views:
        raise RecordingError(
            f"{rec.path}: none of the {len(rec.views)} videos can be read; "
            + "; ".join(v.error for v in rec.views if v.error)
        )
    specs = plan_chunks(rec, chunk_frames, warmup_of(trk), time_chunk=time_chunk)
    return Plan(
        recording=rec,
        tracker=trk,
        params=trk.params(),
        outputs=trk.outputs(),
        chunk_frames=int(chunk_frames),
        time_chunk=time_chunk,
        specs=tuple(specs),
        frame_bytes=max(v.info.width * v.info.height * 3 for v in rec.ok_views),
    )
