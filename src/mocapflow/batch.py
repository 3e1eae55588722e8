"""Batch processing of every recording under a folder, for scheduled runs.

``mocapflow batch ROOT`` (and ``flows/batch.py``) finds every recording folder
under ROOT, however deep, and processes those with no complete store or whose
videos changed since; complete ones are skipped after a few ``stat`` calls and
one small JSON read. Recordings are processed one after another on one shared
cluster: a single recording already fills every worker with its chunk tasks,
and one at a time keeps memory bounded and each store's progress readable.

A lock per recording (``flock`` on ``RECORDING/.mocapflow.lock``) keeps two
scheduled runs from processing one recording at once. The kernel releases it
when its process dies, so a stale lock never blocks anyone. Every outcome is
appended to ``ROOT/mocapflow-batch.jsonl``; one failed recording never stops
the others.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import logging
import os
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from . import store as _store
from .recording import SUBFOLDER, VIDEO_EXTENSIONS, RecordingError, find_videos
from .tasks import DEFAULT_CHUNK_FRAMES
from .trackers import get_tracker

__all__ = ["LOCK_NAME", "SUMMARY_NAME", "find_recordings", "run_batch", "up_to_date"]

logger = logging.getLogger(__name__)

LOCK_NAME = ".mocapflow.lock"
SUMMARY_NAME = "mocapflow-batch.jsonl"
STORE_NAME = "mocapflow.zarr"


def _has_videos(folder: Path) -> bool:
    try:
        return any(p.suffix.lower() in VIDEO_EXTENSIONS and p.is_file() for p in folder.iterdir())
    except OSError:
        return False


def find_recordings(root: str | Path) -> list[Path]:
    """Return every recording folder under ``root`` (videos, or ``synchronized_videos/``)."""
    found = []
    for dirpath, dirnames, _ in os.walk(root):
        here = Path(dirpath)
        dirnames[:] = sorted(d for d in dirnames if not d.endswith(".zarr") and d != SUBFOLDER)
        if (here / SUBFOLDER).is_dir() and _has_videos(here / SUBFOLDER) or _has_videos(here):
            found.append(here)
    return found


def _state(recording: Path, tracker: str, params: dict, chunk_frames: int) -> str:
    """``complete`` (nothing to do), ``resume`` (same inputs, unfinished), ``changed``, ``new``."""
    path = recording / STORE_NAME
    if not (path / "zarr.json").is_file():
        return "new"
    try:
        attrs = _store.read_attrs(path)
        videos = find_videos(recording)
    except (_store.StoreError, RecordingError):
        return "new"
    want = _store.fingerprint_of(videos, get_tracker(tracker, **params), chunk_frames)
    if attrs.get("fingerprint", {}).get("digest") != want["digest"]:
        return "changed"
    return "complete" if attrs.get("completed") else "resume"


def up_to_date(recording: Path, tracker: str, params: dict, chunk_frames: int) -> bool:
    """Whether the recording's store is complete and made from its current videos."""
    return _state(recording, tracker, params, chunk_frames) == "complete"


@contextlib.contextmanager
def _locked(recording: Path) -> Iterator[bool]:
    """Hold the recording's lock if free; yield whether we got it."""
    fd = os.open(recording / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        os.ftruncate(fd, 0)
        os.write(fd, f"{socket.gethostname()} {os.getpid()}\n".encode())
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def run_batch(
    root: str | Path,
    tracker: str = "framestats",
    *,
    chunk_frames: int = DEFAULT_CHUNK_FRAMES,
    cluster: str | None = None,
    cluster_config: str | Path | None = None,
    on_result: Callable[[dict], None] | None = None,
    **params,
) -> list[dict]:
    """Process every recording under ``root`` that needs it; return one record each.

    Parameters
    ----------
    root : path
        Folder searched for recordings, however deep.
    tracker : str
        Tracker for every recording.
    chunk_frames : int
        Frames per task.
    cluster, cluster_config
        Cluster profile, as for :func:`mocapflow.process`.
    on_result : callable, optional
        Called with each record as it is made.
    **params
        Tracker parameters.

    Returns
    -------
    list of dict
        Per recording: ``recording``, ``action`` (skipped, processed, failed,
        locked), ``seconds``, ``exit_code``, ``views`` and ``error``.
    """
    from .graph import process

    root = Path(root)
    if not root.is_dir():
        raise RecordingError(f"{root}: no such folder; check the batch root")
    summary = root / SUMMARY_NAME
    records = []
    shared = None  # (cluster, client), started when the first recording needs it
    try:
        for rec in find_recordings(root):
            t0 = time.perf_counter()
            record: dict = {"recording": str(rec), "tracker": tracker, "error": None}
            try:
                if up_to_date(rec, tracker, params, chunk_frames):
                    record.update(action="skipped", exit_code=0)
                else:
                    with _locked(rec) as mine:
                        if not mine:
                            record.update(
                                action="locked",
                                exit_code=0,
                                error="another run holds the lock; left to it",
                            )
                        elif (state := _state(rec, tracker, params, chunk_frames)) == "complete":
                            record.update(action="skipped", exit_code=0)  # finished meanwhile
                        else:
                            if shared is None:
                                shared = _start(cluster, cluster_config)
                            result = process(
                                rec,
                                tracker,
                                rec / STORE_NAME,
                                chunk_frames=chunk_frames,
                                client=shared[1],
                                # other inputs than the store's: start afresh (ours only)
                                overwrite=state == "changed" and _store.is_store(rec / STORE_NAME),
                                **params,
                            )
                            record.update(
                                action="processed",
                                exit_code=result.exit_code,
                                views={k: v["status"] for k, v in result.views.items()},
                            )
            except Exception as exc:  # one bad recording never stops the others
                record.update(action="failed", exit_code=2, error=f"{type(exc).__name__}: {exc}")
                logger.warning("%s: %s", rec, record["error"])
            record.update(
                seconds=round(time.perf_counter() - t0, 4),
                time=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            )
            with open(summary, "a") as fh:
                fh.write(json.dumps(record) + "\n")
            records.append(record)
            if on_result:
                on_result(record)
    finally:
        if shared is not None:
            shared[1].close()
            if shared[0] is not None:
                shared[0].close()
    return records


def _start(cluster: str | None, cluster_config):
    """Open the shared cluster; a local one is sized as if for many 1080p tasks."""
    from .cluster import open_cluster
    from .config import load_profile

    c, client, _, _ = open_cluster(
        load_profile(cluster, cluster_config), 10**6, 1920 * 1080 * 3, 16
    )
    return c, client
