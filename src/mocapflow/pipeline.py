"""The 3-D pipeline: calibrate, track, triangulate, filter and export on one cluster."""

from __future__ import annotations

import datetime as _dt
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import xarray as xr

from . import __version__
from .calibrate import CalibrationResult, calibrate_cameras
from .calibration import Camera, read_calibration, write_toml
from .export import FORMATS, export
from .graph import FILTERED, POINTS3D, RunResult, filter_store, process, triangulate_store
from .recording import open_recording
from .tasks import BATCH_FRAMES, DEFAULT_CHUNK_FRAMES, plan_chunks
from .trackers import Charuco

__all__ = ["PipelineResult", "calibrate", "run_pipeline", "export_store", "BOARD_DEFAULTS"]

logger = logging.getLogger(__name__)

#: FreeMoCap's default board; ``square_length`` in the world unit (mm).
BOARD_DEFAULTS = {
    "squares_x": 7,
    "squares_y": 5,
    "square_length": 120.0,
    "marker_ratio": 0.8,
    "dictionary": "DICT_4X4_250",
}


def calibrate(
    recording: str | Path,
    out: str | Path | None = None,
    *,
    board: dict | None = None,
    origin: str = "camera",
    client=None,
    store: str | Path | None = None,
    **process_kwargs,
) -> tuple[CalibrationResult, Path]:
    """Calibrate the cameras of a ChArUco recording and write the TOML.

    The ``charuco`` tracker runs over the recording through the normal chunked
    graph (:func:`mocapflow.process`, resumable), then
    :func:`mocapflow.calibrate.calibrate_cameras` fits the cameras.

    Parameters
    ----------
    recording : path
        The calibration recording.
    out : path, optional
        The TOML; default ``RECORDING/calibration.toml``.
    board : dict, optional
        Board parameters (see :data:`BOARD_DEFAULTS`).
    origin : {"camera", "board"}
        World frame: camera 0's, or the board's ground plane.
    client : distributed.Client, optional
        Run on this client (else the cluster profile's).
    store : path, optional
        The corner store; default ``RECORDING/mocapflow.zarr``.
    **process_kwargs
        Passed to :func:`mocapflow.process`.

    Returns
    -------
    tuple
        ``(CalibrationResult, path of the TOML)``.

    """
    rec = open_recording(recording)
    params = {**BOARD_DEFAULTS, **(board or {})}
    unknown = set(params) - set(BOARD_DEFAULTS)
    if unknown:
        raise ValueError(
            f"unknown board parameter(s) {sorted(unknown)}; valid: {sorted(BOARD_DEFAULTS)}"
        )
    tracker = Charuco(**params)
    result = process(rec, tracker, store, client=client, **process_kwargs)
    bad = [n for n, v in result.views.items() if v["status"] == "failed"]
    ds = xr.open_zarr(result.store, consolidated=False)
    names = [n for n in (str(v) for v in ds.view.values) if n not in bad]
    if bad:
        logger.warning("views %s failed to track and are left out of the calibration", bad)
    pos = ds.position.sel(view=names).isel(individual=0).values
    sizes = [(v.info.width, v.info.height) for v in rec.views if v.name in names]
    obj = np.asarray(tracker.board().getChessboardCorners(), np.float64)
    fit = calibrate_cameras(pos, names, sizes, obj, origin=origin)
    for w in fit.warnings:
        logger.warning("%s", w)
    path = Path(out) if out is not None else rec.path / "calibration.toml"
    meta = {
        "software": f"mocapflow {__version__}",
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "recording": str(rec.path),
        "board": {"type": "charuco", **params},
        "origin": origin,
        "units": "mm",
        **fit.metadata(),
    }
    write_toml(path, fit.cameras, meta)
    return fit, path


def export_store(
    store: str | Path,
    formats: list[str] | tuple[str, ...] = FORMATS,
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
        Any of ``csv``, ``trc``, ``npy``.
    group : str, optional
        The group; default ``filtered``, else ``points3d``.
    out_dir : path, optional
        Where to write; default beside the store.

    Returns
    -------
    list of pathlib.Path
        The files written, ``<store stem>.<group>.<ext>``.

    """
    store = Path(store)
    groups = [group] if group else [FILTERED, POINTS3D]
    for g in groups:
        if (store / g / "zarr.json").exists():
            group = g
            break
    else:
        raise ValueError(
            f"{store}: no 3-D points ({' or '.join(groups)}); run mocapflow triangulate first"
        )
    ds = xr.open_zarr(store, group=group, consolidated=False).load()
    folder = Path(out_dir) if out_dir else store.parent
    folder.mkdir(parents=True, exist_ok=True)
    return [
        export(ds, folder / f"{store.stem}.{group}.{fmt}", fmt) for fmt in dict.fromkeys(formats)
    ]


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

    """

    tracking: RunResult
    calibration: Path
    store: Path
    exports: list[Path] = field(default_factory=list)
    calibration_fit: CalibrationResult | None = None


def run_pipeline(
    recording: str | Path,
    *,
    calibration: str | Path | None = None,
    calibration_recording: str | Path | None = None,
    tracker: str = "markers",
    out: str | Path | None = None,
    board: dict | None = None,
    min_views: int = 2,
    min_confidence: float = 0.5,
    max_error: float | None = None,
    swap_lr: bool = True,
    max_gap: int = 10,
    cutoff: float = 7.0,
    order: int = 4,
    formats: tuple[str, ...] = FORMATS,
    client=None,
    cluster: str | None = None,
    cluster_config: str | Path | None = None,
    on_event=None,
    overwrite: bool = False,
    **tracker_params,
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
    out : path, optional
        The store; default ``RECORDING/mocapflow.zarr``.
    board : dict, optional
        Board parameters for ``calibration_recording``.
    min_views, min_confidence, max_error, swap_lr
        Triangulation settings (see :func:`mocapflow.graph.triangulate`).
    max_gap, cutoff, order
        Filter settings.
    formats : tuple of str
        Exports to write beside the store.
    client : distributed.Client, optional
        Use this client; otherwise one is opened from the cluster profile and
        shared by every stage.
    cluster, cluster_config
        The profile, as :func:`mocapflow.process` takes them.
    on_event : callable, optional
        Progress callback of the tracking stages (see :func:`mocapflow.process`).
    overwrite : bool
        Replace stores made from other inputs (else a rerun resumes).
    **tracker_params
        Parameters for the tracker.

    Returns
    -------
    PipelineResult
        What was written.

    """
    from .cluster import open_cluster
    from .config import load_profile

    if (calibration is None) == (calibration_recording is None):
        raise ValueError("give either a calibration file or a calibration recording")
    cameras: dict[str, Camera] | None = None
    if calibration is not None:
        cameras, _ = read_calibration(calibration)
    rec = open_recording(recording)
    own = client is None
    cluster_obj = None
    if own:
        profile = load_profile(cluster, cluster_config)
        # Sized for the recording's tracking tasks, the largest stage.
        biggest = max(v.info.width * v.info.height * 3 for v in rec.ok_views)
        n_tasks = len(plan_chunks(rec, DEFAULT_CHUNK_FRAMES))
        cluster_obj, client, _, _ = open_cluster(profile, n_tasks, biggest, BATCH_FRAMES)
    try:
        fit = None
        if calibration_recording is not None:
            fit, calibration = calibrate(
                calibration_recording,
                board=board,
                client=client,
                on_event=on_event,
                overwrite=overwrite,
            )
            cameras = {c.name: c for c in fit.cameras}
        tracking = process(
            rec,
            tracker,
            out,
            client=client,
            on_event=on_event,
            overwrite=overwrite,
            **tracker_params,
        )
        triangulate_store(
            tracking.store,
            cameras,
            client=client,
            min_views=min_views,
            min_confidence=min_confidence,
            max_error=max_error,
            swap_lr=swap_lr,
        )
        filter_store(tracking.store, client=client, max_gap=max_gap, cutoff=cutoff, order=order)
    finally:
        if own:
            client.close()
            if cluster_obj is not None:
                cluster_obj.close()
    exports = export_store(tracking.store, formats) if formats else []
    return PipelineResult(tracking, Path(calibration), tracking.store, exports, fit)
