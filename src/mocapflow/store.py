"""The Zarr store: schema, template, chunk-aligned region writes, completion records.

Layout (Zarr v3, written through xarray, opened with ``consolidated=False``)::

    STORE/
      zarr.json                 group attrs: run facts, tracker, views, fingerprint
      position/ confidence/ ... data variables, dims (view, time, ...), chunks (1, T, ...)
      decoded/                  (view, time) bool: the frame was decoded and tracked
      view time keypoint ...    coordinates; per-view metadata as (view,) coordinates
      _mocapflow/               a group of its own, holding chunks/*.json: one file per
                                finished task, written atomically after its data is synced

A task's region always covers whole Zarr chunks of one view (or ends at the
view's last frame), so no two writers ever touch one chunk.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import logging
import os
import shutil
from pathlib import Path

import numpy as np
import xarray as xr
import zarr

from . import __version__
from .recording import Recording
from .trackers import Tracker

__all__ = [
    "FORMAT",
    "StoreError",
    "check_region",
    "create",
    "done_chunks",
    "finalize",
    "fingerprint",
    "fingerprint_of",
    "is_store",
    "mark_done",
    "open_store",
    "read_attrs",
    "summary",
    "update_attrs",
    "write_region",
]

logger = logging.getLogger(__name__)

FORMAT = "mocapflow-store/1"
PROGRESS_GROUP = "_mocapflow"
DECODED = "decoded"


class StoreError(Exception):
    """The store path cannot be used; the message names it and the fix."""


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def _strings(values) -> np.ndarray:
    return np.array([str(v) for v in values], dtype=object)


def fingerprint(recording: Recording, tracker: Tracker, chunk_frames: int) -> dict:
    """Describe the inputs a store was made from, to refuse mixing runs.

    Parameters
    ----------
    recording : Recording
        The recording.
    tracker : Tracker
        The tracker.
    chunk_frames : int
        Frames per task.

    Returns
    -------
    dict
        Videos (name, size, mtime), tracker and parameters, chunking, and a digest.
    """
    return fingerprint_of([v.path for v in recording.views], tracker, chunk_frames)


def fingerprint_of(videos: list[Path], tracker: Tracker, chunk_frames: int) -> dict:
    """:func:`fingerprint` from the video files alone (no probing): cheap enough to poll."""
    entries, seen = [], set()
    for path in videos:
        path = Path(path)
        if path.stem in seen:  # a clashing stem: the view keeps the first file
            continue
        seen.add(path.stem)
        try:
            st = path.stat()
            entries.append([path.stem, st.st_size, st.st_mtime_ns])
        except OSError:
            entries.append([path.stem, -1, -1])
    body = {
        "videos": entries,
        "tracker": tracker.name,
        "tracker_params": tracker.params(),
        "chunk_frames": int(chunk_frames),
    }
    digest = hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()
    return {**body, "digest": digest}


def template(recording: Recording, tracker: Tracker, time_chunk: int) -> xr.Dataset:
    """Build the lazy (Dask-backed) dataset that the store's metadata is written from.

    Parameters
    ----------
    recording : Recording
        The views and their metadata.
    tracker : Tracker
        The tracker, whose outputs become data variables.
    time_chunk : int
        Zarr chunk length along ``time``.

    Returns
    -------
    xarray.Dataset
        Data variables full of their fill values, nothing computed.

    """
    import dask.array as da

    n_views, n_time = len(recording.views), recording.n_frames
    coords: dict = {
        "view": _strings(recording.names),
        "time": np.arange(n_time, dtype=np.int64),
    }
    data_vars: dict = {}
    for name, out in tracker.outputs().items():
        for dim in out.dims:
            labels = out.coords[dim]
            if dim in coords and list(coords[dim]) != [str(x) for x in labels]:
                raise ValueError(
                    f"tracker {tracker.name}: coordinate {dim!r} differs between outputs"
                )
            coords[dim] = _strings(labels)
        shape = (n_views, n_time, *out.frame_shape())
        chunks = (1, time_chunk, *out.frame_shape())
        arr = da.full(shape, out.fill, dtype=out.dtype, chunks=chunks)
        data_vars[name] = (("view", "time", *out.dims), arr, dict(out.attrs))
    data_vars[DECODED] = (
        ("view", "time"),
        da.zeros((n_views, n_time), dtype=bool, chunks=(1, time_chunk)),
        {"description": "the frame was decoded and tracked"},
    )
    info = [v.info for v in recording.views]
    coords.update(
        video_path=("view", _strings(v.path for v in recording.views)),
        n_frames=("view", np.array([v.n_frames for v in recording.views], np.int64)),
        fps=("view", np.array([i.fps if i else np.nan for i in info], np.float64)),
        width=("view", np.array([i.width if i else 0 for i in info], np.int64)),
        height=("view", np.array([i.height if i else 0 for i in info], np.int64)),
        codec=("view", _strings(i.codec if i else "" for i in info)),
    )
    return xr.Dataset(data_vars, coords=coords)


def is_store(path: str | Path) -> bool:
    """Whether ``path`` is a mocapflow store."""
    try:
        return read_attrs(path).get("mocapflow_format") == FORMAT
    except StoreError:
        return False


def read_attrs(path: str | Path) -> dict:
    """Return a store's group attributes.

    Raises
    ------
    StoreError
        If ``path`` is not a Zarr group.

    """
    path = Path(path)
    if not (path / "zarr.json").is_file():
        raise StoreError(f"{path}: not a Zarr v3 store (no zarr.json)")
    try:
        return dict(zarr.open_group(str(path), mode="r").attrs)
    except Exception as exc:  # zarr raises several types for foreign or broken metadata
        raise StoreError(f"{path}: unreadable Zarr metadata ({exc})") from None


def check_target(path: str | Path) -> str:
    """Classify a store path: ``"new"``, ``"ours"``; raise if it is something else.

    Raises
    ------
    StoreError
        If the path is a file, a non-empty folder, or a foreign Zarr store.

    """
    path = Path(path)
    if not path.exists():
        return "new"
    if not path.is_dir():
        raise StoreError(f"{path}: exists and is not a folder; choose another --out")
    if not any(path.iterdir()):
        return "new"
    if not is_store(path):
        raise StoreError(
            f"{path}: exists and is not a mocapflow store; choose another --out "
            "or remove it yourself"
        )
    return "ours"


def create(
    path: str | Path,
    recording: Recording,
    tracker: Tracker,
    time_chunk: int,
    attrs: dict,
) -> None:
    """Write the store's template: metadata, coordinates, fill-valued variables.

    Parameters
    ----------
    path : str or pathlib.Path
        The store; must be new or one of ours (which is replaced).
    recording, tracker, time_chunk
        As for :func:`template`.
    attrs : dict
        Group attributes to record (JSON-serialisable).

    """
    path = Path(path)
    if check_target(path) == "ours":
        shutil.rmtree(path)
    elif path.exists():
        path.rmdir()
    ds = template(recording, tracker, time_chunk)
    ds.attrs.update(attrs)
    ds.attrs.update(mocapflow_format=FORMAT, completed=False, template_complete=False)
    # Claim the folder before anything else, so a template write cut short is still
    # recognised as ours (and rebuilt) rather than refused as a foreign store.
    zarr.open_group(str(path), mode="w-", zarr_format=3, attributes=dict(ds.attrs))
    ds.to_zarr(str(path), mode="a", compute=False, consolidated=False, zarr_format=3)
    zarr.open_group(str(path), mode="r+").create_group(PROGRESS_GROUP)
    (path / PROGRESS_GROUP / "chunks").mkdir()
    update_attrs(path, template_complete=True)
    _fsync_dir(path)


def check_region(time_chunk: int, start: int, stop: int, view_end: int) -> None:
    """Refuse a region that does not own whole Zarr chunks (writers would race).

    A region must start on a chunk boundary and end on one, or at the end of
    its view (the rest of that last chunk then belongs to no other task).

    Raises
    ------
    ValueError
        If the region is misaligned.

    """
    if start % time_chunk or not (stop % time_chunk == 0 or stop == view_end):
        raise ValueError(
            f"region {start}:{stop} does not own whole Zarr chunks of {time_chunk} frames"
        )


def write_region(
    path: str | Path,
    view_index: int,
    start: int,
    arrays: dict[str, np.ndarray],
    decoded: np.ndarray,
) -> None:
    """Write one task's results into its region and sync the chunk files to disk.

    Parameters
    ----------
    path : str or pathlib.Path
        The store.
    view_index : int
        Position of the view on the ``view`` axis.
    start : int
        First frame of the region (a multiple of the Zarr chunk length).
    arrays : dict of str to numpy.ndarray
        Each tracker output shaped ``(n, ...)`` for frames ``start..start+n-1``.
    decoded : numpy.ndarray
        ``(n,)`` bool: which frames were decoded.

    """
    n = len(decoded)
    data = {name: (_dims(path, name), values[None]) for name, values in arrays.items()}
    data[DECODED] = (("view", "time"), decoded[None])
    region = {"view": slice(view_index, view_index + 1), "time": slice(start, start + n)}
    xr.Dataset(data).to_zarr(str(path), region=region, mode="r+", consolidated=False)
    _fsync_region(Path(path), list(data), view_index, start, start + n)


_DIMS_CACHE: dict[tuple[str, str], tuple[str, ...]] = {}


def _dims(path: str | Path, name: str) -> tuple[str, ...]:
    key = (str(path), name)
    if key not in _DIMS_CACHE:
        meta = json.loads((Path(path) / name / "zarr.json").read_text())
        _DIMS_CACHE[key] = tuple(meta["dimension_names"])
    return _DIMS_CACHE[key]


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_region(path: Path, names: list[str], view_index: int, start: int, stop: int) -> None:
    """Flush the chunk files a region write produced, so a marker never outlives its data."""
    for name in names:
        meta = json.loads((path / name / "zarr.json").read_text())
        time_chunk = meta["chunk_grid"]["configuration"]["chunk_shape"][1]
        rest = "/".join("0" for _ in meta["shape"][2:])
        for t in range(start // time_chunk, -(-stop // time_chunk)):
            key = f"c/{view_index}/{t}" + (f"/{rest}" if rest else "")
            f = path / name / key
            if f.exists():
                with open(f, "rb+") as fh:
                    os.fsync(fh.fileno())
                _fsync_dir(f.parent)


def _chunk_file(path: Path, view_index: int, start: int, stop: int) -> Path:
    return path / PROGRESS_GROUP / "chunks" / f"{view_index:05d}_{start:09d}_{stop:09d}.json"


def mark_done(path: str | Path, view_index: int, start: int, stop: int, record: dict) -> None:
    """Record a task as done: write its JSON atomically (temp file, fsync, rename)."""
    target = _chunk_file(Path(path), view_index, start, stop)
    tmp = target.with_suffix(f".tmp{os.getpid()}")
    with open(tmp, "w") as fh:
        json.dump(record, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, target)
    _fsync_dir(target.parent)


def remove_partial_files(path: str | Path) -> int:
    """Delete temporary files that a killed writer left (zarr and ours write atomically)."""
    n = 0
    for f in Path(path).rglob("*.partial"):
        f.unlink(missing_ok=True)
        n += 1
    for f in (Path(path) / PROGRESS_GROUP / "chunks").glob("*.tmp*"):
        f.unlink(missing_ok=True)
        n += 1
    return n


def done_chunks(path: str | Path) -> dict[tuple[int, int, int], dict]:
    """Return the records of finished tasks, keyed by ``(view_index, start, stop)``."""
    folder = Path(path) / PROGRESS_GROUP / "chunks"
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


def update_attrs(path: str | Path, **attrs) -> None:
    """Merge attributes into the store's group attributes."""
    zarr.open_group(str(path), mode="r+").attrs.update(attrs)


def finalize(path: str | Path, views: dict[str, dict], completed: bool) -> None:
    """Record each view's outcome and the end of the run.

    Parameters
    ----------
    path : str or pathlib.Path
        The store.
    views : dict
        View name to ``{"status", "error", "n_decoded"}``.
    completed : bool
        Whether every task of every readable view has finished.

    """
    update_attrs(path, view_status=views, completed=completed, end_time=_now())


def open_store(path: str | Path) -> xr.Dataset:
    """Open a store lazily with xarray.

    Raises
    ------
    StoreError
        If the path is not a mocapflow store.

    """
    if not is_store(path):
        raise StoreError(f"{path}: not a mocapflow store")
    return xr.open_zarr(str(path), consolidated=False)


def summary(path: str | Path) -> dict:
    """Summarise a store for ``mocapflow info``.

    Returns
    -------
    dict
        ``attrs`` (run facts) and ``views``: per view the frames, size, codec,
        status, decoded frames and the percentage of frames with a detection.

    """
    ds = open_store(path)
    attrs = dict(ds.attrs)
    status = attrs.get("view_status", {})
    detect_var = next((v for v in ("confidence", "position") if v in ds), None)
    views = []
    for i, name in enumerate(ds.view.values):
        name = str(name)
        n = int(ds.n_frames.values[i])
        decoded = int(ds[DECODED].isel(view=i).sum())
        row = {
            "view": name,
            "frames": n,
            "size": f"{int(ds.width.values[i])}x{int(ds.height.values[i])}",
            "codec": str(ds.codec.values[i]),
            "decoded": decoded,
            "status": status.get(name, {}).get("status", "incomplete"),
            "error": status.get(name, {}).get("error"),
        }
        if detect_var and n:
            values = ds[detect_var].isel(view=i, time=slice(0, n)).values
            found = np.isfinite(values).reshape(n, -1).any(axis=1)
            row["detected_pct"] = 100.0 * float(found.mean())
        views.append(row)
    return {"attrs": attrs, "views": views}


def software_attrs() -> dict:
    """Attributes naming the software (movement's convention)."""
    return {"source_software": "mocapflow", "source_version": __version__}
