"""Sequencing only: calibrate a recording; run the whole pipeline on one cluster; export.

Each step is a call into :mod:`mocapflow.runner` (which computes) or a kernel
module (numpy); this module only decides their order and shares one
:class:`~mocapflow.cluster.Session` between them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from . import ledger
from . import store as _store
from .calib import (
    CalibrationResult,
    Camera,
    fit_to_videos,
    read_calibration,
    up_axis,
)
from .calibration import calibrate
from .cluster.session import ClusterOptions, Session, Work
from .errors import StoreError, UsageError
from .export import (
    NATIVE_FORMATS,
    check_owner,
    export,
    export_path,
    get_format,
    record_owner,
)
from .plan import make_plan
from .runner import RunResult, filter_store, process, triangulate_store
from .schema import (
    BATCH_FRAMES,
    DEFAULT_CHUNK_FRAMES,
    DEFAULT_TRACKER,
    FILTERED,
    GROUPS_3D,
    PEOPLE_SLOTS,
    POINTS3D,
    POSITION,
    FilterSettings,
    TriangulationSettings,
)
from .sync import METHODS, SyncResult, sync_store
from .trackers import TrackerError, get_tracker

__all__ = [
    "FILTERED",
    "POINTS3D",
    "PipelineResult",
    "calibrate",
    "export_store",
    "people_params",
    "run_pipeline",
]

if TYPE_CHECKING:
    from distributed import Client

    from .kinematics import KinematicsResult
    from .render import RenderResult

logger = logging.getLogger(__name__)


def export_store(
    store: str | Path,
    formats: list[str] | tuple[str, ...] = NATIVE_FORMATS,
    *,
    group: str | None = None,
    out_dir: str | Path | None = None,
) -> list[Path]:
    """Export a store's 3-D group (``filtered`` if present, else ``points3d``).

    Parameters
    ----------
    store : path
        The store.
    formats : list of str
        Any of :data:`mocapflow.export.FORMATS` (default the native ones).
    group : str, optional
        The group; default ``filtered``, else ``points3d``.
    out_dir : path, optional
        Where to write; default beside the store.

    Returns
    -------
    list of pathlib.Path
        The files written, ``<name>.<group>.<ext>``, or one per person
        (``<name>.person0.<group>.<ext>``...) when the group holds several and
        the format holds one (see :func:`mocapflow.export.export_path`).

    Raises
    ------
    StoreError
        If the store is missing or holds no such group (the message says how
        to make it), or a file to write was written by another store's export.

    """
    store = Path(store)
    chosen = [get_format(f) for f in dict.fromkeys(formats)]  # an unknown name: one line
    if group is not None and group not in GROUPS_3D:
        raise UsageError(f"--group {group!r}: choose {' or '.join(GROUPS_3D)}")
    if out_dir is not None and Path(out_dir).exists() and not Path(out_dir).is_dir():
        raise UsageError(f"--out-dir {out_dir}: is a file, not a folder; give a folder")
    _check_exportable(store, group)
    groups = [group] if group else list(GROUPS_3D)
    found = next(g for g in groups if _store.has_group(store, g))
    if found in ledger.unfinished_groups(store):
        command = ledger.remake_command(found, store)
        other = [g for g in ledger.complete_groups(store) if g != found]
        alternative = f", or export {other[0]} with --group {other[0]}" if other else ""
        raise StoreError(
            f"{store}: {found} is unfinished (a {' '.join(command.split()[:2])} was stopped "
            f"before it finished), so it holds no results; rerun {command}{alternative}"
        )
    ledger.check_whole(store, found)
    fresh = ledger.freshness(store)
    if stale := fresh.get(found):
        logger.warning("%s/%s is stale: %s", store, found, stale)
    ds = _store.open_group(store, found).load()
    if not bool(ds[POSITION].notnull().any()):
        raise StoreError(
            f"{store}/{found}: not one 3-D point (every frame is NaN), so there is nothing to "
            "export; check the calibration and --min-views, then rerun mocapflow triangulate"
        )
    folder = Path(out_dir) if out_dir else store.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(
            f"--out-dir {folder}: cannot create it ({exc.strerror}); give a folder you can write"
        ) from None
    for fmt in chosen:  # a writer's missing module, or data it cannot hold, is said first
        fmt.check()
        if fmt.accepts is not None:
            fmt.accepts(ds, f"{store}/{found}")
    people = [str(i) for i in ds.individual.values] if ds.sizes["individual"] > 1 else [None]
    jobs = [
        (fmt, export_path(store, found, fmt.name, folder, person), person)
        for fmt in chosen
        for person in (people if fmt.per_person else [None])
    ]
    for _, path, _ in jobs:  # every file is checked before the first is written
        check_owner(path, store, known=set(fresh))
    written = []
    for fmt, path, person in jobs:
        written.append(export(ds, path, fmt.name, person))
        record_owner(path, store, found)
        ledger.record_export(store, path, found)
    return written


def _check_exportable(store: Path, group: str | None) -> None:
    """Refuse a missing store, or one without the 3-D group, saying how to make it."""
    if not store.exists():
        raise StoreError(
            f"{store}: no such store; check the path, or make it: mocapflow run RECORDING "
            "-c CALIBRATION tracks, triangulates, filters and exports (mocapflow process "
            "RECORDING tracks only)"
        )
    ledger.check_layout(store)
    if not ledger.is_ours(store):
        raise StoreError(f"{store}: not a mocapflow store; give the store mocapflow process wrote")
    present = [g for g in GROUPS_3D if _store.has_group(store, g)]
    if group in present or (group is None and present):
        return
    triangulate = f"mocapflow triangulate {store} -c CALIBRATION"
    if group == FILTERED and POINTS3D in present:
        raise StoreError(
            f"{store}: no filtered group (it holds points3d); make it with mocapflow filter "
            f"{store}, or export the unfiltered points with --group points3d"
        )
    if group == FILTERED:
        raise StoreError(
            f"{store}: no 3-D points (only the 2-D tracks); make them with {triangulate}, "
            f"then mocapflow filter {store}"
        )
    raise StoreError(
        f"{store}: no 3-D points (only the 2-D tracks, no points3d or filtered group); make "
        f"them with {triangulate}, then smooth them with mocapflow filter {store} (export "
        "takes filtered, else points3d)"
    )


@dataclass
class PipelineResult:
    """What :func:`run_pipeline` did.

    Attributes
    ----------
    tracking : RunResult
        The 2-D tracking run.
    calibration : pathlib.Path
        The calibration used.
    store : pathlib.Path
        The store, with its ``points3d`` and ``filtered`` groups.
    exports : list of pathlib.Path
        Files written.
    calibration_fit : CalibrationResult or None
        The fit, when the pipeline calibrated.
    verdict : str or None
        One line when the 3-D cannot be trusted (see
        :func:`mocapflow.quality.trust_verdict`); the results are written all the same.
    sync : SyncResult or None
        The views' offsets, when ``sync`` or ``offsets`` set them.
    kinematics : KinematicsResult or None
        What ``kinematics`` wrote.
    render : RenderResult or None
        What ``render`` wrote.

    """

    tracking: RunResult
    calibration: Path
    store: Path
    exports: list[Path] = field(default_factory=list)
    calibration_fit: CalibrationResult | None = None
    verdict: str | None = None
    sync: SyncResult | None = None
    kinematics: KinematicsResult | None = None
    render: RenderResult | None = None

    @property
    def exit_code(self) -> int:
        """1 when a view failed or the 3-D cannot be trusted, else 0."""
        failed = self.render is not None and self.render.failed
        return 1 if self.verdict or failed else self.tracking.exit_code


def run_pipeline(
    recording: str | Path,
    *,
    calibration: str | Path | None = None,
    calibration_recording: str | Path | None = None,
    tracker: str = DEFAULT_TRACKER,
    tracker_params: dict | None = None,
    chunk_frames: int = DEFAULT_CHUNK_FRAMES,
    out: str | Path | None = None,
    board: dict | None = None,
    triangulation: TriangulationSettings | None = None,
    filtering: FilterSettings | None = None,
    formats: tuple[str, ...] = NATIVE_FORMATS,
    cluster: ClusterOptions | Client | str | None = None,
    report: bool = True,
    overwrite: bool = False,
    sync: tuple[str, ...] = (),
    offsets: dict[str, float] | None = None,
    kinematics: bool = False,
    mass: float | None = None,
    render: bool = False,
) -> PipelineResult:
    """Track, triangulate, filter and export a recording on one cluster.

    Parameters
    ----------
    recording : path
        The recording.
    calibration : path, optional
        A ``.toml`` (anipose/FreeMoCap) or ``.qca.txt``.
    calibration_recording : path, optional
        A ChArUco recording to calibrate from first (instead of ``calibration``).
    tracker : str
        The 2-D tracker.
    tracker_params : dict, optional
        Its parameters.
    chunk_frames : int
        Target frames per tracking task.
    out : path, optional
        The store; default ``RECORDING/mocapflow.zarr``.
    board : dict, optional
        Board parameters for ``calibration_recording``.
    triangulation : TriangulationSettings, optional
        How to triangulate.
    filtering : FilterSettings, optional
        How to filter.
    formats : tuple of str
        Exports to write beside the store.
    cluster : ClusterOptions, Client or str, optional
        Where to compute, as :func:`mocapflow.process` takes it: one cluster,
        opened once, serves every stage.
    report : bool
        Save the reports beside the store.
    overwrite : bool
        Replace stores made from other inputs (else a rerun resumes).
    sync : tuple of str
        Find the views' time offsets after tracking, by these methods (see
        :func:`mocapflow.sync.sync_store`); empty: use the offsets the store has.
    offsets : dict of str to float, optional
        Offsets set by hand (``--offset``), per view.
    kinematics : bool
        End with joint angles, centre of mass and (with OpenSim) inverse
        kinematics (:func:`mocapflow.kinematics.kinematics_store`), on the same cluster.
    mass : float, optional
        The person's mass (kg) for the kinematics.
    render : bool
        End by rendering every view with its detections and the 3-D skeleton
        (:func:`mocapflow.render.render_store`), on the same cluster; the run
        report shows a few rendered frames of each view.

    Returns
    -------
    PipelineResult
        What was written.

    """
    if (calibration is None) == (calibration_recording is None):
        raise UsageError("give either a calibration file or a calibration recording")
    triangulation = triangulation or TriangulationSettings()
    filtering = filtering or FilterSettings()
    cameras, up = (None, None) if calibration is None else _cameras_of(calibration)
    tracker_params = people_params(tracker, tracker_params, triangulation.people)
    plan = make_plan(recording, tracker, chunk_frames, tracker_params)
    rec = plan.recording
    if cameras is not None:  # a camera that cannot fit its video is refused before any work
        sizes = {v.name: (v.info.width, v.info.height) for v in rec.ok_views}
        fit_to_videos(cameras, sizes, calibration)
    if rec.fps > 0:  # and so is a filter the recording cannot carry
        filtering.check(rec.fps, rec.n_frames)
    if mass is not None and not (np.isfinite(mass) and 0 < mass < 500):
        raise UsageError(f"--mass {mass}: give the person's mass in kg (0 to 500)")
    for m in sync:  # and sync methods or offsets that cannot work
        if m not in METHODS:
            raise UsageError(f"--sync {m}: choose from {', '.join(METHODS)}")
    for name in offsets or {}:
        if name not in rec.names:
            raise UsageError(
                f"--offset {name}=...: no view {name!r}; the views are {', '.join(rec.names)}"
            )
    session = Session(Work(len(plan.specs), plan.frame_bytes, BATCH_FRAMES), cluster)
    run = {"overwrite": overwrite, "report": report, "cluster": session}
    with session:
        fit = None
        if calibration_recording is not None:
            fit, calibration = calibrate(calibration_recording, board=board, **run)
            cameras, up = {c.name: c for c in fit.cameras}, _cameras_of(calibration)[1]
        tracking = process(plan, out=out, **run)
        synced = None
        if sync or offsets:
            synced = sync_store(tracking.store, sync, offsets=offsets, cameras=cameras)
        points = triangulate_store(
            tracking.store,
            cameras,
            triangulation,
            up_axis=up,
            calibration=calibration,
            cluster=session,
        )
        filter_store(tracking.store, filtering, cluster=session)
        body = None
        if kinematics:
            from .kinematics import kinematics_store

            body = kinematics_store(tracking.store, mass=mass, cluster=session)
        drawn = None
        if render:
            from .render import render_store

            drawn = render_store(tracking.store, overwrite=True, cluster=session)
    exports = export_store(tracking.store, formats) if formats else []
    verdict = points.attrs.get("verdict")
    return PipelineResult(
        tracking, Path(calibration), tracking.store, exports, fit, verdict, synced, body, drawn
    )


def people_params(tracker, params: dict | None, people: int | None = 1) -> dict:
    """Ask a tracker that can find several people for them, unless told otherwise.

    ``run`` matches people across views and over time (:mod:`mocapflow.associate`)
    so that a bystander, or a second person, cannot spoil the 3-D: a built-in
    tracker with a ``max_people`` parameter is asked for
    :data:`~mocapflow.schema.PEOPLE_SLOTS` detections per view (``people`` if
    more), unless the parameters set ``max_people`` or a mode that follows one
    person (``static_image_mode=false``, the holistic tracker).

    Parameters
    ----------
    tracker : str or Tracker
        The tracker.
    params : dict, optional
        Its parameters, as given.
    people : int or None
        ``--people``: how many people to keep (None: everyone).

    Returns
    -------
    dict
        The parameters to track with.

    """
    import importlib.util

    params = dict(params or {})
    if not isinstance(tracker, str) or "max_people" in params:
        return params
    asked = {**params, "max_people": max(PEOPLE_SLOTS, people or 0)}
    try:  # the tracker's own checks say whether it can find several people
        get_tracker(tracker, **asked)
    except (TrackerError, TypeError, ValueError):  # no such parameter, or a one-person mode
        return params
    if importlib.util.find_spec("ai_edge_litert") is None:
        logger.warning(
            "tracking one person per view (ai-edge-litert, which finds several, is not "
            "installed: pip install 'mocapflow[mediapipe]'); a second person in view will "
            "spoil the 3-D"
        )
        return params
    return asked


def _cameras_of(calibration: str | Path) -> tuple[dict[str, Camera], str | None]:
    """Read a calibration file: its cameras by name, and the world's up axis if it says."""
    cameras, meta = read_calibration(calibration)
    return cameras, up_axis(meta)
