"""Build and run the frame-chunk graph: the one module that drives Dask.

Two entry points:

:func:`track`
    A lazy, Dask-backed :class:`xarray.Dataset` of tracker outputs. Nothing
    runs until you compute it, on whatever ``Client`` you have.
:func:`process`
    Runs every task on a cluster; each task writes its own region of the
    Zarr store as it finishes, so results stream to disk and memory stays
    bounded by workers x batch, whatever the number of videos.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import dask
import dask.array as da
import numpy as np
import xarray as xr

from . import store as _store
from .cluster import Sizing, open_cluster
from .config import load_profile
from .recording import Recording, RecordingError, open_recording
from .tasks import (
    BATCH_FRAMES,
    DEFAULT_CHUNK_FRAMES,
    ChunkSpec,
    plan_chunks,
    run_chunk,
    time_chunk_for,
    track_chunk,
)
from .trackers import Tracker, get_tracker, warmup_of

__all__ = [
    "FILTERED",
    "POINTS3D",
    "RunResult",
    "filter_store",
    "plan",
    "process",
    "smooth_points",
    "track",
    "triangulate",
    "triangulate_store",
    "write_tasks",
]

logger = logging.getLogger(__name__)

STORE_NAME = "mocapflow.zarr"


def _recording(recording: Recording | str | Path) -> Recording:
    return recording if isinstance(recording, Recording) else open_recording(recording)


def plan(
    recording: Recording | str | Path, chunk_frames: int = DEFAULT_CHUNK_FRAMES
) -> list[ChunkSpec]:
    """Return the tasks for a recording (see :func:`mocapflow.tasks.plan_chunks`)."""
    return plan_chunks(_recording(recording), chunk_frames)


def _common_chunks(specs: list[ChunkSpec], n_time: int) -> tuple[int, ...]:
    bounds = sorted({0, n_time, *(s.start for s in specs), *(s.stop for s in specs)})
    return tuple(int(b - a) for a, b in zip(bounds[:-1], bounds[1:], strict=True))


def track(
    recording: Recording | str | Path,
    tracker: str | Tracker = "framestats",
    chunk_frames: int = DEFAULT_CHUNK_FRAMES,
    **tracker_params,
) -> xr.Dataset:
    """Return the tracker's outputs for a recording as a lazy Dask-backed Dataset.

    Each task decodes one frame range of one video and tracks it; the
    Dataset's blocks are slices of those tasks' results. Inspect it
    (``ds.position.data.visualize()``, ``len(ds.__dask_graph__())``) or compute
    it on your own ``Client``. Unreadable views and the frames past a view's
    end hold the fill value (NaN).

    Parameters
    ----------
    recording : Recording or path
        The recording.
    tracker : str or Tracker
        Tracker name, ``package.module:factory``, or an instance.
    chunk_frames : int
        Target frames per task.
    **tracker_params
        Parameters for the tracker.

    Returns
    -------
    xarray.Dataset
        Dims ``(view, time, ...)``, as written by :func:`process`.

    """
    trk = get_tracker(tracker, **tracker_params)
    rec = _recording(recording)
    specs = plan_chunks(rec, chunk_frames, warmup_of(trk))
    ds = _store.template(rec, trk, time_chunk_for(chunk_frames))
    n_time = rec.n_frames
    common = _common_chunks(specs, n_time)
    by_view: dict[int, list[ChunkSpec]] = {}
    for s in specs:
        by_view.setdefault(s.view_index, []).append(s)
    results = {s.key: dask.delayed(track_chunk, pure=True)(s, trk) for s in specs}
    for name in [*trk.outputs(), _store.DECODED]:
        var = ds[name]
        frame_shape = var.shape[2:]
        fill = var.dtype.type(False) if name == _store.DECODED else trk.outputs()[name].fill
        rows = []
        for v in range(len(rec.views)):
            pieces = []
            for s in by_view.get(v, []):
                getter = dask.delayed(_pick, pure=True)(results[s.key], name)
                pieces.append(da.from_delayed(getter, (s.n_frames, *frame_shape), var.dtype))
            covered = sum(p.shape[0] for p in pieces)
            if covered < n_time:
                pieces.append(da.full((n_time - covered, *frame_shape), fill, dtype=var.dtype))
            rows.append(da.concatenate(pieces, axis=0).rechunk({0: common}))
        ds[name] = (var.dims, da.stack(rows, axis=0), var.attrs)
    ds.attrs.update(_base_attrs(rec, trk, chunk_frames))
    return ds


def _pick(result: dict, name: str) -> np.ndarray:
    return result["decoded"] if name == _store.DECODED else result["arrays"][name]


def write_tasks(
    specs: list[ChunkSpec], tracker: Tracker, store_path: str | Path, time_chunk: int
) -> list:
    """Return one ``dask.delayed`` write task per chunk (the store must exist)."""
    run = dask.delayed(run_chunk, pure=False)
    # Keys name the store too, so two stores processed on one shared client never collide.
    token = dask.base.tokenize(str(Path(store_path).resolve()))[:8]
    return [
        run(
            s,
            tracker,
            str(store_path),
            time_chunk,
            dask_key_name=f"chunk-{token}-{s.view}-{s.start}",
        )
        for s in specs
    ]


def _base_attrs(rec: Recording, trk: Tracker, chunk_frames: int) -> dict:
    outputs = trk.outputs()
    attrs = {
        **_store.software_attrs(),
        "ds_type": "poses" if "position" in outputs else "frames",
        "fps": float(rec.fps),
        "time_unit": "frames",
        "recording": str(rec.path),
        "tracker": trk.name,
        "tracker_params": trk.params(),
        "chunk_frames": int(chunk_frames),
        "time_chunk": time_chunk_for(chunk_frames),
        "views": [v.metadata() for v in rec.views],
        "warnings": list(rec.warnings),
    }
    skeleton = getattr(trk, "skeleton", None)
    if skeleton:
        attrs["skeleton"] = [list(map(str, bone)) for bone in skeleton]
    return attrs


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
        The cluster sizing decision (None on a user's client).
    dashboard : str or None
        The dashboard URL.
    report : pathlib.Path or None
        The performance report.
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
        return _store.open_store(self.store)


def report_path(store_path: Path) -> Path:
    """Where the performance report of a store goes: beside it."""
    return store_path.with_name(store_path.name.removesuffix(".zarr") + ".report.html")


def _view_outcomes(rec: Recording, records: dict) -> dict:
    views = {}
    for i, view in enumerate(rec.views):
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


def _prepare_store(
    out: Path, rec: Recording, trk: Tracker, chunk_frames: int, overwrite: bool
) -> dict:
    """Create the store, or check an existing one matches; return its done records."""
    fp = _store.fingerprint(rec, trk, chunk_frames)
    state = _store.check_target(out)
    attrs = _store.read_attrs(out) if state == "ours" else {}
    if attrs.get("template_complete") and not overwrite:
        old = attrs.get("fingerprint", {})
        if old.get("digest") != fp["digest"]:
            changed = [
                k
                for k in ("videos", "tracker", "tracker_params", "chunk_frames")
                if old.get(k) != fp[k]
            ]
            raise _store.StoreError(
                f"{out}: holds results from other inputs ({', '.join(changed) or 'fingerprint'} "
                "differ); rerun with --overwrite to start afresh, or choose another --out"
            )
        if n := _store.remove_partial_files(out):
            logger.info("%s: removed %d temporary files left by an interrupted run", out, n)
        return _store.done_chunks(out)
    attrs = {**_base_attrs(rec, trk, chunk_frames), "fingerprint": fp}
    _store.create(out, rec, trk, time_chunk_for(chunk_frames), attrs)
    return {}


def process(
    recording: Recording | str | Path,
    tracker: str | Tracker = "framestats",
    out: str | Path | None = None,
    *,
    chunk_frames: int = DEFAULT_CHUNK_FRAMES,
    workers: int | None = None,
    cluster: str | None = None,
    cluster_config: str | Path | None = None,
    client=None,
    report: bool = True,
    overwrite: bool = False,
    dashboard_address: str | None = None,
    retries: int = 2,
    on_event: Callable[[str, dict], None] | None = None,
    **tracker_params,
) -> RunResult:
    """Track a recording on a cluster, streaming every chunk into a Zarr store.

    A rerun of the same command resumes: tasks already recorded done are
    skipped. A store made from other inputs is refused unless ``overwrite``.

    Parameters
    ----------
    recording : Recording or path
        The recording.
    tracker : str or Tracker
        Tracker name, ``package.module:factory``, or an instance.
    out : path, optional
        The store; default ``RECORDING/mocapflow.zarr``.
    chunk_frames : int
        Target frames per task.
    workers : int, optional
        Override the sized worker count (and the profile's).
    cluster : str, optional
        Profile name in ``cluster.yaml`` (default: the file's default, ``local``).
    cluster_config : path, optional
        Profiles file; default ``./cluster.yaml`` when present.
    client : distributed.Client, optional
        Run on this client instead of starting a LocalCluster.
    report : bool
        Save a self-contained performance report beside the store.
    overwrite : bool
        Replace an existing store made from other inputs.
    dashboard_address : str, optional
        Where the dashboard listens; default the profile's, else 127.0.0.1:8787.
    retries : int
        Retries of a task that raised or whose worker died.
    on_event : callable, optional
        Called as ``on_event("start", {...})`` once the cluster is up and
        ``on_event("chunk", record)`` as each task finishes.
    **tracker_params
        Parameters for the tracker.

    Returns
    -------
    RunResult
        The store, per-view outcomes and run facts.

    """
    from distributed import performance_report

    t0 = time.perf_counter()
    trk = get_tracker(tracker, **tracker_params)
    rec = _recording(recording)
    if not rec.ok_views:
        raise RecordingError(
            f"{rec.path}: none of the {len(rec.views)} videos can be read; "
            + "; ".join(v.error for v in rec.views if v.error)
        )
    profile = load_profile(cluster, cluster_config) if client is None else {}
    specs = plan_chunks(rec, chunk_frames, warmup_of(trk))
    store_path = Path(out) if out is not None else rec.path / STORE_NAME
    done = _prepare_store(store_path, rec, trk, chunk_frames, overwrite)
    todo = [s for s in specs if s.key not in done]
    records = {k: r for k, r in done.items() if k in {s.key for s in specs}}
    logger.info(
        "%s: %d tasks, %d already done (skipped), %d to compute",
        store_path,
        len(specs),
        len(specs) - len(todo),
        len(todo),
    )
    sizing: Sizing | None = None
    dashboard = client.dashboard_link if client is not None else None
    rpath = report_path(store_path) if report and todo else None
    if todo:
        local_cluster = where = None
        if client is None:
            biggest = max(v.info.width * v.info.height * 3 for v in rec.ok_views)
            local_cluster, client, sizing, where = open_cluster(
                profile, len(todo), biggest, BATCH_FRAMES, workers, dashboard_address
            )
            dashboard = client.dashboard_link
        try:
            _store.update_attrs(
                store_path,
                cluster=sizing.to_dict()
                if sizing
                else {"reason": where or "a user-supplied client"},
                start_time=_dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
                completed=False,
            )
            if on_event:
                on_event(
                    "start",
                    {
                        "dashboard": dashboard,
                        "sizing": sizing,
                        "where": where,
                        "n_tasks": len(specs),
                        "todo": len(todo),
                        "store": store_path,
                    },
                )
            report_ctx = (
                performance_report(filename=str(rpath), mode="inline")
                if rpath
                else contextlib.nullcontext()
            )
            with report_ctx:
                records.update(
                    _run_tasks(client, todo, trk, store_path, chunk_frames, retries, on_event)
                )
        finally:
            if where is not None:  # we opened it
                client.close()
            if local_cluster is not None:
                local_cluster.close()
    elif on_event:
        on_event(
            "start",
            {
                "dashboard": None,
                "sizing": None,
                "n_tasks": len(specs),
                "todo": 0,
                "store": store_path,
            },
        )
    failed = [records[s.key] for s in todo if records[s.key]["status"] == "failed"]
    views = _view_outcomes(rec, records)
    completed = all(s.key in records and records[s.key]["status"] != "failed" for s in specs)
    _store.finalize(store_path, views, completed)
    return RunResult(
        store=store_path,
        views=views,
        n_tasks=len(specs),
        computed=len(todo),
        skipped=len(specs) - len(todo),
        failed_tasks=failed,
        sizing=sizing.to_dict() if sizing else None,
        dashboard=dashboard,
        report=rpath,
        seconds=time.perf_counter() - t0,
    )


def _run_tasks(client, todo, trk, store_path, chunk_frames, retries, on_event) -> dict:
    """Compute the write tasks, recording each as it finishes; a task that raised is failed."""
    from distributed import as_completed

    records = {}
    futures = client.compute(
        write_tasks(todo, trk, store_path, time_chunk_for(chunk_frames)), retries=retries
    )
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
        records[spec.key] = record
        if on_event:
            on_event("chunk", record)
        fut.release()
    return records


# --- 3-D: triangulation and filtering, lazily over the store ------------------------------

POINTS3D = "points3d"
FILTERED = "filtered"
#: Frames per triangulation task.
TRIANGULATE_FRAMES = 256


def _compute(obj, client) -> None:
    """Compute a Dask collection on ``client``, or Dask's default scheduler without one."""
    if client is not None:
        client.compute(obj, sync=True)
    else:
        dask.compute(obj)


def _points3d_dataset(
    position: da.Array,
    coords: dict,
    attrs: dict,
    error: da.Array,
    n_views: da.Array,
    swapped: da.Array,
) -> xr.Dataset:
    dims = ("time", "space", "keypoint", "individual")
    return xr.Dataset(
        {
            "position": (dims, position, {"units": attrs.get("space_unit", "mm")}),
            "reprojection_error": (
                ("time", "keypoint", "individual"),
                error,
                {"units": "pixels", "description": "mean over the views used"},
            ),
            "n_views": (("time", "keypoint", "individual"), n_views),
            "lr_swapped": (
                ("time", "view", "keypoint", "individual"),
                swapped,
                {"description": "the view's left/right labels were swapped before triangulating"},
            ),
        },
        coords=coords,
        attrs=attrs,
    )


def triangulate(
    store: str | Path,
    cameras: dict,
    *,
    min_views: int = 2,
    min_confidence: float = 0.5,
    max_error: float | None = None,
    swap_lr: bool = True,
    frames_per_task: int = TRIANGULATE_FRAMES,
) -> xr.Dataset:
    """Return the lazy 3-D points of a 2-D store: one task per block of frames.

    Parameters
    ----------
    store : path
        A store written by :func:`process` (its ``position`` and ``confidence``).
    cameras : dict of str to Camera
        Calibrated cameras by view name; views without a camera are left out.
    min_views, min_confidence, max_error, swap_lr
        See :func:`mocapflow.triangulate.triangulate_frames`.
    frames_per_task : int
        Frames per task.

    Returns
    -------
    xarray.Dataset
        Movement's 3-D schema, Dask-backed: ``position (time, space, keypoint,
        individual)``, ``reprojection_error`` and ``n_views`` (time, keypoint,
        individual), and ``lr_swapped (time, view, keypoint, individual)``.

    Raises
    ------
    ValueError
        If fewer than ``min_views`` views have a camera (the message lists both).

    """
    from .triangulate import CameraSet, triangulate_frames

    ds = xr.open_zarr(store, consolidated=False)
    names = [str(v) for v in ds.view.values]
    matched = [n for n in names if n in cameras]
    missing = [n for n in names if n not in cameras]
    if len(matched) < max(min_views, 2):
        raise ValueError(
            f"{store}: the calibration has cameras {sorted(cameras)} but the views are "
            f"{names}; cameras are matched by name, so rename them or use the right file"
        )
    if missing:
        logger.warning("views %s have no camera in the calibration; left out", missing)
    cams = CameraSet.from_cameras([cameras[n] for n in matched])
    sel = ds.sel(view=matched)
    pos = sel.position.data.rechunk({0: -1, 1: frames_per_task, 2: -1, 3: -1, 4: -1})
    conf = sel.confidence.data.rechunk({0: -1, 1: frames_per_task, 2: -1, 3: -1})
    keypoints = [str(k) for k in ds.keypoint.values]
    kwargs = {
        "min_views": min_views,
        "min_confidence": min_confidence,
        "max_error": max_error,
        "swap_lr": swap_lr,
    }
    n_matched = len(matched)

    def block(p: np.ndarray, c: np.ndarray) -> np.ndarray:
        xyz, err, n, swapped = triangulate_frames(
            p, cams, c[:, :, 0], keypoints=keypoints, **kwargs
        )
        extra = [err[:, None], n[:, None].astype(np.float64), swapped.astype(np.float64)]
        return np.concatenate([xyz, *extra], axis=1)

    t, k, i = pos.chunks[1], pos.chunks[3], pos.chunks[4]
    packed = da.map_blocks(
        block,
        pos,
        conf[:, :, None],
        dtype=np.float64,
        chunks=(t, (5 + n_matched,), k, i),
        drop_axis=0,
        name="triangulate-" + dask.base.tokenize(str(store), pos.name, sorted(kwargs.items())),
    )
    attrs = {
        "source_software": "mocapflow",
        "ds_type": "poses",
        "fps": float(ds.attrs.get("fps", 0) or 0),
        "space_unit": "mm",
        "views": matched,
        "triangulation": {k2: v for k2, v in kwargs.items() if v is not None},
    }
    if "skeleton" in ds.attrs:
        attrs["skeleton"] = ds.attrs["skeleton"]
    coords = {
        "time": ds.time.values,
        "space": np.array(["x", "y", "z"], dtype=object),
        "keypoint": ds.keypoint.values,
        "individual": ds.individual.values,
        "view": np.array(matched, dtype=object),
    }
    return _points3d_dataset(
        packed[:, :3],
        coords,
        attrs,
        packed[:, 3],
        packed[:, 4].astype(np.int8),
        packed[:, 5:].astype(bool),
    )


def _write_group(ds: xr.Dataset, store: str | Path, group: str, client) -> None:
    for var in ds.data_vars.values():
        var.encoding.clear()
    delayed = ds.to_zarr(
        store, group=group, mode="w", compute=False, consolidated=False, zarr_format=3
    )
    _compute(delayed, client)


def triangulate_store(
    store: str | Path,
    cameras: dict,
    *,
    client=None,
    group: str = POINTS3D,
    **kwargs,
) -> xr.Dataset:
    """Triangulate a 2-D store into its ``points3d`` group, computed on ``client``.

    Parameters
    ----------
    store : path
        A store written by :func:`process`.
    cameras : dict of str to Camera
        Calibrated cameras by view name.
    client : distributed.Client, optional
        Where to compute; Dask's default scheduler without one.
    group : str
        The group to (over)write.
    **kwargs
        Passed to :func:`triangulate`.

    Returns
    -------
    xarray.Dataset
        The written group, opened lazily.

    """
    lazy = triangulate(store, cameras, **kwargs)
    _write_group(lazy, store, group, client)
    return xr.open_zarr(store, group=group, consolidated=False)


def smooth_points(
    points: xr.Dataset,
    *,
    fps: float | None = None,
    max_gap: int = 10,
    cutoff: float = 7.0,
    order: int = 4,
) -> xr.Dataset:
    """Return lazily gap-filled and low-passed 3-D points, one task per keypoint.

    Each task holds whole time series (chunked by keypoint, never by time), so the
    result equals :func:`mocapflow.filtering.smooth` on the whole array.

    Parameters
    ----------
    points : xarray.Dataset
        A ``points3d`` group.
    fps : float, optional
        Frame rate; default the group's ``fps`` attribute.
    max_gap, cutoff, order
        See :func:`mocapflow.filtering.smooth`.

    Returns
    -------
    xarray.Dataset
        The same schema, ``position`` filtered.

    """
    from .filtering import smooth

    fps = float(fps or points.attrs.get("fps") or 0)
    if fps <= 0:
        raise ValueError("the store has no frame rate; pass fps")
    if not 0 < cutoff < fps / 2:
        raise ValueError(f"--cutoff {cutoff} Hz must be between 0 and half of {fps:g} fps")
    pos = points.position.data.rechunk({0: -1, 1: -1, 2: 1, 3: -1})
    filtered = da.map_blocks(
        smooth, pos, fps=fps, max_gap=max_gap, cutoff=cutoff, order=order, dtype=np.float64
    )
    out = points.copy()
    out["position"] = (points.position.dims, filtered, dict(points.position.attrs))
    out.attrs = {
        **points.attrs,
        "filter": {"max_gap": max_gap, "cutoff_hz": cutoff, "order": order, "fps": fps},
    }
    return out


def filter_store(
    store: str | Path, *, client=None, source: str = POINTS3D, group: str = FILTERED, **kwargs
) -> xr.Dataset:
    """Gap-fill and low-pass a store's ``points3d`` into its ``filtered`` group.

    Parameters
    ----------
    store : path
        A store with a ``points3d`` group (see :func:`triangulate_store`).
    client : distributed.Client, optional
        Where to compute.
    source, group : str
        Groups to read and to (over)write.
    **kwargs
        Passed to :func:`smooth_points`.

    Returns
    -------
    xarray.Dataset
        The written group, opened lazily.

    """
    points = xr.open_zarr(store, group=source, consolidated=False)
    _write_group(smooth_points(points, **kwargs), store, group, client)
    return xr.open_zarr(store, group=group, consolidated=False)
