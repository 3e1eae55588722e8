"""The data model and the defaults, declared once.

A store is a Zarr v3 group in xarray's layout (open it with ``xr.open_zarr(...,
consolidated=False)``): the 2-D template is written straight through Zarr with the
metadata xarray's ``to_zarr`` gives it, and the 3-D groups through xarray. Its
root holds the 2-D tracks, in movement's pose schema with a leading ``view``
dimension; the 3-D groups hold movement's 3-D schema::

    STORE/                      position (view, time, space, keypoint, individual)
                                confidence (view, time, keypoint, individual)
                                decoded (view, time), and any other tracker outputs
    STORE/points3d/             position (time, space, keypoint, individual), mm
                                reprojection_error, n_views (time, keypoint, individual)
                                lr_swapped (time, view, keypoint, individual)
    STORE/filtered/             the same, gap-filled and low-passed
    STORE/_mocapflow/           the ledger (see ledger.py)

Every dataset is declared here, by :func:`tracks_layout` (which
:func:`mocapflow.graph.tracks_template` makes lazy) and :func:`points3d`, so
names, dimensions and attributes cannot drift between the writers. This module
imports no Dask.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from . import __version__
from .errors import UsageError

if TYPE_CHECKING:  # xarray is imported where a dataset is built: workers never need it
    import xarray as xr

__all__ = [
    "ANGLES",
    "COM",
    "DEFAULT_MASS",
    "IK",
    "IK_FLAG_MM",
    "IK_FRAMES",
    "RENDER_ERROR_PX",
    "RENDER_FRAMES",
    "RENDER_THUMBNAILS",
    "RENDER_X264",
    "KINEMATICS_GROUPS",
    "BATCH_FRAMES",
    "CONFIDENCE",
    "DASHBOARD_ADDRESS",
    "DECODED",
    "DEFAULT_CHUNK_FRAMES",
    "DEFAULT_TRACKER",
    "FILTERED",
    "FORMAT",
    "FRAME_TIME",
    "GROUPS_3D",
    "MAX_TIME_CHUNK",
    "PEOPLE_SLOTS",
    "POINTS3D",
    "POSITION",
    "STORE_NAME",
    "SYNC_OFFSET",
    "TRIANGULATE_FRAMES",
    "FilterSettings",
    "TriangulationSettings",
    "Variable",
    "padlen_of",
    "points3d",
    "software_attrs",
    "strings",
    "time_attrs",
    "time_chunk_for",
    "time_coords",
    "tracks_layout",
]

#: A recording's store, inside the recording folder, unless ``--out`` says otherwise.
STORE_NAME = "mocapflow.zarr"
#: Written into every store's attributes; a folder without it is not ours.
FORMAT = "mocapflow-store/1"

POSITION = "position"
CONFIDENCE = "confidence"
DECODED = "decoded"
#: The 3-D groups, in the order an export prefers them.
FILTERED = "filtered"
POINTS3D = "points3d"
GROUPS_3D = (FILTERED, POINTS3D)
#: The biomechanics groups (:mod:`mocapflow.kinematics`), made from a 3-D group.
ANGLES = "angles"
COM = "com"
IK = "ik"
KINEMATICS_GROUPS = (ANGLES, COM, IK)
#: Frames per inverse-kinematics task.
IK_FRAMES = 120
#: An IK frame whose marker RMS error is above this (mm) is flagged.
IK_FLAG_MM = 30.0
#: The person's mass when none is given (kg): segment masses in the OpenSim model only.
DEFAULT_MASS = 70.0
#: Frames per render task, at least: each range runs on to the source's next keyframe.
RENDER_FRAMES = 240
#: A reprojected point this far (px) from the view's detection is drawn red (0: green).
RENDER_ERROR_PX = 30.0
#: Rendered frames per view kept as JPEG thumbnails for the run report.
RENDER_THUMBNAILS = 3
#: x264 options of rendered videos: the ultrafast preset encodes 1080x1920 frames 1.8x faster
#: than veryfast (16 against 29 ms a frame on the sample), about as fast as the MPEG-4 Part 2
#: writer skellytracker uses, in 80 % of its bytes (the sample's cam01 and cam03: 3.1 and 4.2
#: against 3.8 and 5.2 MB).
RENDER_X264 = {"crf": "20", "preset": "ultrafast"}

#: The tracker of every command that tracks, unless ``--tracker`` says otherwise.
DEFAULT_TRACKER = "mediapipe"
#: Target frames per tracking task.
DEFAULT_CHUNK_FRAMES = 240
#: Longest Zarr chunk along ``time``: tasks are cut on this grid.
MAX_TIME_CHUNK = 30
#: Frames a task decodes before each tracker call: what a worker holds at once.
BATCH_FRAMES = 16
#: Frames per triangulation task.
TRIANGULATE_FRAMES = 256
#: Detections per view that ``run`` asks of a tracker that can find several
#: people (its ``max_people``), unless ``-p max_people`` says otherwise: people
#: are then matched across views and over time (:mod:`mocapflow.associate`).
PEOPLE_SLOTS = 4
#: Per view: frame ``i`` of the view shows the instant that the reference view
#: shows at frame ``i + sync_offset`` (frames of the reference; see :mod:`mocapflow.sync`).
SYNC_OFFSET = "sync_offset"
SYNC_OFFSET_ATTRS = {
    "units": "frames of the reference view",
    "description": "frame i of the view shows the instant the reference view shows at "
    "frame i + sync_offset; a view that started k frames after the reference has +k",
}
#: Per view and frame: the frame's own time (seconds from the view's first frame,
#: from its timestamp; NaN past the view's end).
FRAME_TIME = "frame_time"
FRAME_TIME_ATTRS = {  # no CF "units": xarray would decode seconds as timedeltas
    "description": "the frame's own timestamp in seconds, from the view's first frame",
}
#: Where the dashboard listens unless a profile or ``--dashboard`` says otherwise.
DASHBOARD_ADDRESS = "127.0.0.1:8787"


@dataclass(frozen=True)
class TriangulationSettings:
    """How 2-D tracks become 3-D points (see :func:`mocapflow.triangulate.triangulate_frames`).

    Attributes
    ----------
    min_views : int
        Fewest views a point needs.
    min_confidence : float
        Observations under this confidence are not used.
    max_error : float or None
        Reprojection error (px) above which views are rejected one by one; None:
        :data:`mocapflow.associate.ROBUST_FRACTION` of the image diagonal.
    swap_lr : bool
        Undo single views' left/right label swaps first.
    people : int or None
        With several detections per view: how many people to keep, best
        supported first (None: everyone). See :mod:`mocapflow.associate`.

    """

    min_views: int = 2
    min_confidence: float = 0.5
    max_error: float | None = None
    swap_lr: bool = True
    people: int | None = 1

    def __post_init__(self) -> None:
        if self.min_views < 2:
            raise UsageError(f"--min-views must be at least 2, got {self.min_views}")
        if not 0.0 <= self.min_confidence <= 1.0:
            raise UsageError(
                f"--min-confidence {self.min_confidence:g}: a confidence is between 0 and 1; "
                "the default is 0.5"
            )
        if self.max_error is not None and not 0 < self.max_error < float("inf"):
            raise UsageError(
                f"--max-error must be a positive number of pixels, got {self.max_error}"
            )
        if self.people is not None and (
            isinstance(self.people, bool) or not isinstance(self.people, int) or self.people < 1
        ):
            raise UsageError(
                f"--people {self.people}: give a whole number, 1 or more, or all; the default is 1"
            )

    def to_dict(self) -> dict:
        """Return the settings as recorded: those switched off left out, ``people`` as said."""
        out = {k: v for k, v in asdict(self).items() if v is not None}
        out["people"] = "all" if self.people is None else self.people
        return out

    def solver(self) -> dict:
        """Return the keywords of :func:`mocapflow.triangulate.triangulate_frames`."""
        return {k: v for k, v in self.to_dict().items() if k != "people"}


@dataclass(frozen=True)
class FilterSettings:
    """How 3-D trajectories are filled and smoothed (see :func:`mocapflow.filtering.smooth`).

    Attributes
    ----------
    max_gap : int
        Longest gap, in frames, filled by linear interpolation.
    cutoff : float
        Low-pass cut-off, Hz (FreeMoCap's 7 Hz).
    order : int
        Butterworth order (FreeMoCap's 4).

    """

    max_gap: int = 10
    cutoff: float = 7.0
    order: int = 4

    def __post_init__(self) -> None:
        if self.max_gap < 0:
            raise UsageError(f"--max-gap must be 0 or more frames, got {self.max_gap}")
        if self.order < 1:
            raise UsageError(f"--order must be at least 1, got {self.order}")
        if not self.cutoff > 0:
            raise UsageError(f"--cutoff must be a positive frequency in Hz, got {self.cutoff:g}")

    @property
    def padlen(self) -> int:
        """Frames ``scipy.signal.sosfiltfilt`` pads each end of a series with, for this order.

        ``3 * (2 * sections + 1)``, less 3 for an odd order (its first-order
        section), as scipy computes it; a series must be longer than this.
        """
        return padlen_of(self.order)

    def check(self, fps: float, n_frames: int | None = None) -> None:
        """Refuse settings the frame rate or the length of the series cannot carry.

        Raises
        ------
        UsageError
            If the cut-off is not below half the frame rate (Nyquist), or the
            series (``n_frames``) are not longer than the filter's padding.

        """
        if not 0 < self.cutoff < fps / 2:
            raise UsageError(
                f"--cutoff {self.cutoff:g} Hz: must be below half the frame rate "
                f"({fps / 2:g} Hz at {fps:g} fps); lower --cutoff"
            )
        if n_frames is not None and n_frames <= self.padlen:
            fits = [o for o in range(self.order - 1, 0, -1) if padlen_of(o) < n_frames]
            fix = (
                f"lower --order (at most {fits[0]} for {n_frames} frames)"
                if fits
                else f"{n_frames} frames are too few to low-pass (more than {padlen_of(1)} "
                "needed): export the unfiltered points with --group points3d"
            )
            raise UsageError(
                f"--order {self.order}: a Butterworth filter of order {self.order} needs series "
                f"longer than {self.padlen} frames (sosfiltfilt pads each end by {self.padlen}) "
                f"and the store has {n_frames} frames; {fix}"
            )

    def to_dict(self) -> dict:
        """Return the settings."""
        return asdict(self)


def padlen_of(order: int) -> int:
    """Return ``sosfiltfilt``'s padding (frames) for a Butterworth low-pass of ``order``."""
    return 3 * (2 * ((order + 1) // 2) + 1 - order % 2)


def time_chunk_for(chunk_frames: int) -> int:
    """Return the Zarr chunk length along ``time`` for a task length.

    Raises
    ------
    UsageError
        If ``chunk_frames`` is not a positive number of frames.

    """
    if chunk_frames < 1:
        raise UsageError(f"--chunk-frames must be a positive number of frames, got {chunk_frames}")
    return min(chunk_frames, MAX_TIME_CHUNK)


def strings(values) -> np.ndarray:
    """Labels as an object array (fixed-width strings warn under Zarr v3)."""
    return np.array([str(v) for v in values], dtype=object)


def software_attrs() -> dict:
    """Attributes naming the software (movement's convention)."""
    return {"source_software": "mocapflow", "source_version": __version__}


def time_attrs(fps: float | None) -> dict:
    """Return movement's time attributes: ``fps`` and seconds, or frames and no ``fps``."""
    return {"fps": float(fps), "time_unit": "seconds"} if fps else {"time_unit": "frames"}


def time_coords(n_frames: int, fps: float | None) -> np.ndarray:
    """Return the ``time`` coordinate: seconds (frame / fps) if the rate is known, else frames."""
    frames = np.arange(n_frames, dtype=np.int64)
    return frames / float(fps) if fps else frames


@dataclass(frozen=True, eq=False)
class Variable:
    """One array of a 2-D store, declared before anything is written.

    Attributes
    ----------
    dims : tuple of str
        Dimension names.
    shape : tuple of int
        Its shape.
    dtype : str
        NumPy dtype (``"object"`` for labels, stored as Zarr strings).
    fill : Any
        What a frame never written reads as (NaN for the floats of built-in trackers).
    attrs : dict
        Variable attributes (units, description).
    chunks : tuple of int or None
        Zarr chunk shape; ``None`` for Zarr's own choice (coordinates, as xarray
        leaves them).
    values : numpy.ndarray or None
        A coordinate's values; ``None`` for a data variable (nothing written yet).

    """

    dims: tuple[str, ...]
    shape: tuple[int, ...]
    dtype: str
    fill: Any
    attrs: dict
    chunks: tuple[int, ...] | None = None
    values: np.ndarray | None = None

    @property
    def is_coord(self) -> bool:
        """Whether it is a coordinate (it carries its values)."""
        return self.values is not None


def tracks_layout(recording, tracker, time_chunk: int, outputs=None) -> dict[str, Variable]:
    """Declare every array of a 2-D store: the tracker's outputs, ``decoded``, the coordinates.

    :func:`mocapflow.store.create` writes it straight through Zarr, and
    :func:`mocapflow.graph.tracks_template` turns it into the lazy xarray dataset, so the two
    cannot drift.

    Parameters
    ----------
    recording : Recording
        The views and their metadata.
    tracker : Tracker
        The tracker, whose outputs become data variables.
    time_chunk : int
        Zarr chunk length along ``time``.
    outputs : dict of str to Output, optional
        The tracker's outputs, when already read (a :class:`~mocapflow.plan.Plan`
        holds them); default ``tracker.outputs()``.

    Returns
    -------
    dict of str to Variable
        Data variables first, then coordinates, in the order xarray lists them.

    Raises
    ------
    TrackerError
        If two outputs label one dimension differently, an output's fill is not
        a value of its dtype, or an output or dimension takes a name the store
        already uses.

    """
    from .errors import TrackerError

    n_views, n_time = len(recording.views), recording.n_frames
    info = [v.info for v in recording.views]
    per_view = {  # the coordinates along view that every 2-D store carries
        "video_path": strings(v.path for v in recording.views),
        "n_frames": np.array([v.n_frames for v in recording.views], np.int64),
        "video_fps": np.array([i.fps if i else np.nan for i in info], np.float64),
        "width": np.array([i.width if i else 0 for i in info], np.int64),
        "height": np.array([i.height if i else 0 for i in info], np.int64),
        "codec": strings(i.codec if i else "" for i in info),
        SYNC_OFFSET: np.zeros(n_views, np.float64),
    }
    ours = {"view", "time", DECODED, FRAME_TIME, *per_view}
    labels: dict[str, np.ndarray] = {
        "view": strings(recording.names),
        "time": time_coords(n_time, recording.fps),
    }
    data: dict[str, Variable] = {}
    outputs = tracker.outputs() if outputs is None else outputs
    dims = {d for out in outputs.values() for d in out.dims}
    for name, out in outputs.items():
        if clash := ({name, *out.dims} & ours) | ({name} & dims):
            raise TrackerError(
                f"tracker {tracker.name}: output {name!r} uses {sorted(clash)[0]!r}, a name "
                "mocapflow's store already gives a variable or a dimension; rename it"
            )
        if not _fill_fits(out.fill, out.dtype):
            raise TrackerError(
                f"tracker {tracker.name}: output {name!r} is {np.dtype(out.dtype)}, but its "
                f"fill {out.fill!r} is not a value of that type; declare a fill that is "
                "(NaN suits floats only)"
            )
        for dim in out.dims:
            these = strings(out.coords[dim])
            if dim in labels and list(labels[dim]) != list(these):
                raise TrackerError(
                    f"tracker {tracker.name}: coordinate {dim!r} differs between outputs"
                )
            labels[dim] = these
        frame = out.frame_shape()
        data[name] = Variable(
            dims=("view", "time", *out.dims),
            shape=(n_views, n_time, *frame),
            dtype=str(np.dtype(out.dtype)),
            fill=out.fill,
            attrs=dict(out.attrs),
            chunks=(1, time_chunk, *frame),
        )
    data[DECODED] = Variable(
        dims=("view", "time"),
        shape=(n_views, n_time),
        dtype="bool",
        fill=False,
        attrs={"description": "the frame was decoded and tracked"},
        chunks=(1, time_chunk),
    )
    coords = {name: _coord((name,), v) for name, v in labels.items()}
    coords.update((name, _coord(("view",), v)) for name, v in per_view.items())
    coords[SYNC_OFFSET] = replace(coords[SYNC_OFFSET], attrs=dict(SYNC_OFFSET_ATTRS))
    times = np.full((n_views, n_time), np.nan)
    for row, i in zip(times, info, strict=True):
        if i is not None:
            row[: i.n_frames] = i.times[:n_time]
    coords[FRAME_TIME] = replace(_coord(("view", "time"), times), attrs=dict(FRAME_TIME_ATTRS))
    return {**data, **coords}


def _fill_fits(fill, dtype: str) -> bool:
    """Whether a fill is a value of the dtype: any real number for floats, else exactly."""
    import warnings

    dt = np.dtype(dtype)
    try:
        if dt.kind == "f":
            float(fill)
            return True
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return bool(np.array([fill]).astype(dt)[0] == fill)
    except (TypeError, ValueError, OverflowError):
        return False


def _coord(dims: tuple[str, ...], values: np.ndarray) -> Variable:
    kind = values.dtype.kind
    fill = {"O": "", "f": np.nan, "b": False}.get(kind, 0)
    return Variable(dims, values.shape, str(values.dtype), fill, {}, values=values)


def points3d(
    tracks: xr.Dataset,
    views: list[str],
    position,
    error,
    n_views,
    confidence,
    swapped,
    attrs: dict,
    individuals: list[str] | None = None,
) -> xr.Dataset:
    """Build a 3-D group from its arrays (numpy or Dask), with the 2-D store's labels.

    Parameters
    ----------
    tracks : xarray.Dataset
        The 2-D store, for its time, keypoint and individual labels and attributes.
    views : list of str
        The views triangulated.
    position : array
        ``(time, space, keypoint, individual)``, mm.
    error, n_views, confidence : array
        ``(time, keypoint, individual)``: mean reprojection error (px), views
        used, and the mean 2-D confidence of those views.
    swapped : array
        ``(time, view, keypoint, individual)`` bool.
    attrs : dict
        Extra attributes (the settings).
    individuals : list of str, optional
        The individuals' names; default the 2-D store's.

    Returns
    -------
    xarray.Dataset
        movement's 3-D schema (``position``, ``confidence``) plus
        ``reprojection_error``, ``n_views`` and ``lr_swapped``.

    """
    import xarray as xr

    group_attrs = {
        **software_attrs(),
        "ds_type": "poses",
        **time_attrs(tracks.attrs.get("fps")),
        "space_unit": "mm",
        "views": list(views),
        **attrs,
    }
    if "skeleton" in tracks.attrs:
        group_attrs["skeleton"] = tracks.attrs["skeleton"]
    coords = {
        "time": tracks.time.values,
        "space": strings("xyz"),
        "keypoint": tracks.keypoint.values,
        "individual": tracks.individual.values if individuals is None else strings(individuals),
        "view": strings(views),
    }
    per_point = ("time", "keypoint", "individual")
    return xr.Dataset(
        {
            POSITION: (("time", "space", "keypoint", "individual"), position, {"units": "mm"}),
            CONFIDENCE: (
                per_point,
                confidence,
                {"description": "mean 2-D confidence of the views used, NaN where none"},
            ),
            "reprojection_error": (
                per_point,
                error,
                {"units": "pixels", "description": "mean over the views used"},
            ),
            "n_views": (per_point, n_views, {"description": "views used"}),
            "lr_swapped": (
                ("time", "view", "keypoint", "individual"),
                swapped,
                {"description": "the view's left/right labels were swapped before triangulating"},
            ),
        },
        coords=coords,
        attrs=group_attrs,
    )
