"""The one place that computes: tracking runs, triangulation and filtering of a store.

:func:`process` holds the store's lock, prepares the store through the
ledger, opens a :class:`~mocapflow.cluster.Session`, computes the write tasks
of :func:`mocapflow.graph.write_tasks` as they finish, and records the outcome.
:func:`triangulate_store` and :func:`filter_store` compute the 3-D graphs into
their groups the same way.
"""

from __future__ import annotations

import contextlib
import html
import logging
import os
import shutil
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from . import graph, ledger, schema, sync
from . import store as _store
from .cluster.session import ClusterOptions, Session, Work
from .errors import StoreBusyError, StoreError, UsageError, shown_path
from .plan import Plan, make_plan
from .recording import Recording
from .report import run_report_path, write_run_report
from .schema import (
    DEFAULT_CHUNK_FRAMES,
    DEFAULT_TRACKER,
    FILTERED,
    POINTS3D,
    STORE_NAME,
    FilterSettings,
    TriangulationSettings,
)
from .tasks import FATAL_ERRNOS
from .trackers import Tracker

if TYPE_CHECKING:
    import xarray as xr
    from distributed import Client

__all__ = [
    "RunResult",
    "check_outputs",
    "filter_store",
    "lock_path",
    "process",
    "report_path",
    "store_lock",
    "triangulate_store",
]

logger = logging.getLogger(__name__)


@dataclass
class RunResult:
    """What :func:`process` did.

    Attributes
    ----------
    store : pathlib.Path
        The Zarr store.
    views : dict
        View name to ``{"status", "error", "n_decoded", "n_frames"}``.
    n_tasks, computed, skipped : int
        Tasks in the plan, run now, and found done from an earlier run.
    failed_tasks : list of dict
        Records of tasks that failed.
    sizing : dict or None
        The cluster sizing decision (None on a given client or a remote cluster).
    dashboard : str or None
        The dashboard URL.
    report : pathlib.Path or None
        Dask's performance report (how the cluster spent its time).
    run_report : pathlib.Path or None
        The run report (views, rates, detections, failures; see mocapflow.report).
    seconds : float
        Wall time of the run.

    """

    store: Path
    views: dict
    n_tasks: int
    computed: int
    skipped: int
    failed_tasks: list = field(default_factory=list)
    sizing: dict | None = None
    dashboard: str | None = None
    report: Path | None = None
    seconds: float = 0.0
    run_report: Path | None = None

    @property
    def failed_views(self) -> list[str]:
        """Views that did not finish cleanly."""
        return [name for name, v in self.views.items() if v["status"] != "ok"]

    @property
    def exit_code(self) -> int:
        """0 when every view succeeded, 1 when some failed or are partial."""
        return 1 if self.failed_views else 0

    def open(self) -> xr.Dataset:
        """Open the store lazily."""
        return _store.open_tracks(self.store)


def report_path(store: Path) -> Path:
    """Where the performance report of a store goes: beside it."""
    return store.with_name(store.name.removesuffix(".zarr") + ".report.html")


def lock_path(store: Path) -> Path:
    """Return the store's lock file: beside it, so replacing the store keeps the lock."""
    return store.with_name(f".{store.name}.lock")


@contextlib.contextmanager
def store_lock(store: str | Path):
    """Hold a store's lock for a whole run, or raise at once if another run holds it.

    The lock is ``filelock``'s (``flock`` on Unix): the kernel releases it when
    its process dies, so a killed run never leaves the store locked. The
    holder writes who it is into the lock file, for the message others get.

    Raises
    ------
    StoreBusyError
        If another run holds the lock; the message names its host and process.

    """
    from filelock import FileLock, Timeout

    store = Path(store)
    path = lock_path(store)
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(path))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        try:
            holder = path.read_text().strip() or "another run"
        except OSError:
            holder = "another run"
        raise StoreBusyError(
            f"{store}: busy: {holder} is writing it; wait for it to finish, or choose another --out"
        ) from None
    try:
        with open(path, "r+") as fh:
            fh.truncate()
            fh.write(f"process {os.getpid()} on {socket.gethostname()} since {ledger.now()}\n")
        yield
    finally:
        lock.release()


def process(
    recording: Plan | Recording | str | Path,
    tracker: str | Tracker = DEFAULT_TRACKER,
    out: str | Path | None = None,
    *,
    tracker_params: dict | None = None,
    chunk_frames: int = DEFAULT_CHUNK_FRAMES,
    cluster: ClusterOptions | Session | Client | str | None = None,
    report: bool = True,
    overwrite: bool = False,
    retries: int = 2,
) -> RunResult:
    """Track a recording on a cluster, streaming every chunk into a Zarr store.

    A rerun of the same command resumes: tasks already recorded done are
    skipped. A store made from other inputs is refused unless ``overwrite``.
    Every option is checked before anything is written.

    Parameters
    ----------
    recording : Plan, Recording or path
        The recording, or its plan (see :func:`mocapflow.plan.make_plan`),
        which then says the tracker and chunking.
    tracker : str or Tracker
        Tracker name, ``package.module:factory``, or an instance.
    out : path, optional
        The store; default ``RECORDING/mocapflow.zarr``.
    tracker_params : dict, optional
        Parameters for the tracker.
    chunk_frames : int
        Target frames per task.
    cluster : ClusterOptions, Session, Client or str, optional
        Where to compute (see :class:`~mocapflow.cluster.ClusterOptions`): a
        profile name, options (profile, workers, dashboard address, progress
        callback), a running session to share, or a client. Its ``on_event``
        is called as ``on_event("start", {...})`` once the cluster is up and
        ``on_event("chunk", record)`` as each task finishes.
    report : bool
        Save a self-contained performance report beside the store.
    overwrite : bool
        Replace an existing store made from other inputs.
    retries : int
        Retries of a task that raised or whose worker died.

    Returns
    -------
    RunResult
        The store, per-view outcomes and run facts.

    """
    t0 = time.perf_counter()
    session = Session(Work(1), cluster)
    if isinstance(recording, Plan):
        plan = recording
    else:
        plan = make_plan(recording, tracker, chunk_frames, tracker_params)
    session.plan(Work(len(plan.specs), plan.frame_bytes))  # refuse a worker count that cannot work
    store = Path(out) if out is not None else plan.recording.path / STORE_NAME
    check_outputs(store, report_path(store), lock_path(store))
    session.check_reachable()  # a remote scheduler answers before the store is touched
    with _fatal_as_one_line(store), store_lock(store):
        done = ledger.prepare(store, plan, overwrite)
        todo = [s for s in plan.specs if s.key not in done]
        records = {k: r for k, r in done.items() if k in {s.key for s in plan.specs}}
        logger.info(
            "%s: %d tasks, %d already done (skipped), %d to compute",
            store,
            len(plan.specs),
            len(plan.specs) - len(todo),
            len(todo),
        )
        rpath = report_path(store) if report and todo else None
        dashboard = _run_todo(session, plan, store, todo, records, rpath, retries)
        views, completed = _outcomes(store, plan, records)
        ledger.finalize(store, views, completed)
        run_report = write_run_report(store) if report else None
    return RunResult(
        store=store,
        views=views,
        n_tasks=len(plan.specs),
        computed=len(todo),
        skipped=len(plan.specs) - len(todo),
        failed_tasks=[records[s.key] for s in todo if records[s.key]["status"] == "failed"],
        sizing=session.sizing.to_dict() if session.sizing else None,
        dashboard=dashboard,
        report=rpath,
        seconds=time.perf_counter() - t0,
        run_report=run_report,
    )


def _run_todo(session, plan, store, todo, records, rpath, retries) -> str | None:
    """Compute the tasks left to do (if any) on the session's cluster; return its dashboard."""
    start = {"n_tasks": len(plan.specs), "todo": len(todo), "store": store}
    if not todo:
        session.event("start", {**start, "dashboard": None, "session": None})
        return None
    session.work = Work(len(todo), plan.frame_bytes)
    with session:
        ledger.set_attrs(
            store, cluster=session.describe(), start_time=ledger.now(), completed=False
        )
        session.event("start", {**start, "dashboard": session.dashboard, "session": session})
        records.update(_compute_tasks(session, plan, todo, store, retries, rpath))
        return session.dashboard


def _outcomes(store: Path, plan: Plan, records: dict) -> tuple[dict, bool]:
    """Per-view outcomes of a run, and whether every task of the plan is done."""
    rec = plan.recording
    views = ledger.view_outcomes(rec, records)
    completed = all(s.key in records and records[s.key]["status"] != "failed" for s in plan.specs)
    for name in ledger.changed_videos(store, rec):
        view = next(v for v in rec.views if v.name == name)
        views[name].update(
            status="failed",
            error=f"{view.path}: the video changed during the run, so its frames mix the "
            "old file and the new; rerun with --overwrite to track the new one",
        )
        completed = False
    return views, completed


@contextlib.contextmanager
def _report(client, rpath: Path | None, what: str):
    """Save Dask's performance report, whole or not at all (written aside, then renamed).

    The report's "calling code" is ``what``: the run in words. Left to itself,
    distributed finds the calling frame's source with :mod:`inspect`, which
    scans every loaded module (about 0.2 s here) to show a function of
    mocapflow's that says nothing about the run.
    """
    if rpath is None:
        yield
        return
    from distributed import performance_report

    tmp = rpath.with_name(rpath.name + ".partial")
    perf = performance_report(filename=str(tmp), mode="inline")
    try:
        client.sync(perf.__aenter__)
        yield
        client.sync(perf.__aexit__, None, None, None, code=html.escape(what))  # put in HTML as is
        os.replace(tmp, rpath)
    finally:
        tmp.unlink(missing_ok=True)


def _free_space(path: Path) -> str:
    for folder in [path, *path.parents]:
        if folder.exists():
            return f"{shutil.disk_usage(folder).free / 2**20:.0f} MiB free"
    return "free space unknown"


@contextlib.contextmanager
def _fatal_as_one_line(store: Path):
    """Turn a full or read-only disk into one line naming the store; the rerun resumes."""
    try:
        yield
    except OSError as exc:
        if exc.errno not in FATAL_ERRNOS:
            raise
        raise StoreError(
            f"{store}: cannot write: {os.strerror(exc.errno)} ({_free_space(store)}); "
            "make room (or make it writable) and rerun to resume"
        ) from None


def check_outputs(*paths: Path) -> None:
    """Refuse output paths the file system cannot hold, before any work starts.

    Raises
    ------
    UsageError
        If a name is longer than its folder's file system allows.

    """
    for path in paths:
        path = Path(path)
        try:
            size = len(os.fsencode(path.absolute()))
        except UnicodeEncodeError:
            size = 0
        if size >= 4096:
            raise UsageError(
                f"{shown_path(path)}: the path is {size} bytes, more than the 4096 the system "
                "allows; choose a shorter --out"
            )
        folder = next((p for p in path.absolute().parents if p.exists()), Path("/"))
        try:
            limit = os.pathconf(folder, "PC_NAME_MAX")
        except (OSError, ValueError):
            limit = 255
        for part in path.absolute().relative_to(folder).parts:
            if (size := len(os.fsencode(part))) > limit:
                raise UsageError(
                    f"{shown_path(path)}: the name {part[:40]}... is {size} bytes, "
                    f"more than the {limit} its file system allows; choose a shorter --out"
                )
        if path.is_symlink():
            target = os.readlink(path)
            state = (
                "which does not exist"
                if not path.exists()
                else ("a folder" if path.is_dir() else "a file")
            )
            raise UsageError(
                f"{shown_path(path)}: is a link to {shown_path(target)}, {state}; give the store's "
                "real path as --out (mocapflow does not write through links)"
            )
        if not folder.is_dir():
            raise UsageError(f"{shown_path(folder)}: is not a folder; choose another --out")
        if not os.access(folder, os.W_OK | os.X_OK):
            raise UsageError(
                f"{shown_path(folder)}: no permission to write there; choose another --out, or "
                "make the folder writable"
            )


def _compute_tasks(session, plan, todo, store, retries, rpath) -> dict:
    """Compute the write tasks, recording each as it finishes; a task that raised is failed."""
    from distributed import as_completed

    client = session.client
    records = {}
    what = (
        f"mocapflow process: {len(todo)} tasks over {len({s.view for s in todo})} videos, "
        f"tracker {plan.describe()}, store {store}"
    )
    with _report(client, rpath, what):
        tasks = graph.write_tasks(plan, todo, store, session.decode_threads)
        futures = client.compute(tasks, retries=retries)
        index = {f.key: s for f, s in zip(futures, todo, strict=True)}
        for fut in as_completed(futures):
            spec = index[fut.key]
            try:
                record = fut.result()
            except Exception as exc:  # the task raised on every try: record it and go on
                record = {
                    "view": spec.view,
                    "view_index": spec.view_index,
                    "start": spec.start,
                    "stop": spec.stop,
                    "n_decoded": 0,
                    "status": "failed",
                    "error": f"{spec.path} frames {spec.start}:{spec.stop}: "
                    f"{type(exc).__name__}: {exc}",
                }
                logger.info("%s", record["error"])
            if record["status"] == "fatal":  # a retry cannot mend it: stop everything
                client.cancel(futures)
                raise OSError(record["errno"], record["error"])
            records[spec.key] = record
            session.event("chunk", record)
    return records


def _watch(session: Session, future, label: str) -> None:
    """Wait for a future, reporting ``on_event("stage", ...)`` as its tasks finish."""
    if session.on_event is None:
        future.result()
        return
    from distributed.diagnostics.progressbar import TextProgressBar

    class _Stage(TextProgressBar):
        def _draw_bar(self, remaining, all, **kwargs):
            session.event("stage", {"label": label, "done": all - remaining, "total": all})

        def _draw_stop(self, **kwargs):
            pass

    _Stage([future], scheduler=session.client.scheduler.address, interval="200ms")
    future.result()


def _write_group(session: Session, n_tasks: int, lazy: xr.Dataset, store, group: str) -> xr.Dataset:
    """Compute a lazy 3-D dataset into a group of the store, and record it in the ledger.

    The group records what it was made from (see :func:`mocapflow.ledger.freshness`)
    and a digest of every chunk (see :func:`mocapflow.ledger.verify`).
    """
    session.check_reachable()
    # One writer at a time: another triangulate, filter or process on the store says busy.
    with _fatal_as_one_line(Path(store)), store_lock(store):
        source = ledger.source_of(store, group)
        ledger.forget_group(store, group)  # until its record is written, it is unfinished
        delayed = _store.write_group(lazy, store, group)
        session.work = Work(n_tasks, 0)
        with session:
            _watch(session, session.client.compute(delayed), group)
            ledger.record_group(store, group, source)
    if run_report_path(Path(store)).exists():  # keep the run report up to date
        write_run_report(store)
    return _store.open_group(store, group)


def triangulate_store(
    store: str | Path,
    cameras: dict,
    settings: TriangulationSettings | None = None,
    *,
    up_axis: str | None = None,
    calibration: str | Path | None = None,
    cluster: ClusterOptions | Session | Client | str | None = None,
    offsets: dict[str, float] | None = None,
) -> xr.Dataset:
    """Triangulate a 2-D store into its ``points3d`` group.

    The views are aligned by the offsets the store records (see
    :mod:`mocapflow.sync`; ``offsets`` sets them first); the 3-D time axis is
    the reference view's. A store that records none is checked: when the
    views' motion says they are unsynchronised, that is the verdict.

    Each camera's image size is checked against its video's first (see
    :func:`mocapflow.calib.fit_to_videos`: scaled, with a warning, where the
    video is binned; refused where the aspect ratio differs); after the
    triangulation a warning names the views when the calibration does not fit
    them (see :func:`mocapflow.quality.calibration_verdict`).

    Parameters
    ----------
    store : path
        A store written by :func:`process`.
    cameras : dict of str to Camera
        Calibrated cameras by view name.
    settings : TriangulationSettings, optional
        Default :class:`~mocapflow.schema.TriangulationSettings`.
    up_axis : str, optional
        The world's up axis (``+z``...), if the calibration says; recorded for exports.
    calibration : path, optional
        The calibration file the cameras come from, named in messages.
    cluster : ClusterOptions, Session, Client or str, optional
        Where to compute, as :func:`process` takes it; its ``on_event`` is
        called as ``on_event("stage", {"label", "done", "total"})`` as tasks finish.
    offsets : dict of str to float, optional
        ``sync_offset`` per view, set by hand (``--offset``) and recorded.

    Returns
    -------
    xarray.Dataset
        The written group, opened lazily.

    Raises
    ------
    CalibrationError
        If the cameras do not match the views by name, or a camera's image size
        does not fit its video.

    """
    from .calib import fit_to_videos

    settings = settings or TriangulationSettings()
    session = Session(Work(1), cluster)
    ledger.check_whole(store, "tracks")
    tracks = _store.open_tracks(store)
    if schema.POSITION not in tracks or schema.CONFIDENCE not in tracks:
        raise StoreError(
            f"{store}: holds no 2-D points ({tracks.attrs.get('tracker')} tracks "
            f"{', '.join(sorted(map(str, tracks.data_vars)))}); process it with a point tracker "
            "(markers, charuco, mediapipe) first"
        )
    source = str(calibration) if calibration is not None else "the calibration"
    sizes = zip(tracks.view.values, tracks.width.values, tracks.height.values, strict=True)
    cameras, notes = fit_to_videos(cameras, {str(v): (w, h) for v, w, h in sizes}, source)
    for note in notes:
        logger.warning("%s", note)
    if offsets:
        sync.sync_store(store, (), offsets=offsets)
    record = sync.read_sync(store)
    raw = tracks
    plan = sync.stored_alignment(store, tracks)
    tracks = sync.align(tracks, plan)
    if int(tracks.sizes["individual"]) > 1:
        lazy = _people3d(session, store, tracks, cameras, settings)
    else:
        lazy = graph.points3d(store, tracks, cameras, settings)
    lazy.attrs["up_axis"] = up_axis
    # the cameras as fitted to the videos: render and the 3-D player draw with them
    lazy.attrs["cameras"] = {str(n): c.to_dict() for n, c in cameras.items()}
    if plan is not None:
        lazy.attrs["sync"] = plan.attrs()
    n_blocks = len(lazy.position.data.chunks[0])
    written = _write_group(session, n_blocks, lazy, store, POINTS3D)
    seeing = _warn_blind_views(store, tracks)  # after the lock: a busy store says only that
    verdict = _verdicts(store, written, tracks, cameras, settings, source, seeing)
    if not record and (line := sync.unsynchronised(raw, cameras)):
        fix = (
            f"find the offsets with mocapflow sync {store} -c {source} (or run --sync), "
            "or set them with --offset VIEW=FRAMES"
        )
        said = f"{store}/{POINTS3D}: {line}; {fix}"
        verdict = f"{said}; also {verdict}" if verdict else said
    if verdict:
        written.attrs["verdict"] = verdict
    return written


def _verdicts(store, written, tracks, cameras, settings, source, seeing) -> str | None:
    """Warn when the calibration does not fit; return the line when the 3-D cannot be trusted.

    With one detection per view the calibration is checked view by view (see
    :func:`mocapflow.quality.check_tracks`); with several, a view's slot is no
    person and the association has checked the geometry itself.
    """
    from .quality import calibration_verdict, check_tracks, trust_verdict

    where = f"{store}/{POINTS3D}"
    if int(tracks.sizes["individual"]) > 1:
        fix = "check the calibration (its cameras must be this recording's) and the report"
        return trust_verdict(written, where, fix)
    check = check_tracks(tracks, cameras, min_confidence=settings.min_confidence)
    residuals = {k: v for k, v in check["view_median_px"].items() if np.isfinite(v)}
    views = ", ".join(
        f"{k} {v:.0f} px" for k, v in sorted(residuals.items(), key=lambda kv: -kv[1])
    )
    note = ""
    if not views and len(seeing) == 2:  # either of two views may follow another person
        note = f"only {' and '.join(seeing)} see anyone, so either may follow another person"
    fix = (
        "the views may follow different people: track everyone in view (mocapflow run asks "
        f"the tracker for {schema.PEOPLE_SLOTS}, or -p max_people=N) and keep the "
        "best-supported person (--people 1), or check the calibration"
    )
    untrusted = trust_verdict(written, where, fix, views, note)
    if check["swap"] or check["drop"] or not untrusted:
        # two cameras swapped, or one out of line, is said; a high error alone is the
        # verdict's, which names both causes (other people, or the calibration)
        if line := calibration_verdict(check, where, source, str(store)):
            logger.warning("%s", line)
    return untrusted


def _warn_blind_views(store, tracks: xr.Dataset) -> list[str]:
    """Name, in one line, the views whose tracker found nothing in any frame; return the others."""
    found = np.isfinite(tracks.confidence).any(("time", "keypoint", "individual"))
    names = [str(v) for v in tracks.view.values]
    blind = [v for v, ok in zip(names, found.values, strict=True) if not ok]
    if blind:
        logger.warning(
            "%s: %s %s %s no detection in any frame, so %s nothing to the 3-D; check %s "
            "(mocapflow info %s shows what each view decoded)",
            store,
            "view" if len(blind) == 1 else "views",
            ", ".join(blind),
            "has" if len(blind) == 1 else "have",
            "it adds" if len(blind) == 1 else "they add",
            "its video" if len(blind) == 1 else "their videos",
            store,
        )
    return [v for v in names if v not in blind]


def _people3d(session: Session, store, tracks: xr.Dataset, cameras, settings) -> xr.Dataset:
    """Several detections per view: people found per block on the cluster, linked in order.

    Each block's people come back in short (:func:`mocapflow.graph.people_summaries`)
    and are linked over time in frame order as they arrive; the people kept
    (:func:`mocapflow.associate.select_tracks`) are then written one per
    individual by :func:`mocapflow.graph.people3d`.
    """
    from .associate import bone_medians, link_people, select_tracks

    summaries = graph.people_summaries(store, tracks, cameras, settings)
    session.check_reachable()
    session.work = Work(len(summaries), 0)
    labels, views, errors, lengths, state = [], [], [], [], None
    with session:
        futures = session.client.compute(summaries)
        for i, future in enumerate(futures):
            points, n_views, error, bones = future.result()
            linked, state = link_people(points, state=state)
            labels.append(linked)
            views.append(n_views)
            errors.append(error)
            lengths.append(bones)
            session.event("stage", {"label": "people", "done": i + 1, "total": len(futures)})
    labels = np.concatenate(labels)
    chosen = select_tracks(
        labels, np.concatenate(views), np.concatenate(errors), people=settings.people
    )
    line = f"{store}: {chosen.describe()}"
    (logger.warning if chosen.others or not chosen.tracks else logger.info)("%s", line)
    medians = bone_medians(np.concatenate(lengths), labels, chosen.tracks)
    lazy = graph.people3d(store, tracks, cameras, settings, labels, chosen.tracks, medians)
    lazy.attrs["people"] = _people_attrs(chosen)
    return lazy


def _people_attrs(chosen) -> dict:
    """Return the people of a 3-D group, for ``info``: who, in which frames, how well seen."""

    def number(x: float):
        return round(float(x), 2) if np.isfinite(x) else None

    kept = []
    for i, track in enumerate(chosen.tracks):
        s = chosen.support[track]
        kept.append(
            {
                "individual": f"person{i}",
                "track": int(track),
                "frames": int(s["frames"]),
                "ranges": [list(r) for r in chosen.frames_of(track)],
                "views": number(s["view_frames"] / max(s["frames"], 1)),
                "error_px": number(s["error"]),
            }
        )
    return {
        "kept": kept,
        "others": len(chosen.others),
        "brief": len(chosen.brief),
    }


def filter_store(
    store: str | Path,
    settings: FilterSettings | None = None,
    *,
    cluster: ClusterOptions | Session | Client | str | None = None,
) -> xr.Dataset:
    """Gap-fill and low-pass a store's ``points3d`` into its ``filtered`` group.

    Parameters
    ----------
    store : path
        A store with a ``points3d`` group (see :func:`triangulate_store`).
    settings : FilterSettings, optional
        Default :class:`~mocapflow.schema.FilterSettings`.
    cluster : ClusterOptions, Session, Client or str, optional
        As :func:`triangulate_store` takes it.

    Returns
    -------
    xarray.Dataset
        The written group, opened lazily.

    """
    settings = settings or FilterSettings()
    session = Session(Work(1), cluster)
    if not _store.has_group(store, POINTS3D):
        raise StoreError(f"{store}: no points3d group; run mocapflow triangulate first")
    ledger.check_whole(store, POINTS3D)
    if stale := ledger.freshness(store).get(POINTS3D):
        logger.warning("%s/%s is stale: %s", store, POINTS3D, stale)
    points = _store.open_group(store, POINTS3D)
    lazy = graph.smoothed(points, settings)
    n_tasks = len(lazy.position.data.chunks[2])
    return _write_group(session, n_tasks, lazy, store, FILTERED)
