"""Lazy Dask graphs over the per-chunk kernels; nothing here computes.

:func:`track`
    The tracker's outputs for a recording, as a Dask-backed Dataset: one task
    per frame range of one video.
:func:`write_tasks`
    One task per frame range that tracks it and writes its region of a store.
:func:`points3d`
    3-D points of a 2-D store: one task per block of frames.
:func:`people_summaries`, :func:`people3d`
    Several people per view: each block's people in short (for linking over
    time), then the people kept, one individual each.
:func:`smoothed`
    Gap-filled, low-passed 3-D points: one task per keypoint's whole series.

:mod:`mocapflow.runner` computes them.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING

import dask
import numpy as np

from . import schema
from .errors import CalibrationError
from .plan import ChunkSpec, Plan, make_plan
from .recording import Recording
from .schema import (
    DECODED,
    DEFAULT_CHUNK_FRAMES,
    DEFAULT_TRACKER,
    FilterSettings,
    TriangulationSettings,
)
from .tasks import run_chunk, track_chunk
from .trackers import Tracker

if TYPE_CHECKING:
    import xarray as xr

# dask.array and xarray load only where a lazy array or Dataset is built: write_tasks
# needs neither, so importing the runner does not load them (the store's template does).

__all__ = [
    "people3d",
    "people_summaries",
    "points3d",
    "smoothed",
    "task_key",
    "track",
    "tracks_template",
    "write_tasks",
]

logger = logging.getLogger(__name__)


def _common_chunks(specs: list[ChunkSpec], n_time: int) -> tuple[int, ...]:
    bounds = sorted({0, n_time, *(s.start for s in specs), *(s.stop for s in specs)})
    return tuple(int(b - a) for a, b in zip(bounds[:-1], bounds[1:], strict=True))


def _pick(result: dict, name: str) -> np.ndarray:
    return result["decoded"] if name == DECODED else result["arrays"][name]


def tracks_template(plan: Plan) -> xr.Dataset:
    """Build the lazy (Dask-backed, never computed) 2-D dataset of a plan's store layout.

    Raises as :func:`mocapflow.schema.tracks_layout` does.

    Returns
    -------
    xarray.Dataset
        Data variables full of their fill values, chunked ``(1, time_chunk, ...)``.

    """
    import dask.array as da
    import xarray as xr

    layout = plan.layout()
    data_vars = {
        name: (v.dims, da.full(v.shape, v.fill, dtype=v.dtype, chunks=v.chunks), dict(v.attrs))
        for name, v in layout.items()
        if not v.is_coord
    }
    coords = {name: (v.dims, v.values, dict(v.attrs)) for name, v in layout.items() if v.is_coord}
    return xr.Dataset(data_vars, coords=coords)


def track(
    recording: Plan | Recording | str | Path,
    tracker: str | Tracker = DEFAULT_TRACKER,
    chunk_frames: int = DEFAULT_CHUNK_FRAMES,
    tracker_params: dict | None = None,
) -> xr.Dataset:
    """Return the tracker's outputs for a recording as a lazy Dask-backed Dataset.

    Each task decodes one frame range of one video and tracks it; the
    Dataset's blocks are slices of those tasks' results. Inspect it
    (``len(ds.__dask_graph__())``) or compute it on your own ``Client``.
    Unreadable views and the frames past a view's end hold the fill value.

    Parameters
    ----------
    recording : Plan, Recording or path
        The recording, or a plan, which then says the rest.
    tracker, chunk_frames, tracker_params
        Without a plan, what :func:`mocapflow.plan.make_plan` makes one of.

    Returns
    -------
    xarray.Dataset
        Dims ``(view, time, ...)``, as :func:`mocapflow.process` writes them.

    """
    import dask.array as da

    if isinstance(recording, Plan):
        plan = recording
    else:
        plan = make_plan(recording, tracker, chunk_frames, tracker_params)
    rec, trk, specs, outputs = plan.recording, plan.tracker, plan.specs, plan.outputs
    ds = tracks_template(plan)
    common = _common_chunks(specs, rec.n_frames)
    by_view: dict[int, list[ChunkSpec]] = {}
    for s in specs:
        by_view.setdefault(s.view_index, []).append(s)
    results = {s.key: dask.delayed(track_chunk, pure=True)(s, trk) for s in specs}
    for name in [*outputs, DECODED]:
        var = ds[name]
        frame_shape = var.shape[2:]
        fill = var.dtype.type(False) if name == DECODED else outputs[name].fill
        rows = []
        for v in range(len(rec.views)):
            pieces = [
                da.from_delayed(
                    dask.delayed(_pick, pure=True)(results[s.key], name),
                    (s.n_frames, *frame_shape),
                    var.dtype,
                )
                for s in by_view.get(v, [])
            ]
            covered = sum(p.shape[0] for p in pieces)
            if covered < rec.n_frames:
                pieces.append(
                    da.full((rec.n_frames - covered, *frame_shape), fill, dtype=var.dtype)
                )
            rows.append(da.concatenate(pieces, axis=0).rechunk({0: common}))
        ds[name] = (var.dims, da.stack(rows, axis=0), var.attrs)
    ds.attrs.update(plan.attrs())
    return ds


def task_key(spec: ChunkSpec, token: str) -> str:
    """Return a tracking task's key: ``track_<view>-<token>-<view index>-<start>``.

    Dask groups tasks by the key's first ``-``-separated word (``key_split``), so
    the view joins the stage with ``_`` and loses any character but ``[A-Za-z0-9_]``;
    the view's index keeps the key unique when two names clean up alike.
    """
    view = re.sub(r"[^A-Za-z0-9_]", "_", spec.view)
    return f"track_{view}-{token}-{spec.view_index}-{spec.start}"


def write_tasks(
    plan: Plan,
    specs: list[ChunkSpec],
    store: str | Path,
    decode_threads: int | None = None,
) -> list:
    """Return one ``dask.delayed`` task per chunk that tracks it and writes its region.

    Keys name the stage, the view and the store (``track_cam2-<store>-1-<start>``,
    see :func:`task_key`), so the dashboard tells views apart and two stores on
    one client never collide.

    Longer tasks run first: each carries a ``priority`` annotation of the
    frames it tracks, warm-up included (the frames decoded from the keyframe
    before them are left out), counted from the longest task's down, so
    the longest are 0 and never outrank other clients' work on a shared
    scheduler. The short tail task of each video then fills the gaps at the
    end instead of leaving one worker with a long task while the others idle.

    Parameters
    ----------
    plan : Plan
        The run's plan: its tracker and time chunk.
    specs : list of ChunkSpec
        The tasks to run (the plan's, less those done).
    store : path
        The store the tasks write into.
    decode_threads : int, optional
        Passed to :func:`~mocapflow.tasks.run_chunk` (None: the worker's
        ``MOCAPFLOW_DECODE_THREADS``, which local worker processes set to 1).

    Returns
    -------
    list of dask.delayed.Delayed
        One per spec, in the same order; each returns the task's ledger record.

    """
    run = dask.delayed(run_chunk, pure=False)
    token = dask.base.tokenize(str(Path(store).resolve()))[:8]
    longest = max((s.n_frames + s.warmup for s in specs), default=0)
    tasks = []
    for s in specs:
        with dask.annotate(priority=s.n_frames + s.warmup - longest):
            key = task_key(s, token)
            tasks.append(
                run(s, plan.tracker, str(store), plan.time_chunk, decode_threads, dask_key_name=key)
            )
    return tasks


def _matched(store, tracks: xr.Dataset, cameras: dict, settings: TriangulationSettings):
    """Return the views with a camera, and their CameraSet.

    Raises
    ------
    CalibrationError
        If fewer than ``min_views`` views have a camera (the message lists both).

    """
    from .triangulate import CameraSet

    names = [str(v) for v in tracks.view.values]
    matched = [n for n in names if n in cameras]
    missing = [n for n in names if n not in cameras]
    if len(names) < settings.min_views:
        raise CalibrationError(
            f"{store}: the store holds {len(names)} view(s) ({', '.join(names)}); "
            f"triangulation needs at least {settings.min_views} cameras seeing the same points"
        )
    if len(matched) < settings.min_views:
        raise CalibrationError(
            f"{store}: the calibration has cameras {sorted(cameras)} but the views are "
            f"{names}; cameras are matched by name, so rename them or use the right file"
        )
    if missing:
        logger.warning("views %s have no camera in the calibration; left out", missing)
    return matched, CameraSet.from_cameras([cameras[n] for n in matched])


def robust(settings: TriangulationSettings, cams) -> TriangulationSettings:
    """Return the settings with ``max_error`` set: by default a fraction of the image diagonal.

    See :data:`mocapflow.associate.ROBUST_FRACTION` (as Pose2Sim does, views are
    dropped point by point while the error is over it).
    """
    from dataclasses import replace

    from .associate import ROBUST_FRACTION, default_threshold

    if settings.max_error is not None:
        return settings
    return replace(settings, max_error=round(default_threshold(cams, ROBUST_FRACTION), 2))


def _blocks(tracks: xr.Dataset, views: list[str], frames_per_task: int):
    """Return the 2-D position and confidence of ``views``, in blocks of frames (all else whole)."""
    sel = tracks.sel(view=views)
    pos = sel.position.data.rechunk({0: -1, 1: frames_per_task, 2: -1, 3: -1, 4: -1})
    conf = sel.confidence.data.rechunk({0: -1, 1: frames_per_task, 2: -1, 3: -1})
    return pos, conf


def points3d(
    store: str | Path,
    tracks: xr.Dataset,
    cameras: dict,
    settings: TriangulationSettings,
    frames_per_task: int = schema.TRIANGULATE_FRAMES,
) -> xr.Dataset:
    """Return the lazy 3-D points of a 2-D store: one task per block of frames.

    Each individual of the 2-D store is triangulated from the same individual
    in every view: right for one person per view. A store with several
    detections per view goes through :func:`people_summaries` and
    :func:`people3d` instead.

    Parameters
    ----------
    store : path
        The store (names the tasks).
    tracks : xarray.Dataset
        Its 2-D tracks (``position`` and ``confidence``), opened lazily.
    cameras : dict of str to Camera
        Calibrated cameras by view name; views without a camera are left out.
    settings : TriangulationSettings
        See :func:`mocapflow.triangulate.triangulate_frames`.
    frames_per_task : int
        Frames per task.

    Returns
    -------
    xarray.Dataset
        See :func:`mocapflow.schema.points3d`.

    Raises
    ------
    CalibrationError
        If fewer than ``min_views`` views have a camera (the message lists both).

    """
    import dask.array as da

    from .triangulate import triangulate_frames

    matched, cams = _matched(store, tracks, cameras, settings)
    settings = robust(settings, cams)
    pos, conf = _blocks(tracks, matched, frames_per_task)
    keypoints = [str(k) for k in tracks.keypoint.values]
    kwargs = settings.solver()

    def block(p: np.ndarray, c: np.ndarray) -> np.ndarray:
        xyz, err, n, swapped, conf = triangulate_frames(
            p, cams, c[:, :, 0], keypoints=keypoints, **kwargs
        )
        return _pack(xyz, err, n, conf, swapped)

    t, k, i = pos.chunks[1], pos.chunks[3], pos.chunks[4]
    packed = da.map_blocks(
        block,
        pos,
        conf[:, :, None],
        dtype=np.float64,
        chunks=(t, (6 + len(matched),), k, i),
        drop_axis=0,
        name="triangulate-" + dask.base.tokenize(str(store), pos.name, sorted(kwargs.items())),
    )
    return _unpack(tracks, matched, cams, packed, settings, None)


def _pack(xyz, err, n, conf, swapped) -> np.ndarray:
    """One float64 array ``(time, 6 + view, keypoint, individual)`` of a block's results."""
    extra = [err[:, None], n[:, None], conf[:, None], swapped]
    return np.concatenate([xyz, *(np.asarray(e, np.float64) for e in extra)], axis=1)


def _unpack(tracks, views, cams, packed, settings, individuals) -> xr.Dataset:
    """Return the 3-D group of :func:`_pack`'s blocks, with the settings and image diagonal.

    The diagonal (median over the cameras) is the one the robust step's default
    threshold scales with; the verdict on the group scales with it too.
    """
    import dask.array as da

    from .associate import image_diagonals

    diagonal = float(np.median(image_diagonals(cams)))
    return schema.points3d(
        tracks,
        views,
        packed[:, :3],
        packed[:, 3],
        da.nan_to_num(packed[:, 4]).astype(np.int8),
        packed[:, 5],
        da.nan_to_num(packed[:, 6:]).astype(bool),
        {"triangulation": settings.to_dict(), "image_diagonal": diagonal},
        individuals=individuals,
    )


def _people_of(p: np.ndarray, c: np.ndarray, cams, keypoints, settings: TriangulationSettings):
    """One block's people, frame by frame (:func:`mocapflow.associate.associate_block`)."""
    from .associate import associate_block

    return associate_block(
        p,
        c,
        cams,
        keypoints=keypoints,
        min_views=settings.min_views,
        min_confidence=settings.min_confidence,
        max_error=settings.max_error,
        swap_lr=settings.swap_lr,
    )


def _summary(p, c, cams, keypoints, settings, bones) -> tuple[np.ndarray, ...]:
    """Return what linking reads of a block: skeletons, views, mean error, bone lengths."""
    import warnings

    from .associate import skeleton_lengths, summarize_people

    people = _people_of(p, c, cams, keypoints, settings)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a person-frame with no point
        error = np.nanmean(people.reprojection_error, axis=1)
    points = summarize_people(people.position)
    return points, people.group_views, error, skeleton_lengths(points, bones)


def people_summaries(
    store: str | Path,
    tracks: xr.Dataset,
    cameras: dict,
    settings: TriangulationSettings,
    frames_per_task: int = schema.TRIANGULATE_FRAMES,
) -> list:
    """Return one task per block of frames: its people, found and triangulated, in short.

    Each task associates the block's detections across views and triangulates
    each person (:func:`mocapflow.associate.associate_block`), and returns what
    :func:`mocapflow.associate.link_people` reads: ``(time, person, keypoint,
    3)`` float32 skeletons, ``(time, person)`` views and mean reprojection
    error, and ``(time, person, bone)`` lengths of the store's skeleton. The
    runner links them in order, then :func:`people3d` writes the people it keeps.

    Returns
    -------
    list of dask.delayed.Delayed
        In frame order.

    """
    from .associate import bone_index

    matched, cams = _matched(store, tracks, cameras, settings)
    settings = robust(settings, cams)
    pos, conf = _blocks(tracks, matched, frames_per_task)
    keypoints = [str(k) for k in tracks.keypoint.values]
    bones = bone_index(keypoints, tracks.attrs.get("skeleton"))
    summary = dask.delayed(_summary, pure=True)
    return [
        summary(p, c, cams, keypoints, settings, bones)
        for p, c in zip(pos.to_delayed().ravel(), conf.to_delayed().ravel(), strict=True)
    ]


def _people_block(p, c, labels, index, n_out, cams, keypoints, settings, bones, medians):
    from .associate import by_track, drop_implausible

    people = _people_of(p, c, cams, keypoints, settings)
    packed = _pack(
        people.position,
        people.reprojection_error,
        people.n_views,
        people.confidence,
        people.lr_swapped,
    )
    out = np.where(labels >= 0, index[np.maximum(labels, 0)], -1)
    packed = by_track(packed, out, n_out)  # (time, 6 + view, keypoint, individual)
    drop = drop_implausible(packed[:, :3], bones, medians)  # (time, keypoint, individual)
    packed[:, :4] = np.where(drop[:, None], np.nan, packed[:, :4])
    packed[:, 4] = np.where(drop, 0, packed[:, 4])
    packed[:, 5] = np.where(drop, np.nan, packed[:, 5])
    return packed


def people3d(
    store: str | Path,
    tracks: xr.Dataset,
    cameras: dict,
    settings: TriangulationSettings,
    labels: np.ndarray,
    kept: list[int],
    medians: np.ndarray | None = None,
    frames_per_task: int = schema.TRIANGULATE_FRAMES,
) -> xr.Dataset:
    """Return the lazy 3-D points of the people kept, one individual each.

    Each task associates and triangulates its block again (the same pure
    steps as :func:`people_summaries`, so the same people) and puts each
    person in the individual its track was given: ``person0`` is
    ``kept[0]``, and so on.

    Parameters
    ----------
    store, tracks, cameras, settings, frames_per_task
        As for :func:`people_summaries`.
    labels : numpy.ndarray
        ``(time, person)`` track labels from :func:`mocapflow.associate.link_people`.
    kept : list of int
        The track labels to write, in order (at least one individual is written,
        all NaN where nobody was kept).
    medians : numpy.ndarray, optional
        ``(kept, bone)`` each person's median lengths of the store's skeleton
        bones (:func:`mocapflow.associate.bone_medians`): keypoints that break
        them are dropped (:func:`mocapflow.associate.drop_implausible`).

    Returns
    -------
    xarray.Dataset
        See :func:`mocapflow.schema.points3d`; individuals ``person0``, ``person1``...

    """
    import dask.array as da

    from .associate import bone_index

    matched, cams = _matched(store, tracks, cameras, settings)
    settings = robust(settings, cams)
    pos, conf = _blocks(tracks, matched, frames_per_task)
    keypoints = [str(k) for k in tracks.keypoint.values]
    bones = bone_index(keypoints, tracks.attrs.get("skeleton"))
    if medians is None or not len(bones):
        medians = np.full((len(kept), len(bones)), np.nan)
    medians = np.vstack([medians, np.full((max(1 - len(kept), 0), len(bones)), np.nan)])
    index = np.full(max(int(labels.max(initial=-1)) + 1, 1), -1, np.int64)
    index[np.asarray(kept, np.int64)] = np.arange(len(kept))
    n_out = max(len(kept), 1)
    block = dask.delayed(_people_block, pure=True)
    parts, start = [], 0
    for p, c, n in zip(
        pos.to_delayed().ravel(), conf.to_delayed().ravel(), pos.chunks[1], strict=True
    ):
        here = labels[start : start + n]
        part = block(p, c, here, index, n_out, cams, keypoints, settings, bones, medians)
        shape = (n, 6 + len(matched), len(keypoints), n_out)
        parts.append(da.from_delayed(part, shape, dtype=np.float64))
        start += n
    packed = da.concatenate(parts, axis=0)
    return _unpack(tracks, matched, cams, packed, settings, [f"person{i}" for i in range(n_out)])


def smoothed(points: xr.Dataset, settings: FilterSettings, fps: float | None = None) -> xr.Dataset:
    """Return lazily gap-filled and low-passed 3-D points, one task per keypoint.

    Each task holds whole time series (chunked by keypoint, never by time), so the
    result equals :func:`mocapflow.filtering.smooth` on the whole array.

    Parameters
    ----------
    points : xarray.Dataset
        A ``points3d`` group.
    settings : FilterSettings
        The filter.
    fps : float, optional
        Frame rate; default the group's ``fps`` attribute.

    Returns
    -------
    xarray.Dataset
        The same schema, ``position`` filtered.

    """
    import dask.array as da

    from .errors import UsageError
    from .filtering import smooth

    fps = float(fps or points.attrs.get("fps") or 0)
    if fps <= 0:
        raise UsageError("the store has no frame rate; pass fps")
    settings.check(fps, points.sizes["time"])
    pos = points.position.data.rechunk({0: -1, 1: -1, 2: 1, 3: -1})
    filtered = da.map_blocks(smooth, pos, fps=fps, **settings.to_dict(), dtype=np.float64)
    out = points.copy()
    out["position"] = (points.position.dims, filtered, dict(points.position.attrs))
    applied = {
        **settings.to_dict(),
        "fps": fps,
        "filter": "Butterworth low-pass, zero-phase (scipy.signal.sosfiltfilt)",
        "padlen": settings.padlen,  # runs no longer than this: padded by their length - 1
    }
    out.attrs = {**points.attrs, "filter": applied}
    return out
