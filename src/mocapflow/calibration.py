"""The calibration stage: find the board in the videos or images, fit, write the TOML.

``calibrate``            every camera of a recording at once (intrinsics from
                         the recording, or fitted apart and given)
``calibrate_intrinsics`` each camera alone, from its own recording (a video or
                         a folder of images), as caliscope and Pose2Sim do

Board detection is the ``charuco`` or ``checkerboard`` tracker: over a
recording's videos through :func:`mocapflow.process` (chunked, resumable), over
images and sampled video frames as tasks on the same cluster. The fitting is
:mod:`mocapflow.calib.fit` (numpy, Ceres).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from . import __version__, ledger
from .calib.boards import BoardProbe, board_tracker, probe_board, sample_indices
from .calib.camera import Camera
from .calib.fit import CalibrationResult, IntrinsicsResult, calibrate_cameras
from .calib.fit import calibrate_intrinsics as fit_intrinsics
from .calib.formats import fit_to_videos, read_calibration, write_toml
from .calib.report import write_calibration_report
from .cluster.session import ClusterOptions, Session, Work, progress_of
from .errors import CalibrationError, UsageError
from .plan import as_recording
from .recording import VIDEO_EXTENSIONS, natural_key
from .runner import process
from .video import VideoInfo, iter_range, probe, read_frames

if TYPE_CHECKING:
    from distributed import Client

__all__ = [
    "IMAGE_EXTENSIONS",
    "CameraSource",
    "calibrate",
    "calibrate_intrinsics",
    "camera_sources",
]

logger = logging.getLogger(__name__)

#: Image files a camera folder may hold instead of a video.
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff"})
#: Frames of each view looked at before tracking, to check the board is the one described.
PROBE_FRAMES = 6
#: Most frames of a camera's video searched for the board when fitting its intrinsics
#: (evenly spread; calibrateCamera uses at most 30 of the views found).
INTRINSIC_FRAMES = 240
#: Images or frames per detection task.
TASK_FRAMES = 24


@dataclass(frozen=True)
class CameraSource:
    """One camera's board recording: a video, or a folder of images.

    Attributes
    ----------
    name : str
        The camera's name (the video's stem, or the folder's name without
        Pose2Sim's ``int_`` prefix and ``_img`` suffix).
    path : pathlib.Path
        The video, or the folder.
    images : tuple of pathlib.Path
        The images, naturally sorted (empty for a video).
    size : tuple of int
        ``(width, height)``.
    n_frames : int
        Frames or images.
    info : VideoInfo or None
        The video's probe (None for images), so tasks never probe it again.

    """

    name: str
    path: Path
    images: tuple[Path, ...]
    size: tuple[int, int]
    n_frames: int
    info: VideoInfo | None = None


def _camera_name(folder: Path) -> str:
    name = folder.name
    name = name[4:] if name.lower().startswith("int_") else name
    return name[:-4] if name.lower().endswith("_img") else name


def camera_sources(paths: list[str | Path]) -> list[CameraSource]:
    """Resolve camera recordings: video files, folders of images, or folders of one video.

    Raises
    ------
    CalibrationError
        If a path is missing or holds neither images nor exactly one video, if
        two cameras get one name, or images of one camera differ in size.

    """
    out: list[CameraSource] = []
    for raw in paths:
        path = Path(raw)
        if path.is_file() and path.suffix.lower() in VIDEO_EXTENSIONS:
            info = probe(path)
            size = (info.width, info.height)
            out.append(CameraSource(path.stem, path, (), size, info.n_frames, info))
            continue
        if not path.is_dir():
            raise CalibrationError(
                f"{path}: not found; give each camera's video, or a folder of its images"
            )
        files = sorted(
            (p for p in path.iterdir() if p.is_file()), key=lambda p: natural_key(p.name)
        )
        images = tuple(p for p in files if p.suffix.lower() in IMAGE_EXTENSIONS)
        videos = [p for p in files if p.suffix.lower() in VIDEO_EXTENSIONS]
        if images:
            first = cv2.imread(str(images[0]), cv2.IMREAD_GRAYSCALE)
            if first is None:
                raise CalibrationError(f"{images[0]}: not a readable image; remove or re-export it")
            size = (first.shape[1], first.shape[0])
            out.append(CameraSource(_camera_name(path), path, images, size, len(images)))
        elif len(videos) == 1:
            info = probe(videos[0])
            size = (info.width, info.height)
            out.append(CameraSource(_camera_name(path), videos[0], (), size, info.n_frames, info))
        else:
            what = f"{len(videos)} videos" if videos else "no images or video"
            raise CalibrationError(
                f"{path}: {what}; give one folder per camera, holding its images "
                f"({', '.join(sorted(IMAGE_EXTENSIONS))}) or its one video"
            )
    names = [s.name for s in out]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise CalibrationError(
            f"cameras {', '.join(twice)} are given twice; name each camera's folder or video "
            "after the camera"
        )
    return out


def _read_gray(source: CameraSource, frames: list[int]) -> np.ndarray:
    """Gray frames of a source: images by index, or video frames by index."""
    if source.images:
        out = []
        for i in frames:
            img = cv2.imread(str(source.images[i]), cv2.IMREAD_GRAYSCALE)
            if img is None or (img.shape[1], img.shape[0]) != source.size:
                got = "unreadable" if img is None else f"{img.shape[1]}x{img.shape[0]}"
                raise CalibrationError(
                    f"{source.images[i]}: {got}, while {source.name}'s images are "
                    f"{source.size[0]}x{source.size[1]}; keep one camera's images in one folder"
                )
            out.append(img)
        return np.stack(out)
    frames = sorted(frames)
    out = []
    for i in frames:  # sparse frames: one seek each
        frame = read_frames(source.path, i, i + 1, info=source.info)[0]
        out.append(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY))
    return np.stack(out)


def _detect(source: CameraSource, frames: list[int], tracker) -> np.ndarray:
    """Board corners in some frames of a source ``(time, 2, corner)`` (a task)."""
    if source.images or len(frames) < 2:
        gray = _read_gray(source, frames)
    else:  # one pass over the range, holding one decoded frame at a time
        info = source.info or probe(source.path)
        wanted, kept = set(frames), []
        start, stop = frames[0], frames[-1] + 1
        seek = int(info.pts[info.keyframe_before(start)])
        reader = iter_range(source.path, start, stop, int(info.pts[start]), seek)
        for i, frame in enumerate(reader, start):
            if i in wanted:
                kept.append(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY))
        if len(kept) != len(frames):
            raise CalibrationError(
                f"{source.path}: decoded {len(kept)} of {len(frames)} frames; the file is "
                "truncated or corrupt, re-export it"
            )
        gray = np.stack(kept)
    return tracker(gray)["position"][..., 0]


def _detect_all(
    sources: list[CameraSource], frames: dict[str, list[int]], tracker, session: Session
) -> dict[str, np.ndarray]:
    """Detect the board in the given frames of every source, as tasks on the cluster."""
    import dask

    tasks, keys = [], []
    for s in sources:
        wanted = frames[s.name]
        for i in range(0, len(wanted), TASK_FRAMES):
            part = wanted[i : i + TASK_FRAMES]
            tasks.append(
                dask.delayed(_detect)(s, part, tracker, dask_key_name=f"board-{s.name}-{i}")
            )
            keys.append(s.name)
    results = session.client.gather(session.client.compute(tasks))
    out: dict[str, list[np.ndarray]] = {s.name: [] for s in sources}
    for name, pos in zip(keys, results, strict=True):
        out[name].append(pos)
    return {name: np.concatenate(parts) for name, parts in out.items()}


def _samples(sources: list[CameraSource], n: int) -> dict[str, list[int]]:
    return {s.name: sample_indices(s.n_frames, n) for s in sources}


def _probe(sources, tracker, where) -> BoardProbe:
    """Check the board in a few frames per camera (and switch to inverted colours if needed)."""
    picks = _samples(sources, PROBE_FRAMES)
    gray = {s.name: _read_gray(s, picks[s.name]) for s in sources}
    found = probe_board(gray, tracker, where)
    logger.info(
        "board found in %d of %d sampled frames",
        sum(found.found.values()),
        sum(found.sampled.values()),
    )
    return found


def _board_meta(tracker, probe_: BoardProbe) -> dict:
    return {"type": tracker.name, **tracker.params(), "found_inverted": bool(probe_.inverted)}


def calibrate_intrinsics(
    cameras: list[str | Path],
    out: str | Path,
    *,
    board: dict | str | Path | None = None,
    shared: bool = False,
    overwrite: bool = False,
    cluster: ClusterOptions | Session | Client | str | None = None,
) -> tuple[dict[str, IntrinsicsResult], Path]:
    """Fit each camera's intrinsics alone, from its own recording of the board; write the TOML.

    Parameters
    ----------
    cameras : list of path
        Per camera: a video, a folder of images (``*.jpg``, ``*.png``, ...) or a
        folder holding its one video. Cameras are named after the video's stem
        or the folder (Pose2Sim's ``int_cam01_img`` is ``cam01``).
    out : path
        The TOML to write (anipose layout; poses are the identity).
    board : dict or path, optional
        The board (see :func:`mocapflow.calib.boards.board_tracker`).
    shared : bool
        The cameras are one model: fit one set of intrinsics from all their
        views pooled (their images must be the same size).
    overwrite : bool
        Replace an existing TOML.
    cluster : ClusterOptions, Session, Client or str, optional
        Where to detect the board.

    Returns
    -------
    tuple
        ``(results by camera name, path of the TOML)``.

    Raises
    ------
    CalibrationError
        If a camera has too few usable views, or the board is found nowhere.

    """
    path = Path(out)
    if path.exists() and not overwrite:
        raise UsageError(
            f"{path}: intrinsics are already there; choose another --out, or --overwrite"
        )
    sources = camera_sources(cameras)
    if shared and len({s.size for s in sources}) > 1:
        sizes = ", ".join(f"{s.name} {s.size[0]}x{s.size[1]}" for s in sources)
        raise UsageError(f"--shared: one model's cameras give one image size, not {sizes}")
    tracker = board_tracker(board)
    frames = {
        s.name: list(range(s.n_frames))
        if s.images
        else sample_indices(s.n_frames, INTRINSIC_FRAMES)
        for s in sources
    }
    obj = tracker.object_points()
    found = _probe(sources, tracker, ", ".join(str(s.path) for s in sources))
    work = Work(min(len(sources) * 4, 64), frame_bytes=max(s.size[0] * s.size[1] for s in sources))
    with Session(work, cluster) as session:
        positions = _detect_all(sources, frames, found.tracker, session)
    if shared:
        pooled = np.concatenate([positions[s.name] for s in sources])
        fit = fit_intrinsics(pooled, "+".join(s.name for s in sources), sources[0].size, obj)
        results = {s.name: _renamed(fit, s.name) for s in sources}
    else:
        results = {s.name: fit_intrinsics(positions[s.name], s.name, s.size, obj) for s in sources}
    meta = {
        "software": f"mocapflow {__version__}",
        "created": ledger.now(),
        "kind": "intrinsics",
        "sources": {s.name: str(s.path) for s in sources},
        "board": _board_meta(found.tracker, found),
        "shared": shared,
        "units": "mm",
        "per_camera_rms_px": {n: round(r.rms, 4) for n, r in results.items()},
        "board_views": {n: r.n_views for n, r in results.items()},
    }
    write_toml(path, [r.camera for r in results.values()], meta)
    return results, path


def _renamed(fit: IntrinsicsResult, name: str) -> IntrinsicsResult:
    cam = fit.camera
    camera = Camera(name, cam.size, cam.matrix, cam.distortions, cam.rotation, cam.translation)
    return IntrinsicsResult(camera, fit.rms, fit.n_views, fit.rejected, fit.warnings)


def _given_intrinsics(path: str | Path, names: list[str], sizes: dict[str, tuple]) -> dict:
    """Intrinsics from a file, by camera name; one camera in the file serves every view."""
    cams, _ = read_calibration(path)
    if len(cams) == 1 and not set(cams) & set(names):
        only = next(iter(cams.values()))
        logger.info("%s: one camera's intrinsics used for every view (one model)", path)
        cams = {
            n: Camera(n, only.size, only.matrix, only.distortions, only.rotation, only.translation)
            for n in names
        }
    missing = [n for n in names if n not in cams]
    if missing:
        raise CalibrationError(
            f"{path}: no intrinsics for {', '.join(missing)} (it has {', '.join(cams)}); fit "
            "them with mocapflow calibrate intrinsics, or name the cameras as the videos"
        )
    fitted, notes = fit_to_videos({n: cams[n] for n in names}, sizes, path)
    for note in notes:
        logger.warning("%s", note)
    return fitted


def calibrate(
    recording: str | Path,
    out: str | Path | None = None,
    *,
    board: dict | str | Path | None = None,
    origin: str = "camera",
    store: str | Path | None = None,
    overwrite: bool = False,
    cluster: ClusterOptions | Session | Client | str | None = None,
    report: bool = True,
    intrinsics: str | Path | None = None,
    refine_intrinsics: bool = False,
    html: bool = True,
) -> tuple[CalibrationResult, Path]:
    """Calibrate the cameras of a board recording and write the TOML.

    A few frames of each view are checked first: a board found only with its
    colours inverted is tracked inverted (with a warning), and a board found
    nowhere stops here with what to check. Then the tracker runs over the
    recording through :func:`mocapflow.process` (chunked, resumable), and
    :func:`mocapflow.calib.calibrate_cameras` fits the cameras.

    Parameters
    ----------
    recording : path
        The calibration recording.
    out : path, optional
        The TOML; default ``RECORDING/calibration.toml``.
    board : dict or path, optional
        The board: parameters or a board file (see
        :func:`mocapflow.calib.boards.board_tracker`); FreeMoCap's by default.
    origin : {"camera", "board"}
        World frame: camera 0's, or the board's ground plane.
    store : path, optional
        The corner store; default ``RECORDING/mocapflow.zarr``.
    overwrite : bool
        Replace an existing TOML (never replaced otherwise), and a corner store
        made from other inputs.
    cluster : ClusterOptions, Session, Client or str, optional
        Where to track the board, as :func:`mocapflow.process` takes it.
    report : bool
        Save the tracking run's reports beside the corner store.
    intrinsics : path, optional
        Intrinsics fitted apart (any calibration file): held fixed, and only the
        cameras' poses fitted.
    refine_intrinsics : bool
        Let the bundle adjustment refine ``intrinsics``.
    html : bool
        Write the calibration report beside the TOML (``.html``: where each
        camera saw corners, residuals, the rig, and the verdict).

    Returns
    -------
    tuple
        ``(CalibrationResult, path of the TOML)``.

    """
    tracker = board_tracker(board)
    rec = as_recording(recording)
    path = Path(out) if out is not None else rec.path / "calibration.toml"
    if path.exists() and not overwrite:
        raise UsageError(
            f"{path}: a calibration is already there; choose another --out, or --overwrite"
        )
    if refine_intrinsics and intrinsics is None:
        raise UsageError("--refine-intrinsics refines given intrinsics: add --intrinsics FILE")
    if getattr(tracker, "symmetric", False):
        raise UsageError(
            f"--board: a checkerboard of {tracker.corners_x}x{tracker.corners_y} inner corners "
            "looks the same turned half round, so cameras cannot agree on its corners; use one "
            "with an odd and an even count (e.g. 4x7), or a ChArUco board"
        )
    views = [
        CameraSource(v.name, v.path, (), (v.info.width, v.info.height), v.info.n_frames, v.info)
        for v in rec.ok_views
    ]
    found = _probe(views, tracker, rec.path)
    result = process(rec, found.tracker, store, overwrite=overwrite, cluster=cluster, report=report)
    bad = [n for n, v in result.views.items() if v["status"] == "failed"]
    ds = result.open()
    names = [n for n in (str(v) for v in ds.view.values) if n not in bad]
    if bad:
        logger.warning("views %s failed to track and are left out of the calibration", bad)
    pos = ds.position.sel(view=names).isel(individual=0).values
    size_of = {v.name: (v.info.width, v.info.height) for v in rec.views}
    sizes = [size_of[n] for n in names]
    given = None
    if intrinsics is not None:
        given = _given_intrinsics(intrinsics, names, size_of)
    on_event = progress_of(cluster)
    if on_event:
        on_event("stage", {"label": "fitting cameras", "done": 0, "total": None})
    obj = found.tracker.object_points()
    fit = calibrate_cameras(
        pos,
        names,
        sizes,
        obj,
        origin=origin,
        intrinsics=given,
        refine_intrinsics=refine_intrinsics,
    )
    if on_event:
        on_event("stage", {"label": "fitting cameras", "done": 1, "total": 1})
    for w in fit.warnings:
        logger.warning("%s", w)
    meta = {
        "software": f"mocapflow {__version__}",
        "created": ledger.now(),
        "recording": str(rec.path),
        "board": _board_meta(found.tracker, found),
        "origin": origin,
        "units": "mm",
        **fit.metadata(),
    }
    if intrinsics is not None:
        meta["intrinsics"] = {"file": str(intrinsics), "refined": refine_intrinsics}
    if origin == "board":
        # The board's z axis points into its printed face: a board lying face up on a
        # level floor in the reference frame makes -z the world's up.
        meta["up_axis"] = "-z"
    write_toml(path, fit.cameras, meta)
    if html:
        page = write_calibration_report(
            path.with_suffix(".html"), fit, pos, obj, sizes, title=f"Calibration of {rec.path}"
        )
        logger.info("calibration report: %s", page)
    return fit, path
