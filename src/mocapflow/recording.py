"""Discover the videos of a recording folder and probe each one.

A recording is a folder of synchronised videos, one per camera. FreeMoCap puts
them in ``<recording>/synchronized_videos/``; other tools put them directly in
the folder. A view is named by its file stem and views are sorted naturally,
so ``cam2`` comes before ``cam10``.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from natsort import natsort_keygen, ns

from .errors import RecordingError, VideoError
from .video import VideoInfo, probe

__all__ = [
    "SUBFOLDER",
    "VIDEO_EXTENSIONS",
    "RecordingError",
    "Recording",
    "View",
    "find_recordings",
    "find_videos",
    "natural_key",
    "open_recording",
]

logger = logging.getLogger(__name__)

VIDEO_EXTENSIONS = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm"})
SUBFOLDER = "synchronized_videos"


#: Sort key that orders digit runs by value, ``cam2`` before ``cam10`` (natsort's).
natural_key = natsort_keygen(alg=ns.IGNORECASE)


@dataclass(frozen=True)
class View:
    """One camera of a recording.

    Attributes
    ----------
    name : str
        The file stem.
    path : pathlib.Path
        The video file.
    info : VideoInfo or None
        The probe, or ``None`` if the video could not be opened.
    error : str or None
        Why the video could not be opened.

    """

    name: str
    path: Path
    info: VideoInfo | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        """Whether the video could be probed."""
        return self.info is not None

    @property
    def n_frames(self) -> int:
        """Frames the video should hold: its length on the time axis (0 if unreadable)."""
        return self.info.expected_frames if self.info else 0

    def metadata(self) -> dict:
        """Return the JSON-serialisable facts about this view."""
        meta = {"name": self.name, "path": str(self.path), "error": self.error}
        if self.info:
            meta.update(self.info.metadata())
            meta["path"] = str(self.path)
        return meta


@dataclass
class Recording:
    """The views of a recording folder.

    Attributes
    ----------
    path : pathlib.Path
        The recording folder.
    views : list of View
        Every video found, naturally sorted by name, including the unreadable ones.
    warnings : list of str
        Mismatches worth knowing (lengths, sizes, rates, unreadable videos).

    """

    path: Path
    views: list[View]
    warnings: list[str] = field(default_factory=list)

    @property
    def names(self) -> list[str]:
        """View names, in order."""
        return [v.name for v in self.views]

    @property
    def ok_views(self) -> list[View]:
        """The views whose videos could be probed."""
        return [v for v in self.views if v.ok]

    @property
    def n_frames(self) -> int:
        """The longest view's frame count: the length of the ``time`` axis."""
        return max((v.n_frames for v in self.views), default=0)

    @property
    def fps(self) -> float:
        """The frame rate of the first readable view (0 if none)."""
        return next((v.info.fps for v in self.views if v.info), 0.0)

    def __repr__(self) -> str:
        views = ", ".join(
            f"{v.name}({v.n_frames}f {v.info.width}x{v.info.height} {v.info.codec})"
            if v.info
            else f"{v.name}(unreadable)"
            for v in self.views
        )
        return f"Recording({str(self.path)!r}, views=[{views}])"


def find_videos(path: str | Path) -> list[Path]:
    """Return the video files of a recording folder, naturally sorted by stem.

    Parameters
    ----------
    path : str or pathlib.Path
        The recording folder, or its ``synchronized_videos`` subfolder.

    Returns
    -------
    list of pathlib.Path
        The videos (two may share a stem; :func:`open_recording` fails that view).

    Raises
    ------
    RecordingError
        If the folder is missing, holds no videos, or two videos share a stem.

    """
    root = Path(path)
    if not root.exists():
        raise RecordingError(f"{root}: no such folder; check the recording path")
    if not root.is_dir():
        raise RecordingError(
            f"{root}: not a folder; give the recording folder that holds the videos"
        )
    folder = root / SUBFOLDER if (root / SUBFOLDER).is_dir() else root
    try:
        videos = [
            p
            for p in folder.iterdir()
            if (p.is_file() or p.is_symlink()) and p.suffix.lower() in VIDEO_EXTENSIONS
        ]
    except PermissionError:
        raise RecordingError(f"{folder}: permission denied; make the folder readable") from None
    for p in [folder, *videos]:
        try:
            str(p.absolute()).encode("utf-8")
        except UnicodeEncodeError:
            where = str(folder).encode("utf-8", "backslashreplace").decode()
            name = os.fsencode(p.name if p is not folder else p.absolute())
            raise RecordingError(
                f"{where}: the name {name!r} is not valid UTF-8, which the store's text "
                "cannot hold; rename it to a name in UTF-8 (mv -- OLD NEW) and rerun"
            ) from None
    if not videos:
        exts = " ".join(sorted(VIDEO_EXTENSIONS))
        raise RecordingError(
            f"{folder}: no videos found ({exts}); put the videos in the folder or in {SUBFOLDER}/"
        )
    return sorted(videos, key=lambda p: natural_key(p.stem))


def _has_videos(folder: Path) -> bool:
    try:
        return any(p.suffix.lower() in VIDEO_EXTENSIONS and p.is_file() for p in folder.iterdir())
    except OSError:
        return False


def find_recordings(root: str | Path) -> list[Path]:
    """Return every recording folder under ``root`` (videos, or ``synchronized_videos/``).

    Stores (``*.zarr``) and ``synchronized_videos`` folders are not descended into.
    Folders that are symbolic links are followed (a recording linked in from
    another disk is found); a folder reached twice, through a link or a loop of
    links, is listed once, under the first path that reached it.
    """
    found = []
    seen: set[str] = set()
    for dirpath, dirnames, _ in os.walk(root, followlinks=True):
        here = Path(dirpath)
        real = os.path.realpath(here)
        if real in seen:
            dirnames[:] = []
            continue
        seen.add(real)
        dirnames[:] = sorted(
            d
            for d in dirnames
            if not d.endswith(".zarr") and d != SUBFOLDER and os.path.realpath(here / d) not in seen
        )
        if (here / SUBFOLDER).is_dir() and _has_videos(here / SUBFOLDER) or _has_videos(here):
            found.append(here)
    return found


def open_recording(path: str | Path) -> Recording:
    """Discover and probe the videos of a recording folder.

    A video that cannot be opened does not stop the others: it becomes a view
    with an ``error`` and a warning.

    Parameters
    ----------
    path : str or pathlib.Path
        The recording folder.

    Returns
    -------
    Recording
        The views, their metadata and any warnings.

    Raises
    ------
    RecordingError
        If the folder is missing or holds no videos.

    """
    root = Path(path)
    views: list[View] = []
    warnings: list[str] = []
    by_stem: dict[str, list[Path]] = {}
    for video in find_videos(root):
        by_stem.setdefault(video.stem, []).append(video)
    for stem, videos in by_stem.items():
        video = videos[0]
        if len(videos) > 1:
            # Which file is the camera is the user's call; the other views go on.
            files = ", ".join(sorted(p.name for p in videos))
            error = (
                f"{video.parent}: several videos share the view name {stem!r} ({files}); "
                "rename or remove all but one"
            )
            views.append(View(stem, video, error=error))
            warnings.append(error)
            continue
        try:
            info = probe(video)
        except VideoError as exc:
            views.append(View(stem, video, error=str(exc)))
            warnings.append(str(exc))
            continue
        views.append(View(stem, video, info=info))
        if info.truncated:
            warnings.append(
                f"{video}: truncated: its index lists {info.expected_frames} frames but the "
                f"file holds {info.n_frames}; the missing frames are NaN (re-copy the file)"
            )
        elif info.reported_frames and info.reported_frames != info.n_frames + info.undecodable:
            # Packets that decode to no frame (a mid-GOP start) are listed, and reported above.
            warnings.append(
                f"{video}: the container claims {info.reported_frames} frames but holds "
                f"{info.n_frames}; using {info.n_frames} (remux it to fix the header)"
            )
    infos = [v.info for v in views if v.info]
    if len({i.n_frames for i in infos}) > 1:
        lengths = ", ".join(f"{v.name}={v.n_frames}" for v in views if v.info)
        warnings.append(
            f"{root}: videos differ in length ({lengths}); shorter views are padded with NaN"
        )
    if len({(i.width, i.height) for i in infos}) > 1:
        sizes = ", ".join(f"{v.name}={v.info.width}x{v.info.height}" for v in views if v.info)
        warnings.append(f"{root}: videos differ in frame size ({sizes})")
    if len({round(i.fps, 3) for i in infos}) > 1:
        rates = ", ".join(f"{v.name}={v.info.fps:g}" for v in views if v.info)
        warnings.append(f"{root}: videos differ in frame rate ({rates})")
    for w in warnings:
        logger.warning(w)
    return Recording(path=root, views=views, warnings=warnings)
