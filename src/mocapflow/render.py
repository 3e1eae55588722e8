"""Render: each view's video with its 2-D detections and the 3-D skeleton drawn over it.

A render runs the way tracking does: the frames of every view are cut into
ranges that start on the source's keyframes, and each range is one task on the
cluster. A task decodes its range (:func:`mocapflow.video.iter_range`), draws
on every frame (:func:`draw_frame`, numpy in and out) and encodes its own H.264
segment. The segments of a view are then joined into one MP4 by copying their
packets, without decoding or encoding again (:func:`join_segments`): each
segment starts with a keyframe of its own, so the join is exact and cheap, and
a render of 16 cameras keeps every core busy.

What a frame shows:

- the view's 2-D detections: hollow circles and thin bones, white;
- the 3-D skeleton of every person, reprojected through the view's camera as
  calibrated (the 3-D group records the cameras): bones in the person's colour
  (:mod:`mocapflow.palette`), and each point filled with the colour of its
  reprojection error in this view, its distance to the view's nearest
  detection of the same keypoint (:func:`error_colour`: green at 0 px, yellow at
  half :data:`~mocapflow.schema.RENDER_ERROR_PX`, red at it and above, grey
  where the view has no detection of it);
- a caption: the view's name in its colour, the frame number and its time.

Views whose clocks were aligned (``sync``) are drawn against the 3-D frame
they correspond to, by time (:func:`three_d_frames` inverts
:func:`mocapflow.sync.alignment`, from the 3-D group's own sync record): frame ``i`` of a view
with offset ``k`` at the reference's rate shows the 3-D of frame ``i + k``
(the 3-D time axis is the reference view's); a view at another frame rate, or
with irregular timestamps, shows the 3-D frame nearest its frame's instant.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from . import ledger
from . import store as _store
from .errors import MocapflowError, UsageError, VideoError
from .palette import person_colours, rgb, view_colours
from .schema import RENDER_ERROR_PX, RENDER_FRAMES, RENDER_THUMBNAILS, RENDER_X264

if TYPE_CHECKING:
    from distributed import Client

    from .cluster.session import ClusterOptions, Session

__all__ = [
    "RenderResult",
    "draw_frame",
    "error_colour",
    "find_video",
    "join_segments",
    "project_points",
    "render_ranges",
    "render_store",
    "three_d_frames",
]

logger = logging.getLogger(__name__)

#: Grey, for a point this view has no detection of (BGR).
NO_ERROR = (160, 160, 160)
#: A thumbnail's longer side, pixels.
THUMBNAIL_PX = 480
#: The detections' colour (BGR).
DETECTION = (255, 255, 255)


def _bgr(colour: str) -> tuple[int, int, int]:
    r, g, b = rgb(colour)
    return b, g, r


def error_colour(error_px: float, scale: float = RENDER_ERROR_PX) -> tuple[int, int, int]:
    """Return the BGR colour of a reprojection error: green, through yellow, to red at ``scale``.

    Parameters
    ----------
    error_px : float
        The error in pixels; NaN for a point the view has no detection of.
    scale : float
        The error drawn fully red.

    Returns
    -------
    tuple of int
        ``(b, g, r)`` in 0-255; :data:`NO_ERROR` for NaN.
    """
    if not np.isfinite(error_px):
        return NO_ERROR
    x = min(max(float(error_px) / scale, 0.0), 1.0)
    red = int(round(255 * min(1.0, 2 * x)))
    green = int(round(255 * min(1.0, 2 * (1 - x))))
    return 0, green, red


def project_points(camera: dict, points: np.ndarray) -> np.ndarray:
    """Project 3-D points through a camera as calibrated.

    Parameters
    ----------
    camera : dict
        The camera as a 3-D group records it (anipose's table: ``matrix``,
        ``distortions``, ``rotation``, ``translation``).
    points : numpy.ndarray
        ``(..., 3)`` world points; NaN rows stay NaN.

    Returns
    -------
    numpy.ndarray
        ``(..., 2)`` pixels.
    """
    from .calib.camera import Camera

    cam = Camera.from_dict(camera)
    pts = np.asarray(points, np.float64)
    out = np.full(pts.shape[:-1] + (2,), np.nan)
    flat, where = pts.reshape(-1, 3), out.reshape(-1, 2)
    ok = np.isfinite(flat).all(axis=1)
    if ok.any():
        # in front of the camera only: a point behind it has no place in the image
        depth = cam.to_camera(flat[ok])[:, 2]
        front = np.flatnonzero(ok)[depth > 0]
        if len(front):
            where[front] = cam.project(flat[front])
    return out


def point_errors(projected: np.ndarray, detections: np.ndarray) -> np.ndarray:
    """Return each projected point's distance to the view's nearest detection of its keypoint.

    Parameters
    ----------
    projected : numpy.ndarray
        ``(keypoint, 2, person)`` pixels.
    detections : numpy.ndarray
        ``(keypoint, 2, slot)`` pixels, NaN where not found.

    Returns
    -------
    numpy.ndarray
        ``(keypoint, person)`` pixels, NaN where the view has no detection of it.
    """
    diff = projected[:, :, :, None] - detections[:, :, None, :]  # (k, 2, person, slot)
    dist = np.sqrt((diff**2).sum(axis=1))
    dist = np.where(np.isfinite(dist), dist, np.inf).min(axis=-1)
    return np.where(np.isfinite(dist), dist, np.nan)


def _pt(p: np.ndarray) -> tuple[int, int]:
    return int(round(float(p[0]))), int(round(float(p[1])))


def _drawable(p: np.ndarray, width: int, height: int) -> bool:
    margin = 4 * max(width, height)  # cv2 clips lines, but not coordinates past int range
    return bool(np.isfinite(p).all() and -margin < p[0] < margin and -margin < p[1] < margin)


def draw_frame(
    frame: np.ndarray,
    detections: np.ndarray,
    projected: np.ndarray,
    errors: np.ndarray,
    bones: np.ndarray,
    people: list[tuple[int, int, int]],
    caption: str,
    caption_colour: tuple[int, int, int],
) -> np.ndarray:
    """Draw one frame's detections, reprojected skeleton and caption, in place.

    Parameters
    ----------
    frame : numpy.ndarray
        ``(height, width, 3)`` BGR, drawn on.
    detections : numpy.ndarray
        ``(keypoint, 2, slot)`` pixels of this view's detections, NaN where none.
    projected : numpy.ndarray
        ``(keypoint, 2, person)`` pixels of the 3-D points reprojected.
    errors : numpy.ndarray
        ``(keypoint, person)`` reprojection errors, pixels (:func:`point_errors`).
    bones : numpy.ndarray
        ``(bone, 2)`` keypoint indices.
    people : list of tuple
        Each person's BGR colour.
    caption : str
        The caption's text (view, frame, time).
    caption_colour : tuple of int
        The view's BGR colour, for the caption's box.

    Returns
    -------
    numpy.ndarray
        ``frame``.
    """
    import cv2

    height, width = frame.shape[:2]
    unit = max(1, round(np.hypot(width, height) / 600))
    for s in range(detections.shape[-1]):
        pts = detections[:, :, s]
        for a, b in bones:
            if _drawable(pts[a], width, height) and _drawable(pts[b], width, height):
                cv2.line(frame, _pt(pts[a]), _pt(pts[b]), DETECTION, 1, cv2.LINE_AA)
        for p in pts:
            if _drawable(p, width, height):
                cv2.circle(frame, _pt(p), 3 * unit, DETECTION, 1, cv2.LINE_AA)
    for j in range(projected.shape[-1]):
        pts = projected[:, :, j]
        colour = people[j % len(people)]
        for a, b in bones:
            if _drawable(pts[a], width, height) and _drawable(pts[b], width, height):
                cv2.line(frame, _pt(pts[a]), _pt(pts[b]), colour, unit + 1, cv2.LINE_AA)
        for k, p in enumerate(pts):
            if _drawable(p, width, height):
                cv2.circle(frame, _pt(p), 2 * unit + 1, error_colour(errors[k, j]), -1)
    scale = 0.5 * unit
    (tw, th), base = cv2.getTextSize(caption, cv2.FONT_HERSHEY_SIMPLEX, scale, unit)
    pad = 4 * unit
    cv2.rectangle(frame, (0, 0), (tw + 2 * pad, th + base + 2 * pad), caption_colour, -1)
    cv2.putText(frame, caption, (pad, pad + th), cv2.FONT_HERSHEY_SIMPLEX, scale,
                (255, 255, 255), unit, cv2.LINE_AA)  # fmt: skip
    return frame


def three_d_frames(source_index: np.ndarray, n_frames: int) -> np.ndarray:
    """Return the 3-D frame each of a view's frames shows (-1 where none).

    Parameters
    ----------
    source_index : numpy.ndarray
        Per 3-D (reference) frame, the view's fractional frame showing that
        instant, NaN where none: a row of :attr:`mocapflow.sync.Alignment.index`.
    n_frames : int
        The view's frames.

    Returns
    -------
    numpy.ndarray
        ``(n_frames,)`` int: the nearest 3-D frame by time, -1 for frames
        before the first 3-D frame or after the last.
    """
    src = np.asarray(source_index, np.float64)
    ref = np.flatnonzero(np.isfinite(src))
    if len(ref) == 0:
        return np.full(n_frames, -1, np.int64)
    at = src[ref]
    frames = np.arange(n_frames, dtype=np.float64)
    index = np.interp(frames, at, ref)
    if len(ref) > 1:  # past either end, on at the rate there (interp would clamp)
        first = (ref[1] - ref[0]) / (at[1] - at[0])
        last = (ref[-1] - ref[-2]) / (at[-1] - at[-2])
        index = np.where(frames < at[0], ref[0] + (frames - at[0]) * first, index)
        index = np.where(frames > at[-1], ref[-1] + (frames - at[-1]) * last, index)
    out = np.round(index)
    return np.where((out >= 0) & (out < len(src)), out, -1).astype(np.int64)


def render_ranges(keyframes: np.ndarray, n_frames: int, chunk_frames: int) -> list[tuple[int, int]]:
    """Cut ``n_frames`` into ranges of about ``chunk_frames`` that start on keyframes.

    A range ends at the first keyframe at least ``chunk_frames`` after its start,
    so every segment decodes from its own keyframe; with keyframes too far
    apart (one GOP), ranges are cut every ``chunk_frames`` frames regardless.

    Parameters
    ----------
    keyframes : numpy.ndarray
        The source's keyframe indices.
    n_frames : int
        Frames in the video.
    chunk_frames : int
        Frames per range, at least.

    Returns
    -------
    list of tuple of int
        ``(start, stop)`` ranges covering ``0..n_frames``.
    """
    if chunk_frames < 1:
        raise UsageError(f"--chunk-frames must be at least 1, got {chunk_frames}")
    keys = np.asarray(keyframes, int)
    keys = keys[(keys > 0) & (keys < n_frames)]
    cuts, start = [0], 0
    while start + chunk_frames < n_frames:
        later = keys[keys >= start + chunk_frames]
        if len(later) and later[0] < start + 2 * chunk_frames:
            start = int(later[0])
        else:
            start = start + chunk_frames
        cuts.append(start)
    cuts.append(n_frames)
    return [(a, b) for a, b in zip(cuts[:-1], cuts[1:], strict=True) if b > a]


def _render_segment(task: dict) -> dict:
    """One task: decode a range of one view, draw on its frames, encode its segment.

    Returns ``{"view", "start", "frames", "path"}``, or ``{"view", "error"}`` when the
    video cannot be read (the view fails; the others go on).
    """
    from .video import VideoWriter, iter_range

    people = [tuple(c) for c in task["people"]]
    path = Path(task["path"])
    n = 0
    try:
        gop = max(task["stop"] - task["start"], 1)  # one keyframe: the segment's first frame
        with VideoWriter(
            path, task["fps"], "h264", gop=gop, options=RENDER_X264, opencv_colour=True
        ) as w:
            frames = iter_range(
                task["video"], task["start"], task["stop"], task["start_pts"], task["seek_pts"]
            )
            for i, frame in enumerate(frames):
                index = task["start"] + i
                frame = np.array(frame)  # writable
                caption = f"{task['view']}  frame {index}  {task['times'][i]:.3f} s"
                draw_frame(
                    frame,
                    task["detections"][i],
                    task["projected"][i],
                    task["errors"][i],
                    task["bones"],
                    people,
                    caption,
                    tuple(task["caption_colour"]),
                )
                w.write(frame)
                n += 1
                if i in task["thumbnails"]:
                    import cv2

                    scale = min(1.0, THUMBNAIL_PX / max(frame.shape[:2]))
                    small = cv2.resize(frame, None, fx=scale, fy=scale,
                                       interpolation=cv2.INTER_AREA)  # fmt: skip
                    cv2.imwrite(str(task["thumbnails"][i]), small, [cv2.IMWRITE_JPEG_QUALITY, 80])
    except MocapflowError as exc:
        return {"view": task["view"], "error": str(exc)}
    return {"view": task["view"], "start": task["start"], "frames": n, "path": str(path)}


def join_segments(segments: list[str | Path], out: str | Path) -> int:
    """Join H.264 segments into one MP4 by copying their packets (no decoding, no encoding).

    Each segment starts on a keyframe of its own, so the joined stream decodes
    as the segments do; its timestamps are shifted to follow each other.

    Parameters
    ----------
    segments : list of path
        The segments, in order; each written by :class:`mocapflow.video.VideoWriter`.
    out : path
        The MP4 to write.

    Returns
    -------
    int
        Packets (frames) written.
    """
    import av

    n = 0
    first = av.open(str(segments[0]))
    try:
        # MP4 index first (faststart), as VideoWriter writes: a cut file still plays
        output = av.open(str(out), mode="w", options={"movflags": "+faststart"})
        try:
            stream = output.add_stream_from_template(first.streams.video[0])
            offset = 0
            for seg in segments:
                with av.open(str(seg)) as source:
                    src = source.streams.video[0]
                    step = int(round(1 / (float(src.guessed_rate or src.average_rate) *
                                          src.time_base)))  # fmt: skip
                    count = 0
                    for packet in source.demux(src):
                        if packet.dts is None:  # the flush packet
                            continue
                        packet.pts += offset
                        packet.dts += offset
                        packet.stream = stream
                        output.mux(packet)
                        count += 1
                    offset += count * step
                    n += count
        finally:
            output.close()
    finally:
        first.close()
    return n


@dataclass
class RenderResult:
    """What ``render`` wrote.

    Attributes
    ----------
    store : Path
        The store rendered.
    group : str
        The 3-D group drawn.
    videos : dict of str to Path
        Per view, its rendered video.
    thumbnails : dict of str to list of Path
        Per view, a few rendered frames (JPEG) for the run report.
    failed : dict of str to str
        Per view that could not be rendered, why.
    tasks : int
        Tasks run on the cluster.
    """

    store: Path
    group: str | None
    videos: dict[str, Path] = field(default_factory=dict)
    thumbnails: dict[str, list[Path]] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    tasks: int = 0


def find_video(store: Path, recorded: str, videos: Path | None = None) -> Path:
    """Find a view's video: in ``videos`` when given, else where the store says, else beside it.

    A store records its videos' paths as the run was given them, which may be
    relative to the folder it ran in; the recording's folder (the store's by
    default) and its ``synchronized_videos`` are tried next.

    Raises
    ------
    VideoError
        Naming where it looked, and the fix (``--videos DIR``).
    """
    name = Path(recorded).name
    if videos is not None:
        candidates = [Path(videos) / name]
    else:
        here = store.resolve().parent
        candidates = [Path(recorded), here / name, here / "synchronized_videos" / name]
    for path in candidates:
        if path.is_file():
            return path
    raise VideoError(
        f"{candidates[0]}: the video is not there"
        + (" (nor beside the store)" if videos is None else "")
        + "; give the folder that holds it with --videos DIR"
    )


def render_store(
    store: str | Path,
    *,
    views: list[str] | None = None,
    group: str | None = None,
    out: str | Path | None = None,
    overwrite: bool = False,
    chunk_frames: int = RENDER_FRAMES,
    videos: str | Path | None = None,
    cluster: ClusterOptions | Session | Client | str | None = None,
) -> RenderResult:
    """Render each view's video with its detections and the reprojected 3-D skeleton.

    Parameters
    ----------
    store : path
        A mocapflow store; its views' videos must be where the store says.
    views : list of str, optional
        The views to render; default all.
    group : str, optional
        The 3-D group drawn; default ``filtered`` when whole, else ``points3d``;
        a store without 3-D points is drawn with its detections only.
    out : path, optional
        The folder for the videos (``<view>.mp4``); default ``<name>.render``
        beside the store.
    overwrite : bool
        Replace videos already there; without it, a video there stops the
        render before any work.
    chunk_frames : int
        Frames per task, at least (ranges start on the source's keyframes).
    videos : path, optional
        The folder holding the videos, when they are no longer where the store
        says (see :func:`find_video`).
    cluster : ClusterOptions, Session, Client or str, optional
        Where to compute.

    Returns
    -------
    RenderResult
        The videos, thumbnails and failures.

    Raises
    ------
    UsageError
        For a view the store does not hold, or videos already there.
    StoreError
        For a store that is not one, or a 3-D group that is not whole.
    """
    import dask

    from .cluster.session import Session, Work
    from .export import export_stem
    from .runner import _watch
    from .sync import alignment
    from .video import probe

    store = Path(store)
    tracks = _store.open_tracks(store, dask=False)
    names = [str(v) for v in tracks.view.values]
    chosen = names if not views else list(views)
    unknown = [v for v in chosen if v not in names]
    if unknown:
        raise UsageError(
            f"--views {','.join(unknown)}: no such view in {store}; "
            f"its views are {', '.join(names)}"
        )
    source = ledger.choose_group(store, group, required=False)
    folder = Path(out) if out is not None else store.parent / f"{export_stem(store)}.render"
    targets = {v: folder / f"{v}.mp4" for v in chosen}
    there = [str(p) for p in targets.values() if p.exists()]
    if there and not overwrite:
        raise UsageError(
            f"{there[0]} exists{f' (and {len(there) - 1} more)' if len(there) > 1 else ''}; "
            "render into another --out, or replace them with --overwrite"
        )
    folder.mkdir(parents=True, exist_ok=True)
    result = RenderResult(store, source)

    keypoints = [str(k) for k in tracks.keypoint.values]
    from .associate import bone_index

    bones = bone_index(keypoints, tracks.attrs.get("skeleton"))
    colours = view_colours(names)
    points = cameras = None
    people_bgr: list[tuple[int, int, int]] = [(255, 255, 255)]
    aligned: dict = {}  # the 3-D group's sync record: its time axis is the reference's
    if source is not None:
        ds = _store.open_group(store, source)
        cameras = ds.attrs.get("cameras")
        if not cameras:
            logger.warning(
                "%s/%s records no cameras (triangulated by an older mocapflow): only the "
                "detections are drawn; triangulate again to draw the 3-D",
                store,
                source,
            )
        else:
            where = [keypoints.index(str(k)) for k in ds.keypoint.values]
            pos = ds.position.values  # (time, 3, k3d, person)
            points = np.full(pos.shape[:2] + (len(keypoints),) + pos.shape[3:], np.nan)
            points[:, :, where] = pos
            people_bgr = [_bgr(c) for c in person_colours(map(str, ds.individual.values)).values()]
            aligned = dict(ds.attrs.get("sync") or {})

    scratch = Path(tempfile.mkdtemp(prefix=".segments-", dir=folder))
    tasks, plan = [], {}
    fps_all = float(tracks.attrs.get("fps") or 30.0)
    # the 3-D time axis is the reference's, as the 3-D group's own sync record aligned it
    offsets = {k: v for k, v in (aligned.get("offsets") or {}).items() if v is not None}
    shift = alignment(tracks, offsets, aligned.get("reference")) if aligned else None
    for view in chosen:
        i = names.index(view)
        try:
            video = str(find_video(store, str(tracks.video_path.values[i]), videos))
            info = probe(video)
        except MocapflowError as exc:
            result.failed[view] = str(exc)
            continue
        n = min(int(info.n_frames), int(tracks.sizes["time"]))
        one = tracks.isel(view=i, time=slice(0, n))  # this view's frames only
        det = one.position.values.transpose(0, 2, 1, 3)  # (time, k, 2, slot)
        times = np.asarray(one.frame_time.values, float)
        times = np.where(np.isfinite(times), times, np.arange(n) / (info.fps or fps_all))
        if points is not None and view in cameras:
            index = np.arange(n) if shift is None else three_d_frames(shift.index[i], n)
            inside = (index >= 0) & (index < len(points))
            frame_pts = np.full((n,) + points.shape[1:], np.nan)
            frame_pts[inside] = points[index[inside]]
            proj = project_points(cameras[view], np.moveaxis(frame_pts, 1, -1))  # (n,k,p,2)
            proj = np.moveaxis(proj, -1, 2)  # (n, k, 2, p)
            errs = np.stack([point_errors(proj[t], det[t]) for t in range(n)])
        else:
            proj = np.full((n, len(keypoints), 2, 0), np.nan)
            errs = np.full((n, len(keypoints), 0), np.nan)
        ranges = render_ranges(info.keyframes, n, chunk_frames)
        picks = np.unique(np.linspace(0, n - 1, RENDER_THUMBNAILS).round().astype(int))
        plan[view] = []
        for a, b in ranges:
            seg = scratch / f"{view}.{a:09d}.mp4"
            thumbs = {int(t - a): folder / f"{view}.frame{int(t):06d}.jpg" for t in picks
                      if a <= t < b}  # fmt: skip
            plan[view].append((seg, b - a))
            result.thumbnails.setdefault(view, []).extend(thumbs.values())
            tasks.append(
                dask.delayed(_render_segment, pure=False)(
                    {
                        "view": view,
                        "video": video,
                        "path": str(seg),
                        "start": a,
                        "stop": b,
                        "start_pts": int(info.pts[a]),
                        "seek_pts": int(info.pts[info.keyframe_before(a)]),
                        "fps": info.fps or fps_all,
                        "times": times[a:b],
                        "detections": det[a:b],
                        "projected": proj[a:b],
                        "errors": errs[a:b],
                        "bones": bones,
                        "people": people_bgr,
                        "caption_colour": _bgr(colours[view]),
                        "thumbnails": thumbs,
                    }
                )
            )
    result.tasks = len(tasks)
    try:
        if tasks:
            session = Session(Work(len(tasks)), cluster)
            with session:
                future = session.client.compute(dask.delayed(list)(tasks))
                _watch(session, future, "render")
                done = future.result()
            errors = {d["view"]: d["error"] for d in done if "error" in d}
            for view, segments in plan.items():
                if view in errors:
                    result.failed[view] = errors[view]
                    continue
                written = join_segments([s for s, _ in segments], targets[view])
                expected = sum(k for _, k in segments)
                if written != expected:
                    result.failed[view] = (
                        f"{targets[view]}: {written} of {expected} frames rendered; "
                        "the source video ends early or is damaged"
                    )
                result.videos[view] = targets[view]
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    for view in result.failed:
        result.thumbnails.pop(view, None)
    ledger.record_render(
        store,
        {
            "group": source,
            "videos": {v: str(p.resolve()) for v, p in result.videos.items()},
            "thumbnails": {
                v: [str(p.resolve()) for p in ps] for v, ps in result.thumbnails.items()
            },
            "failed": result.failed,
        },
    )
    for view, why in result.failed.items():
        logger.warning("%s: %s", view, why)
    from .report import run_report_path, write_run_report

    if run_report_path(store).exists():  # the run report shows a few rendered frames
        write_run_report(store)
    return result
