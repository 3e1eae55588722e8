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
from dataclasses import dataclass
from pathlib import Path

from . import __version__
from . import store as _store
from .errors import StoreError, UsageError
from .schema import (
    DECODED,
    FILTERED,
    FORMAT,
    GROUPS_3D,
    KINEMATICS_GROUPS,
    POINTS3D,
)

__all__ = [
    "LEDGER_GROUP",
    "Problem",
    "changed_videos",
    "changes",
    "check_layout",
    "check_whole",
    "choose_group",
    "complete_groups",
    "done_chunks",
    "finalize",
    "forget_group",
    "fingerprint",
    "freshness",
    "group_records",
    "is_ours",
    "layout_of",
    "mark_done",
    "now",
    "prepare",
    "record_export",
    "record_group",
    "record_render",
    "render_record",
    "remake_command",
    "remove_partial_files",
    "root_attrs",
    "set_attrs",
    "source_of",
    "state",
    "summary",
    "tracks_digest",
    "unfinished_groups",
    "verify",
    "video_digest",
    "view_outcomes",
]

logger = logging.getLogger(__name__)

#: The store's own group for the ledger (a Zarr group, so Zarr tools leave it be).
LEDGER_GROUP = "_mocapflow"
_RECORDS = "chunks"  # one JSON per finished tracking task
_GROUPS = "groups"  # one JSON per 3-D group written
_ATTRS = "attrs.json"  # a copy of the root attributes
_EXPORTS = "exports.json"  # which group version each export was written from
_RENDER = "render.json"  # the last render: its videos and thumbnails (the run report shows them)
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


def fingerprint(
    videos, tracker, chunk_frames: int, known: dict | None = None, params: dict | None = None
) -> dict:
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
    params : dict, optional
        The tracker's parameters, when already read (a plan holds them);
        default ``tracker.params()``.

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
        "tracker_params": tracker.params() if params is None else params,
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


def _dir(path: Path) -> Path:
    return Path(path) / LEDGER_GROUP


def _records(path: Path) -> Path:
    return _dir(path) / _RECORDS


def _record_file(path: Path, view_index: int, start: int, stop: int) -> Path:
    return _records(path) / f"{view_index:05d}_{start:09d}_{stop:09d}.json"


def _write_json(target: Path, obj) -> None:
    """Write JSON atomically: temporary file, fsync, rename, fsync the folder."""
    tmp = target.with_suffix(f".tmp{os.getpid()}")
    with open(tmp, "w") as fh:
        json.dump(obj, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, target)
    _store.fsync_dir(target.parent)


def _read_json(file: Path, default):
    try:
        return json.loads(file.read_text())
    except (OSError, json.JSONDecodeError):
        return default


def _mirror(path: Path) -> dict:
    """Return the ledger's copy of the root attributes (it survives damage to the root)."""
    return _read_json(_dir(path) / _ATTRS, {})


def _attrs_or_mirror(path: str | Path) -> tuple[dict, bool]:
    """Return the root attributes (and True), or the ledger's copy (and False) if unreadable."""
    try:
        return _store.read_attrs(path), True
    except StoreError:
        return _mirror(Path(path)), False


def layout_of(path: str | Path, attrs: dict | None = None) -> str | None:
    """Return the store layout a mocapflow store declares, or None if it declares none.

    The root attributes (``attrs`` when already read) say, or the ledger's copy
    of them when the root is damaged.
    """
    found = (attrs if attrs is not None else _attrs_or_mirror(path)[0]).get("mocapflow_format")
    if found is None:
        found = _mirror(Path(path)).get("mocapflow_format")
    return found if isinstance(found, str) else None


def check_layout(path: str | Path, attrs: dict | None = None) -> None:
    """Refuse a store written with another layout version, naming both and the fix.

    Raises
    ------
    StoreError
        If the store declares a layout other than this version's.

    """
    attrs = attrs if attrs is not None else _attrs_or_mirror(path)[0]
    found = layout_of(path, attrs)
    if found is not None and found != FORMAT:
        made_by = attrs.get("source_version") or "another version"
        raise StoreError(
            f"{path}: made by mocapflow {made_by} with store layout {found}; this mocapflow "
            f"({__version__}) reads {FORMAT}; process the recording again into a new store "
            "(--out NEW.zarr, or --overwrite to replace this one), or read it with the "
            "version that made it"
        )


def is_ours(path: str | Path) -> bool:
    """Whether ``path`` is a mocapflow store, even one whose root metadata is damaged."""
    return _store.is_store(path) or _mirror(Path(path)).get("mocapflow_format") == FORMAT


def root_attrs(path: str | Path) -> dict:
    """Return the root attributes, from the ledger's copy when the root metadata is damaged."""
    try:
        attrs = _store.read_attrs(path)
    except StoreError:
        attrs = _mirror(Path(path))
        if not attrs:
            raise
    check_layout(path, attrs)
    return attrs


def set_attrs(path: str | Path, **attrs) -> None:
    """Update the root attributes and the ledger's copy of them."""
    _store.update_attrs(path, **attrs)
    mirror = _mirror(Path(path))
    mirror.update(attrs)
    _write_json(_dir(path) / _ATTRS, mirror)


def state(path: str | Path, fp: dict) -> str:
    """Return ``new``, ``resume``, ``complete`` or ``changed`` for a store and the inputs now."""
    path = Path(path)
    if not path.exists() or not is_ours(path):
        return "new"
    attrs = root_attrs(path)
    if not attrs.get("template_complete"):
        return "new"
    if attrs.get("fingerprint", {}).get("digest") != fp["digest"]:
        return "changed"
    return "complete" if attrs.get("completed") else "resume"


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a store.

    Attributes
    ----------
    where : str
        The chunk key (``position/c/1/2/0/0/0``), array or group.
    what : str
        What is wrong with it.
    task : tuple or None
        The tracking task that wrote it, ``(view_index, start, stop)``.
    group : str or None
        The 3-D group it belongs to.

    """

    where: str
    what: str
    task: tuple | None = None
    group: str | None = None

    def __str__(self) -> str:
        return f"{self.where}: {self.what}"


def _check_chunks(path: Path, chunks: dict, task=None, group=None) -> list[Problem]:
    out = []
    for key, want in chunks.items():
        file = _store.chunk_path(path, key)
        if not file.is_file():
            out.append(Problem(key, "missing", task, group))
        elif _store.digest(file) != want:
            out.append(Problem(key, "damaged (its checksum differs)", task, group))
    return out


def verify(path: str | Path) -> list[Problem]:
    """Check every chunk and every group of a store against the ledger.

    Returns
    -------
    list of Problem
        Empty when the store is whole: root and array metadata readable, every
        chunk that a finished task or a 3-D group wrote present and unchanged.

    Raises
    ------
    StoreError
        If the path is not a mocapflow store at all.

    """
    path = Path(path)
    if not path.exists():
        raise StoreError(f"{path}: no such store; check the path")
    check_layout(path)
    if not is_ours(path):
        raise StoreError(f"{path}: not a mocapflow store")
    problems = []
    if not _store.is_store(path):
        problems.append(Problem("zarr.json", "the root metadata is missing or unreadable"))
    for name in _mirror(path).get("arrays", []):
        if not _store.array_readable(path, name):
            problems.append(Problem(name, "its metadata (zarr.json) is missing or unreadable"))
    for key, record in done_chunks(path).items():
        problems += _check_chunks(path, record.get("chunks", {}), task=key)
    records = group_records(path)
    for group in unfinished_groups(path, records):
        command = remake_command(group, path).split()[1]
        problems.append(
            Problem(
                group,
                f"unfinished: a mocapflow {command} was stopped before it finished",
                group=group,
            )
        )
    for group, record in records.items():
        for name in record.get("arrays", []):
            if not _store.array_readable(path, name):
                problems.append(Problem(name, "its metadata is missing or unreadable", group=group))
        problems += _check_chunks(path, record.get("chunks", {}), group=group)
    return problems


def check_whole(path: str | Path, what: str) -> None:
    """Raise one line naming the first problem of a damaged part; do nothing if it is whole.

    ``what`` is ``"tracks"`` (the root's 2-D data and metadata) or a 3-D group.

    Raises
    ------
    StoreError
        Naming the store, the chunk or array, and what to run.

    """
    problems = [p for p in verify(path) if p.group == (None if what == "tracks" else what)]
    if problems and problems[0].what.startswith("unfinished"):
        raise StoreError(
            f"{path}: {what} is {problems[0].what}, so it holds no results; "
            f"rerun {remake_command(what, path)}"
        )
    if problems:
        more = f" and {len(problems) - 1} more" if len(problems) > 1 else ""
        fix = (
            f"rerun mocapflow {'triangulate' if problems[0].group == 'points3d' else 'filter'}"
            if problems[0].group
            else "rerun mocapflow process on its recording to recompute it"
        )
        raise StoreError(
            f"{path}: damaged: {problems[0]}{more}; {fix} (mocapflow verify {path} lists all)"
        )


def tracks_digest(path: str | Path) -> str:
    """Digest the 2-D tracks as the ledger knows them: the inputs and every chunk written."""
    fp = root_attrs(path).get("fingerprint", {}).get("digest", "")
    chunks = sorted(
        (str(k), sorted(r.get("chunks", {}).items())) for k, r in done_chunks(path).items()
    )
    return hashlib.sha256(json.dumps([fp, chunks]).encode()).hexdigest()


def group_records(path: str | Path) -> dict[str, dict]:
    """Return the record of every 3-D group written: its source, arrays and chunk digests."""
    folder = _dir(Path(path)) / _GROUPS
    if not folder.is_dir():
        return {}
    return {f.stem: _read_json(f, {}) for f in sorted(folder.glob("*.json"))}


def remake_command(group: str, path: str | Path) -> str:
    """Return the command that makes a 3-D group again (``triangulate`` needs a calibration)."""
    if group == POINTS3D:
        return f"mocapflow triangulate {path} -c CALIBRATION"
    return f"mocapflow filter {path}"


def unfinished_groups(path: str | Path, records: dict | None = None) -> list[str]:
    """Return the 3-D groups present in the store that no completion record vouches for.

    A group is whole only by its record, written after its last chunk: a group
    without one was cut short (its run killed), and its values are not results.
    """
    records = group_records(path) if records is None else records
    return [g for g in GROUPS_3D if g not in records and _store.has_group(path, g)]


def choose_group(path: str | Path, group: str | None, required: bool = True) -> str | None:
    """Return the 3-D group a stage reads: ``group`` if given and whole, else the preferred one.

    Parameters
    ----------
    path : str or pathlib.Path
        The store.
    group : str, optional
        ``--group``; default the first whole one of :data:`~mocapflow.schema.GROUPS_3D`
        (``filtered``, else ``points3d``).
    required : bool
        Raise when the store has no whole 3-D group; False returns None then.

    Raises
    ------
    UsageError
        For a group that is not a 3-D group.
    StoreError
        For a group the store lacks or that is damaged, or none when required.
    """
    path = Path(path)
    if group is None:
        complete = complete_groups(path)
        if not complete and required:
            raise StoreError(f"{path}: no 3-D points; run mocapflow triangulate first")
        return complete[0] if complete else None
    if group not in GROUPS_3D:
        raise UsageError(f"--group {group}: choose from {', '.join(GROUPS_3D)}")
    if not _store.has_group(path, group):
        raise StoreError(f"{path}: no {group} group; run mocapflow run or triangulate first")
    check_whole(path, group)
    return group


def complete_groups(path: str | Path) -> list[str]:
    """Return the 3-D groups whose completion record exists, preferred first."""
    records = group_records(path)
    return [g for g in GROUPS_3D if g in records and _store.has_group(path, g)]


def forget_group(path: str | Path, group: str) -> None:
    """Drop a group's completion record before the group is rewritten."""
    file = _dir(Path(path)) / _GROUPS / f"{group}.json"
    if file.exists():
        file.unlink()
        _store.fsync_dir(file.parent)


def record_group(path: str | Path, group: str, source: dict) -> dict:
    """Record a 3-D group just written: what it was made from and a digest of each chunk."""
    path = Path(path)
    arrays = _store.group_arrays(path, group)
    chunks = {
        key: _store.digest(file)
        for name in arrays
        for key, file in _store.array_chunk_files(path, name)
    }
    body = {"source": source, "arrays": arrays, "chunks": chunks, "made": now()}
    body["digest"] = hashlib.sha256(json.dumps(sorted(chunks.items())).encode()).hexdigest()
    folder = _dir(path) / _GROUPS
    folder.mkdir(exist_ok=True)
    _write_json(folder / f"{group}.json", body)
    return body


def source_of(path: str | Path, group: str) -> dict:
    """Return what a group made now would be made from (see :func:`freshness`)."""
    if group == POINTS3D:
        source = {"tracks": tracks_digest(path)}
        sync = root_attrs(path).get("sync") or {}
        if sync:  # offsets set or found: the 3-D depends on them
            source["sync"] = {"reference": sync.get("reference"), "offsets": sync.get("offsets")}
        return source
    records = group_records(path)
    if group in KINEMATICS_GROUPS:  # made from filtered, or points3d: either changing stales it
        return {g: records[g].get("digest") for g in GROUPS_3D if g in records}
    return {POINTS3D: records.get(POINTS3D, {}).get("digest")}


def freshness(path: str | Path) -> dict[str, str | None]:
    """Per 3-D group and export: None if it is up to date, else why it is stale."""
    records = group_records(path)
    out: dict[str, str | None] = {}
    for group in (POINTS3D, FILTERED):
        if group not in records:
            continue
        source = records[group].get("source")
        upstream = POINTS3D if group == FILTERED else "the 2-D tracks"
        if source != source_of(path, group) or (group == FILTERED and out.get(POINTS3D)):
            command = "triangulate" if group == POINTS3D else "filter"
            out[group] = f"made from {upstream} as they were before; rerun mocapflow {command}"
        else:
            out[group] = None
    for group in KINEMATICS_GROUPS:
        if group in records:
            stale = records[group].get("source") != source_of(path, group)
            out[group] = "made from the 3-D as it was before; rerun mocapflow kinematics" if (
                stale) else None  # fmt: skip
    for file, export in _read_json(_dir(Path(path)) / _EXPORTS, {}).items():
        group = export.get("group")
        current = records.get(group, {}).get("digest")
        if not Path(file).is_file():
            continue
        stale = export.get("source") != current or out.get(group)
        out[file] = f"made from {group} as it was before; rerun mocapflow export" if stale else None
    return out


def record_export(path: str | Path, file: Path, group: str) -> None:
    """Remember which version of a group an exported file was written from."""
    exports = _read_json(_dir(Path(path)) / _EXPORTS, {})
    exports[str(Path(file).resolve())] = {
        "group": group,
        "source": group_records(path).get(group, {}).get("digest"),
    }
    _write_json(_dir(Path(path)) / _EXPORTS, exports)


def _repair(path: Path, problems: list[Problem], layout: dict, attrs: dict) -> None:
    """Mend what a rerun can: rewrite lost metadata, forget damaged tasks (recomputed next)."""
    if any(p.where == "zarr.json" for p in problems):
        _store.restore_root(path, attrs)
    lost = [p.where for p in problems if p.where in layout]
    if lost:
        _store.restore_arrays(path, layout, lost)
    tasks = {p.task for p in problems if p.task is not None}
    for v, a, b in tasks:
        _record_file(path, v, a, b).unlink(missing_ok=True)
    groups = sorted({p.group for p in problems if p.group})
    logger.warning(
        "%s: %d problems found (%s%s); %d tasks will be recomputed%s",
        path,
        len(problems),
        problems[0],
        ", ..." if len(problems) > 1 else "",
        len(tasks),
        f"; {', '.join(groups)} damaged: rerun triangulate/filter" if groups else "",
    )


def prepare(path: str | Path, plan, overwrite: bool) -> dict:
    """Create the store, or check an existing one: same inputs, whole, or mended.

    A store made from the same inputs is checked against the ledger: lost
    metadata is rewritten from the template, and tasks whose chunks are
    missing or damaged are forgotten, so that this run recomputes exactly them.

    Parameters
    ----------
    path : path
        The store.
    plan : Plan
        The run's plan (see :func:`mocapflow.plan.make_plan`): its recording,
        tracker and chunking are the inputs.
    overwrite : bool
        Replace a store made from other inputs (and its 3-D groups).

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
    if path.exists() and not overwrite:
        check_layout(path)
    elif path.exists() and layout_of(path) not in (None, FORMAT):
        _store.remove(path)  # --overwrite: a store of another layout is replaced whole
    kind = "ours" if path.exists() and is_ours(path) else _store.check_target(path)
    attrs = root_attrs(path) if kind == "ours" else {}
    videos = [v.path for v in plan.recording.views]
    fp = fingerprint(videos, plan.tracker, plan.chunk_frames, attrs.get("fingerprint"), plan.params)
    layout = plan.layout()
    if attrs.get("template_complete") and not overwrite:
        old = attrs.get("fingerprint", {})
        if old.get("digest") != fp["digest"]:
            raise StoreError(
                f"{path}: holds results from other inputs ({'; '.join(changes(old, fp))}); "
                "rerun with --overwrite to start afresh, or choose another --out"
            )
        if n := remove_partial_files(path):
            logger.info("%s: removed %d temporary files left by an interrupted run", path, n)
        if problems := verify(path):
            _repair(path, problems, layout, attrs)
        if old.get("videos") != fp["videos"]:  # same content, new mtimes: remember them
            set_attrs(path, fingerprint=fp)
        return done_chunks(path)
    attrs = {**plan.attrs(), "fingerprint": fp}
    if kind == "ours":
        _store.remove(path)  # --overwrite, or a template cut short
    _store.create(path, layout, attrs)
    _store.require_group(path, LEDGER_GROUP)
    _records(path).mkdir(exist_ok=True)
    mirror = {**attrs, "mocapflow_format": FORMAT, "arrays": list(layout)}
    _write_json(_dir(path) / _ATTRS, mirror)
    set_attrs(path, template_complete=True)
    _store.fsync_dir(path)
    return {}


def changed_videos(path: str | Path, recording) -> list[str]:
    """Return the views whose video no longer has the content the store was made from.

    Every video is read again (no digest reused), so a file replaced during a
    run is caught even if it kept its size and modification time.
    """
    recorded = {v[0]: v[-1] for v in root_attrs(path).get("fingerprint", {}).get("videos", [])}
    changed = []
    for view in recording.views:
        try:
            now_digest = video_digest(view.path)
        except OSError:
            now_digest = ""
        if view.name in recorded and recorded[view.name] != now_digest:
            changed.append(view.name)
    return changed


def mark_done(path: str | Path, view_index: int, start: int, stop: int, record: dict) -> None:
    """Record a task as done: write its JSON atomically (temp file, fsync, rename)."""
    _write_json(_record_file(Path(path), view_index, start, stop), record)


def remove_partial_files(path: str | Path) -> int:
    """Delete temporary files that a killed writer left (zarr and the ledger write atomically)."""
    n = 0
    for f in Path(path).rglob("*.partial"):
        f.unlink(missing_ok=True)
        n += 1
    for f in _dir(Path(path)).rglob("*.tmp*"):
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
    set_attrs(path, view_status=views, completed=completed, end_time=now())


def summary(path: str | Path) -> dict:
    """Summarise a store for ``mocapflow info``.

    Returns
    -------
    dict
        ``attrs`` (run facts); ``views``: per view the frames, size, codec,
        status, decoded frames and the percentage of frames with a detection;
        ``groups``: per 3-D group, :func:`mocapflow.quality.points_summary`;
        ``problems`` (see :func:`verify`) and ``stale`` (see :func:`freshness`).
        Damaged parts are named, never read.

    """
    import numpy as np

    problems = verify(path)
    damaged = {p.group for p in problems}
    attrs = root_attrs(path)
    status = attrs.get("view_status", {})
    views = []
    if None not in damaged:
        tracks = _store.open_arrays(path)
        names = set(tracks.array_keys())
        detect_var = next((v for v in ("confidence", "position") if v in names), None)
        labels = {k: tracks[k][:] for k in ("view", "n_frames", "width", "height", "codec")}
        decoded = tracks[DECODED]  # each array opened once: its metadata is a file read
        detect = tracks[detect_var] if detect_var else None
        for i, name in enumerate(labels["view"]):
            name = str(name)
            n = int(labels["n_frames"][i])
            row = {
                "view": name,
                "frames": n,
                "size": f"{int(labels['width'][i])}x{int(labels['height'][i])}",
                "codec": str(labels["codec"][i]),
                "decoded": int(decoded[i].sum()),
                "status": status.get(name, {}).get("status", "incomplete"),
                "error": status.get(name, {}).get("error"),
            }
            if detect is not None and n:
                values = detect[i, :n]
                found = np.isfinite(values).reshape(n, -1).any(axis=1)
                row["detected_pct"] = 100.0 * float(found.mean())
            views.append(row)
    groups = {}
    for g in reversed(GROUPS_3D):
        if g not in damaged and _store.has_group(path, g):
            from .quality import points_summary  # xarray: only where there are 3-D points

            groups[g] = points_summary(_store.open_group(path, g))
    return {
        "attrs": attrs,
        "views": views,
        "groups": groups,
        "problems": problems,
        "stale": {k: v for k, v in freshness(path).items() if v},
    }


def record_render(path: str | Path, record: dict) -> None:
    """Record the last render of a store: its group, videos and thumbnails (paths as strings)."""
    folder = _dir(Path(path))
    folder.mkdir(exist_ok=True)
    _write_json(folder / _RENDER, {**record, "made": now()})


def render_record(path: str | Path) -> dict:
    """Return the last render's record (see :func:`record_render`), or ``{}``."""
    return _read_json(_dir(Path(path)) / _RENDER, {})
