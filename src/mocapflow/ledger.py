"""What a store was made from and how far it got: fingerprints, completion records, state.

* **Fingerprint.** Each video is known by its size and a BLAKE2b digest of
  sampled blocks of its bytes (the container's header, its end, and blocks
  spread between), plus the tracker, its parameters and the chunking. A copy
  that keeps the bytes but not the modification time is the same input; an
  edit anywhere the samples fall, or a change of size, is not. The size and
  mtime are kept beside each digest, so an untouched file is never read again.
* **Completion records.** A task that finished writes one JSON file under
  ``STORE/_mocapflow/chunks/``, atomically (temporary file, fsync, rename),
  after its data is synced. It holds the task's outcome and a digest of every
  chunk it wrote.
* **State.** From the two, a store is ``new``, ``resume`` (same inputs,
  unfinished), ``complete`` or ``changed`` (other inputs).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import logging
import os
from pathlib import Path

from . import store as _store
from .errors import StoreError
from .schema import DECODED, time_chunk_for, tracking_attrs, tracks_template

__all__ = [
    "LEDGER_GROUP",
    "done_chunks",
    "finalize",
    "fingerprint",
    "mark_done",
    "now",
    "prepare",
    "remove_partial_files",
    "state",
    "summary",
    "video_digest",
    "view_outcomes",
]

logger = logging.getLogger(__name__)

#: The store's own group for the ledger (a Zarr group, so Zarr tools leave it be).
LEDGER_GROUP = "_mocapflow"
_RECORDS = "chunks"
#: Bytes of each sampled block, and how many blocks a video contributes.
_BLOCK = 64 * 1024
_BLOCKS = 8


def now() -> str:
    """Return the current UTC time, as stores record it."""
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def video_digest(path: str | Path, size: int | None = None) -> str:
    """Digest a video's content cheaply: sampled blocks, start and end included.

    Parameters
    ----------
    path : path
        The file.
    size : int, optional
        Its size, if already known.

    Returns
    -------
    str
        A hex digest that also covers the size.

    """
    size = os.path.getsize(path) if size is None else size
    h = hashlib.blake2b(str(size).encode(), digest_size=16)
    with open(path, "rb") as fh:
        span = max(size - _BLOCK, 0)
        for i in range(_BLOCKS):
            fh.seek(span * i // (_BLOCKS - 1))
            h.update(fh.read(_BLOCK))
    return h.hexdigest()


def _video_entry(path: Path, known: dict) -> list:
    """``[stem, size, mtime_ns, digest]``; the digest is reused when size and mtime match."""
    try:
        st = path.stat()
    except OSError:
        return [path.stem, -1, -1, ""]
    old = known.get(path.stem)
    if old and old[1] == st.st_size and old[2] == st.st_mtime_ns and old[3]:
        return [path.stem, st.st_size, st.st_mtime_ns, old[3]]
    try:
        digest = video_digest(path, st.st_size)
    except OSError:
        digest = ""
    return [path.stem, st.st_size, st.st_mtime_ns, digest]


def fingerprint(videos, tracker, chunk_frames: int, known: dict | None = None) -> dict:
    """Describe the inputs a store is made from.

    Parameters
    ----------
    videos : list of path
        The recording's video files (a clashing stem keeps its first file).
    tracker : Tracker
        The tracker.
    chunk_frames : int
        Frames per task.
    known : dict, optional
        A fingerprint recorded earlier, whose digests are reused for files
        whose size and modification time have not changed.

    Returns
    -------
    dict
        ``videos`` (stem, size, mtime, digest), ``tracker``, ``tracker_params``,
        ``chunk_frames``, and ``digest``: of everything but the mtimes.

    """
    cache = {v[0]: v for v in (known or {}).get("videos", []) if len(v) == 4}
    entries, seen = [], set()
    for path in map(Path, videos):
        if path.stem in seen:
            continue
        seen.add(path.stem)
        entries.append(_video_entry(path, cache))
    body = {
        "videos": [[stem, size, digest] for stem, size, _, digest in entries],
        "tracker": tracker.name,
        "tracker_params": tracker.params(),
        "chunk_frames": int(chunk_frames),
    }
    digest = hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()
    return {**body, "videos": entries, "digest": digest}


def changes(old: dict, new: dict) -> list[str]:
    """Name what differs between two fingerprints (videos by name)."""
    out = []
    old_v = {v[0]: v[-1] for v in old.get("videos", [])}
    new_v = {v[0]: v[-1] for v in new.get("videos", [])}
    for stem in sorted(set(old_v) | set(new_v)):
        if stem not in new_v:
            out.append(f"video {stem} is gone")
        elif stem not in old_v:
            out.append(f"video {stem} is new")
        elif old_v[stem] != new_v[stem]:
            out.append(f"video {stem} changed")
    for key in ("tracker", "tracker_params", "chunk_frames"):
        if old.get(key) != new.get(key):
            out.append(f"{key} {old.get(key)!r} -> {new.get(key)!r}")
    return out or ["the fingerprint"]


def state(path: str | Path, fp: dict) -> str:
    """Return ``new``, ``resume``, ``complete`` or ``changed`` for a store and the inputs now."""
    path = Path(path)
    if not path.exists() or not _store.is_store(path):
        return "new"
    attrs = _store.read_attrs(path)
    if not attrs.get("template_complete"):
        return "new"
    if attrs.get("fingerprint", {}).get("digest") != fp["digest"]:
        return "changed"
    return "complete" if attrs.get("completed") else "resume"


def _records(path: Path) -> Path:
    return path / LEDGER_GROUP / _RECORDS


def _record_file(path: Path, view_index: int, start: int, stop: int) -> Path:
    return _records(path) / f"{view_index:05d}_{start:09d}_{stop:09d}.json"


def prepare(path: str | Path, recording, tracker, chunk_frames: int, overwrite: bool) -> dict:
    """Create the store, or check that an existing one was made from the same inputs.

    Parameters
    ----------
    path : path
        The store.
    recording, tracker, chunk_frames
        The inputs.
    overwrite : bool
        Replace a store made from other inputs.

    Returns
    -------
    dict
        The records of tasks already done, keyed by ``(view_index, start, stop)``.

    Raises
    ------
    StoreError
        If the store holds results from other inputs and ``overwrite`` is off.

    """
    path = Path(path)
    kind = _store.check_target(path)
    attrs = _store.read_attrs(path) if kind == "ours" else {}
    videos = [v.path for v in recording.views]
    fp = fingerprint(videos, tracker, chunk_frames, attrs.get("fingerprint"))
    if attrs.get("template_complete") and not overwrite:
        old = attrs.get("fingerprint", {})
        if old.get("digest") != fp["digest"]:
            raise StoreError(
                f"{path}: holds results from other inputs ({'; '.join(changes(old, fp))}); "
                "rerun with --overwrite to start afresh, or choose another --out"
            )
        if old.get("videos") != fp["videos"]:  # same content, new mtimes: remember them
            _store.update_attrs(path, fingerprint=fp)
        if n := remove_partial_files(path):
            logger.info("%s: removed %d temporary files left by an interrupted run", path, n)
        return done_chunks(path)
    template = tracks_template(recording, tracker, time_chunk_for(chunk_frames))
    attrs = {**tracking_attrs(recording, tracker, chunk_frames), "fingerprint": fp}
    _store.create(path, template, attrs)
    _store.require_group(path, LEDGER_GROUP)
    _records(path).mkdir(exist_ok=True)
    _store.update_attrs(path, template_complete=True)
    _store.fsync_dir(path)
    return {}


def mark_done(path: str | Path, view_index: int, start: int, stop: int, record: dict) -> None:
    """Record a task as done: write its JSON atomically (temp file, fsync, rename)."""
    target = _record_file(Path(path), view_index, start, stop)
    tmp = target.with_suffix(f".tmp{os.getpid()}")
    with open(tmp, "w") as fh:
        json.dump(record, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, target)
    _store.fsync_dir(target.parent)


def remove_partial_files(path: str | Path) -> int:
    """Delete temporary files that a killed writer left (zarr and the ledger write atomically)."""
    n = 0
    for f in Path(path).rglob("*.partial"):
        f.unlink(missing_ok=True)
        n += 1
    for f in _records(Path(path)).glob("*.tmp*"):
        f.unlink(missing_ok=True)
        n += 1
    return n


def done_chunks(path: str | Path) -> dict[tuple[int, int, int], dict]:
    """Return the records of finished tasks, keyed by ``(view_index, start, stop)``."""
    folder = _records(Path(path))
    out = {}
    if not folder.is_dir():
        return out
    for f in folder.glob("*.json"):
        try:
            v, a, b = (int(x) for x in f.stem.split("_"))
            out[(v, a, b)] = json.loads(f.read_text())
        except (ValueError, json.JSONDecodeError):
            logger.warning("%s: unreadable completion record; its chunk will be redone", f)
    return out


def view_outcomes(recording, records: dict) -> dict:
    """Per view: ``status`` (ok, partial, failed), ``error``, ``n_decoded``, ``n_frames``."""
    views = {}
    for i, view in enumerate(recording.views):
        mine = [r for k, r in records.items() if k[0] == i]
        decoded = sum(r.get("n_decoded", 0) for r in mine)
        errors = [r["error"] for r in mine if r.get("error")]
        if view.error:
            status, error = "failed", view.error
        elif errors or decoded < view.n_frames:
            status = "partial" if decoded else "failed"
            if view.info.truncated:
                error = (
                    f"{view.path}: truncated: {decoded} of its {view.n_frames} frames decoded, "
                    "the rest are NaN; re-copy or re-export the file"
                )
            else:
                error = errors[0] if errors else f"{decoded} of {view.n_frames} frames written"
        else:
            status, error = "ok", None
        views[view.name] = {
            "status": status,
            "error": error,
            "n_decoded": int(decoded),
            "n_frames": view.n_frames,
        }
    return views


def finalize(path: str | Path, views: dict[str, dict], completed: bool) -> None:
    """Record each view's outcome and the end of the run."""
    _store.update_attrs(path, view_status=views, completed=completed, end_time=now())


def summary(path: str | Path) -> dict:
    """Summarise a store for ``mocapflow info``.

    Returns
    -------
    dict
        ``attrs`` (run facts); ``views``: per view the frames, size, codec,
        status, decoded frames and the percentage of frames with a detection;
        ``groups``: per 3-D group, :func:`mocapflow.quality.points_summary`.

    """
    import numpy as np

    from .quality import points_summary
    from .schema import GROUPS_3D

    ds = _store.open_tracks(path)
    attrs = dict(ds.attrs)
    status = attrs.get("view_status", {})
    detect_var = next((v for v in ("confidence", "position") if v in ds), None)
    views = []
    for i, name in enumerate(ds.view.values):
        name = str(name)
        n = int(ds.n_frames.values[i])
        row = {
            "view": name,
            "frames": n,
            "size": f"{int(ds.width.values[i])}x{int(ds.height.values[i])}",
            "codec": str(ds.codec.values[i]),
            "decoded": int(ds[DECODED].isel(view=i).sum()),
            "status": status.get(name, {}).get("status", "incomplete"),
            "error": status.get(name, {}).get("error"),
        }
        if detect_var and n:
            values = ds[detect_var].isel(view=i, time=slice(0, n)).values
            found = np.isfinite(values).reshape(n, -1).any(axis=1)
            row["detected_pct"] = 100.0 * float(found.mean())
        views.append(row)
    groups = {
        g: points_summary(_store.open_group(path, g))
        for g in reversed(GROUPS_3D)
        if _store.has_group(path, g)
    }
    return {"attrs": attrs, "views": views, "groups": groups}
