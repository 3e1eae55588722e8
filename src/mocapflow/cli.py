"""The ``mocapflow`` command: a thin layer over the Python API.

Only this module configures logging and talks to the terminal. Exit codes:
0 when every view succeeded, 1 when some views failed but the others were
written, 2 for a usage or input error. Errors are one line, never a traceback
(``--debug`` shows it).
"""

from __future__ import annotations

import logging
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
import yaml
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from . import __version__
from .recording import RecordingError
from .store import StoreError
from .tasks import DEFAULT_CHUNK_FRAMES
from .trackers import TrackerError
from .video import VideoError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Track multi-camera motion-capture recordings in parallel, streamed into Zarr.",
)
out = Console()
err = Console(stderr=True)
STATE = {"debug": False}
EXPECTED = (RecordingError, StoreError, TrackerError, VideoError, ValueError, FileNotFoundError)
BOARD_HELP = "Board parameter NAME=VALUE: squares_x, squares_y, square_length (mm), ..."


class _Formatter(logging.Formatter):
    """``warning: message`` on one line (``-v`` adds the time and the logger)."""

    def __init__(self, verbose: int):
        super().__init__("%(asctime)s %(name)s %(message)s" if verbose else "%(message)s")

    def format(self, record: logging.LogRecord) -> str:
        return f"{record.levelname.lower()}: {super().format(record)}"


def _setup_logging(verbose: int) -> None:
    level = logging.DEBUG if verbose > 1 else logging.INFO if verbose else logging.WARNING
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter(verbose))
    logging.basicConfig(level=level, handlers=[handler], force=True)
    import distributed  # noqa: F401  (it configures its own loggers on import; override after)

    dist = logging.getLogger("distributed")
    dist.setLevel(logging.INFO if verbose > 1 else logging.WARNING)
    dist.handlers.clear()
    dist.propagate = True
    # performance_report's own bookkeeping warns about objects it cannot size.
    logging.getLogger("distributed.sizeof").setLevel(logging.ERROR)
    logging.captureWarnings(True)


@app.callback()
def main(
    verbose: Annotated[int, typer.Option("-v", "--verbose", count=True, help="More log.")] = 0,
    debug: Annotated[bool, typer.Option(help="Show tracebacks of errors.")] = False,
    version: Annotated[bool, typer.Option("--version", help="Print the version.")] = False,
) -> None:
    """Track multi-camera motion-capture recordings in parallel, streamed into Zarr."""
    if version:
        out.print(f"mocapflow {__version__}")
        raise typer.Exit(0)
    STATE["debug"] = debug
    _setup_logging(verbose)


@contextmanager
def _errors():
    """Turn expected errors into one line on stderr and exit code 2."""
    try:
        yield
    except typer.Exit:
        raise
    except EXPECTED as exc:
        if STATE["debug"]:
            raise
        err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        err.print("interrupted; rerun the same command to resume", highlight=False)
        raise typer.Exit(130) from None
    except Exception as exc:  # an unexpected failure still gets one line
        if STATE["debug"]:
            raise
        err.print(
            f"[bold red]error:[/] {type(exc).__name__}: {escape(str(exc))} "
            "(rerun with --debug for details)",
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(2) from None


def _params(pairs: list[str] | None) -> dict:
    params = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"--param {pair!r}: write it as NAME=VALUE, e.g. n_markers=8")
        params[key.strip()] = yaml.safe_load(value)
    return params


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(x) for x in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"--size {text!r}: write it as WIDTHxHEIGHT, e.g. 640x480") from None
    return w, h


def _run(recording: Path, store: Path | None, tracker: str, params: dict, **kwargs):
    """Run :func:`mocapflow.process` with a progress bar; return the result."""
    from .graph import process

    progress = Progress(
        TextColumn("[bold]tracking[/]"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("chunks"),
        TextColumn("{task.fields[fps]}"),
        TimeElapsedColumn(),
        console=err,
        transient=False,
    )
    state: dict = {"frames": 0, "t0": time.perf_counter()}

    def on_event(kind: str, info: dict) -> None:
        if kind == "start":
            sizing = info["sizing"]
            if not info["todo"]:
                err.print(f"all {info['n_tasks']} chunks are already done; nothing to compute")
                return
            err.print(f"dashboard: [link={info['dashboard']}]{info['dashboard']}[/link]")
            if sizing is not None:
                err.print(f"cluster:   {sizing.reason}", highlight=False)
            elif info.get("where"):
                err.print(f"cluster:   {info['where']}", highlight=False)
            skipped = info["n_tasks"] - info["todo"]
            if skipped:
                err.print(f"resuming:  {skipped} chunks already done, {info['todo']} to compute")
            state["task"] = progress.add_task("track", total=info["todo"], fps="")
            state["t0"] = time.perf_counter()
            progress.start()
            state["started"] = True
        elif kind == "chunk":
            state["frames"] += info.get("n_decoded", 0)
            rate = state["frames"] / max(time.perf_counter() - state["t0"], 1e-9)
            progress.update(state["task"], advance=1, fps=f"{rate:,.0f} frames/s")
            if info.get("error"):
                progress.console.print(f"[yellow]warning:[/] {info['error']}", highlight=False)

    try:
        return process(recording, tracker, store, on_event=on_event, **params, **kwargs)
    finally:
        if state.get("started"):
            progress.stop()


def _print_result(result) -> None:
    table = Table(title=f"{result.store}", title_justify="left")
    for col in ("view", "status", "frames", "decoded", "note"):
        table.add_column(col)
    colours = {"ok": "green", "partial": "yellow", "failed": "red"}
    for name, v in result.views.items():
        table.add_row(
            name,
            f"[{colours[v['status']]}]{v['status']}[/]",
            str(v["n_frames"]),
            str(v["n_decoded"]),
            v["error"] or "",
        )
    out.print(table)
    out.print(
        f"{result.computed} chunks computed, {result.skipped} skipped, "
        f"{len(result.failed_tasks)} failed, in {result.seconds:.1f} s"
    )
    if result.report:
        out.print(f"report: {result.report}")
    out.print(
        f"open it: [bold]xr.open_zarr({str(result.store)!r}, consolidated=False)[/] "
        f"or [bold]mocapflow info {result.store}[/]",
        highlight=False,
    )


@app.command("process")
def process_cmd(
    recording: Annotated[
        Path, typer.Argument(help="Recording folder (videos, or synchronized_videos/).")
    ],
    out_: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Zarr store [default: RECORDING/mocapflow.zarr]."),
    ] = None,
    tracker: Annotated[
        str,
        typer.Option(
            "--tracker", "-t", help="framestats, markers, charuco, or package.module:factory."
        ),
    ] = "framestats",
    param: Annotated[
        list[str] | None,
        typer.Option("--param", "-p", help="Tracker parameter NAME=VALUE (repeatable)."),
    ] = None,
    chunk_frames: Annotated[int, typer.Option(help="Frames per task.")] = DEFAULT_CHUNK_FRAMES,
    workers: Annotated[
        int | None, typer.Option(help="Worker processes [default: sized to the machine].")
    ] = None,
    report: Annotated[
        bool, typer.Option(help="Save a performance report beside the store.")
    ] = True,
    overwrite: Annotated[
        bool, typer.Option(help="Start afresh even if the store holds other results.")
    ] = False,
    resume: Annotated[bool, typer.Option(help="Skip chunks already done (the default).")] = True,
    cluster: Annotated[
        str | None, typer.Option(help="Profile in cluster.yaml [default: its default, local].")
    ] = None,
    cluster_config: Annotated[
        Path | None, typer.Option(help="Cluster profiles file [default: ./cluster.yaml].")
    ] = None,
    dashboard: Annotated[
        str | None, typer.Option(help="Dashboard host:port [default: 127.0.0.1:8787].")
    ] = None,
) -> None:
    """Track every frame of every video of a recording into a Zarr store."""
    with _errors():
        if chunk_frames < 1:
            raise ValueError(
                f"--chunk-frames must be a positive number of frames, got {chunk_frames}"
            )
        if workers is not None and workers < 1:
            raise ValueError(f"--workers must be at least 1, got {workers}")
        result = _run(
            recording,
            out_,
            tracker,
            _params(param),
            chunk_frames=chunk_frames,
            workers=workers,
            report=report,
            overwrite=overwrite or not resume,
            cluster=cluster,
            cluster_config=cluster_config,
            dashboard_address=dashboard,
        )
        _print_result(result)
    raise typer.Exit(result.exit_code)


@app.command("synth")
def synth_cmd(
    out_dir: Annotated[Path, typer.Argument(help="Folder to create.")],
    kind: Annotated[str, typer.Option(help="markers or charuco.")] = "markers",
    cameras: Annotated[int, typer.Option(help="Number of cameras.")] = 4,
    frames: Annotated[int, typer.Option(help="Frames per video.")] = 120,
    size: Annotated[str, typer.Option(help="WIDTHxHEIGHT.")] = "640x480",
    fps: Annotated[float, typer.Option(help="Frame rate.")] = 30.0,
    codec: Annotated[str, typer.Option(help="h264, mp4v, mjpg or vp9.")] = "h264",
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    markers: Annotated[int, typer.Option(help="Markers in the markers scene.")] = 6,
) -> None:
    """Render a synthetic recording with known cameras and 3-D ground truth."""
    from .synthetic import synthesize

    with _errors():
        rec = synthesize(
            out_dir,
            kind=kind,
            cameras=cameras,
            frames=frames,
            size=_size(size),
            fps=fps,
            codec=codec,
            seed=seed,
            n_markers=markers,
        )
        out.print(f"wrote {len(rec.videos)} videos to {rec.path / 'synchronized_videos'}")
        out.print(
            f"ground truth: {rec.path / 'ground_truth.zarr'}, {rec.path / 'calibration.toml'}"
        )


@app.command("info")
def info_cmd(store: Annotated[Path, typer.Argument(help="A mocapflow Zarr store.")]) -> None:
    """Summarise a store: views, frames, detections, run facts, completion."""
    from .store import summary

    with _errors():
        s = summary(store)
    attrs = s["attrs"]
    table = Table(title=str(store), title_justify="left")
    for col in ("view", "frames", "size", "codec", "status", "decoded", "detected"):
        table.add_column(col)
    for v in s["views"]:
        det = f"{v['detected_pct']:.1f}%" if "detected_pct" in v else "-"
        table.add_row(
            v["view"], str(v["frames"]), v["size"], v["codec"], v["status"], str(v["decoded"]), det
        )
    out.print(table)
    for v in s["views"]:
        if v.get("error"):
            out.print(f"[yellow]{v['view']}:[/] {v['error']}", highlight=False)
    cluster = attrs.get("cluster", {})
    facts = {
        "tracker": f"{attrs.get('tracker')} {attrs.get('tracker_params', {})}",
        "chunks": f"{attrs.get('chunk_frames')} frames/task, {attrs.get('time_chunk')}/Zarr chunk",
        "cluster": cluster.get("reason", "-"),
        "started": attrs.get("start_time", "-"),
        "ended": attrs.get("end_time", "-"),
        "complete": "yes" if attrs.get("completed") else "no (rerun the same command to resume)",
        "software": f"{attrs.get('source_software')} {attrs.get('source_version')}",
    }
    for k, v in facts.items():
        out.print(f"[bold]{k:>9}[/]: {v}", highlight=False)


@app.command("batch")
def batch_cmd(
    root: Annotated[Path, typer.Argument(help="Folder searched for recordings, however deep.")],
    tracker: Annotated[str, typer.Option("--tracker", "-t", help="Tracker name.")] = "framestats",
    param: Annotated[
        list[str] | None, typer.Option("--param", "-p", help="Tracker parameter NAME=VALUE.")
    ] = None,
    chunk_frames: Annotated[int, typer.Option(help="Frames per task.")] = DEFAULT_CHUNK_FRAMES,
    cluster: Annotated[str | None, typer.Option(help="Profile in cluster.yaml.")] = None,
    cluster_config: Annotated[Path | None, typer.Option(help="Cluster profiles file.")] = None,
) -> None:
    """Process every new or changed recording under ROOT; skip complete ones."""
    from .batch import SUMMARY_NAME, run_batch

    def show(r: dict) -> None:
        note = f" ({r['error']})" if r.get("error") else ""
        out.print(f"{r['action']:9} {r['seconds']:8.3f} s  {r['recording']}{note}", highlight=False)

    with _errors():
        if chunk_frames < 1:
            raise ValueError(
                f"--chunk-frames must be a positive number of frames, got {chunk_frames}"
            )
        records = run_batch(
            root,
            tracker,
            chunk_frames=chunk_frames,
            cluster=cluster,
            cluster_config=cluster_config,
            on_result=show,
            **_params(param),
        )
        out.print(f"{len(records)} recordings; summary appended to {root / SUMMARY_NAME}")
    raise typer.Exit(1 if any(r["exit_code"] for r in records) else 0)


cluster_app = typer.Typer(no_args_is_help=True, help="Inspect the cluster profiles.")
app.add_typer(cluster_app, name="cluster")


@cluster_app.command("show")
def cluster_show(
    name: Annotated[
        str | None, typer.Argument(help="Profile [default: the file's default].")
    ] = None,
    cluster_config: Annotated[
        Path | None, typer.Option(help="Cluster profiles file [default: ./cluster.yaml].")
    ] = None,
) -> None:
    """Print a profile as resolved: the sizing decision, or the job script to submit."""
    from .cluster import detect_resources, size_cluster
    from .config import SCALING, jobqueue_class, load_profile

    with _errors():
        profile = load_profile(name, cluster_config)
        out.print(f"profile {profile['name']!r} ({profile['type']}) from {profile['source']}")
        if profile["type"] == "local":
            res = detect_resources()
            for k, v in res.notes.items():
                out.print(f"  {k}: {v}", highlight=False)
            sizing = size_cluster(
                10**6,
                1920 * 1080 * 3,
                16,
                res,
                workers=profile.get("workers"),
                memory_limit=profile.get("memory_limit"),
            )
            out.print(
                f"  for a 1920x1080 recording with many tasks: {sizing.reason}", highlight=False
            )
            out.print(f"  memory limit per worker: {sizing.memory_limit / 2**30:.1f} GiB")
            out.print(f"  dashboard: {profile.get('dashboard_address', '127.0.0.1:8787')}")
            out.print("  (a small recording gets fewer workers: never more than its tasks)")
        elif profile["type"] == "address":
            where = profile.get("address") or f"scheduler file {profile['scheduler_file']}"
            out.print(f"  connects to {where}; the workers must see the videos and the store")
        else:
            kwargs = {
                k: v for k, v in profile.items() if k not in SCALING | {"type", "name", "source"}
            }
            cluster = jobqueue_class(profile["type"])(**kwargs)
            try:
                scale = profile.get("adapt") or f"{profile.get('jobs', 1)} jobs"
                out.print(f"  scaling: {scale}\n")
                out.print(cluster.job_script(), highlight=False, markup=False, soft_wrap=True)
            finally:
                cluster.close()


def _progress_events(label: str):
    """Return a progress callback for :func:`mocapflow.process` stages, and its stop."""
    progress = Progress(
        TextColumn(f"[bold]{label}[/]"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("chunks"),
        TimeElapsedColumn(),
        console=err,
    )
    state: dict = {}

    def on_event(kind: str, info: dict) -> None:
        if kind == "start" and info["todo"]:
            if "task" not in state:
                if info.get("dashboard"):
                    err.print(f"dashboard: {info['dashboard']}", highlight=False)
                progress.start()
            state["task"] = progress.add_task(label, total=info["todo"])
        elif kind == "chunk" and "task" in state:
            progress.update(state["task"], advance=1)

    return on_event, progress.stop


def _print_calibration(fit, path: Path) -> None:
    table = Table(title=f"{path}", title_justify="left")
    for col in ("camera", "board views", "RMS error (px)", "focal (px)", "centre (mm)"):
        table.add_column(col)
    for cam in fit.cameras:
        table.add_row(
            cam.name,
            str(fit.n_views[cam.name]),
            f"{fit.per_camera_rms[cam.name]:.3f}",
            f"{cam.matrix[0, 0]:.1f}",
            " ".join(f"{v:.0f}" for v in cam.center),
        )
    out.print(table)
    out.print(f"RMS reprojection error {fit.rms:.3f} px over {fit.n_frames} board poses")
    for w in fit.warnings:
        err.print(f"[yellow]warning:[/] {w}", highlight=False)


@app.command("calibrate")
def calibrate_cmd(
    recording: Annotated[Path, typer.Argument(help="A recording of a ChArUco board.")],
    out_: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="TOML to write [default: RECORDING/calibration.toml]."),
    ] = None,
    board: Annotated[list[str] | None, typer.Option("--board", "-b", help=BOARD_HELP)] = None,
    origin: Annotated[
        str, typer.Option(help="World frame: camera (camera 0) or board (its ground plane).")
    ] = "camera",
    cluster: Annotated[str | None, typer.Option(help="Profile in cluster.yaml.")] = None,
    cluster_config: Annotated[Path | None, typer.Option(help="Cluster profiles file.")] = None,
) -> None:
    """Calibrate the cameras from a ChArUco recording; write an anipose TOML."""
    from .pipeline import calibrate

    with _errors():
        on_event, stop = _progress_events("corners")
        try:
            fit, path = calibrate(
                recording,
                out_,
                board=_params(board),
                origin=origin,
                cluster=cluster,
                cluster_config=cluster_config,
                on_event=on_event,
                report=False,
            )
        finally:
            stop()
        _print_calibration(fit, path)


@app.command("triangulate")
def triangulate_cmd(
    store: Annotated[Path, typer.Argument(help="A store written by mocapflow process.")],
    calibration: Annotated[
        Path, typer.Option("--calibration", "-c", help="calibration .toml or .qca.txt.")
    ],
    min_views: Annotated[int, typer.Option(help="Fewest views per point.")] = 2,
    min_confidence: Annotated[float, typer.Option(help="Confidence threshold.")] = 0.5,
    max_error: Annotated[
        float | None,
        typer.Option(help="Reject views while the reprojection error (px) is over this."),
    ] = None,
    swap_lr: Annotated[
        bool, typer.Option(help="Undo single views' left/right label swaps.")
    ] = True,
) -> None:
    """Triangulate a 2-D store into its points3d group."""
    from .calibration import read_calibration
    from .graph import triangulate_store

    with _errors():
        if min_views < 2:
            raise ValueError(f"--min-views must be at least 2, got {min_views}")
        cameras, _ = read_calibration(calibration)
        ds = triangulate_store(
            store,
            cameras,
            min_views=min_views,
            min_confidence=min_confidence,
            max_error=max_error,
            swap_lr=swap_lr,
        )
        _print_points(ds, store, "points3d")


def _print_points(ds, store: Path, group: str) -> None:
    n = ds.n_views.values
    found = np.isfinite(ds.position.values).all(1)
    err_px = ds.reprojection_error.values
    med_err = np.nanmedian(err_px) if found.any() else float("nan")
    med_views = np.median(n[found]) if found.any() else 0
    out.print(
        f"{store}/{group}: {found.mean() * 100:.1f}% of points triangulated "
        f"({ds.sizes['time']} frames x {ds.sizes['keypoint']} keypoints), "
        f"median reprojection error {med_err:.3f} px, median {med_views:.0f} views",
        highlight=False,
    )


@app.command("filter")
def filter_cmd(
    store: Annotated[Path, typer.Argument(help="A store with a points3d group.")],
    max_gap: Annotated[int, typer.Option(help="Fill gaps up to this many frames.")] = 10,
    cutoff: Annotated[float, typer.Option(help="Low-pass cut-off, Hz.")] = 7.0,
    order: Annotated[int, typer.Option(help="Butterworth order.")] = 4,
) -> None:
    """Gap-fill and zero-phase low-pass the 3-D points into the filtered group."""
    from .graph import filter_store

    with _errors():
        if not (store / "points3d" / "zarr.json").exists():
            raise ValueError(f"{store}: no points3d group; run mocapflow triangulate first")
        ds = filter_store(store, max_gap=max_gap, cutoff=cutoff, order=order)
        _print_points(ds, store, "filtered")


@app.command("export")
def export_cmd(
    store: Annotated[Path, typer.Argument(help="A store with 3-D points.")],
    fmt: Annotated[list[str], typer.Option("--format", "-f", help="csv, trc or npy.")] = [  # noqa: B006
        "csv"
    ],
    group: Annotated[
        str | None, typer.Option(help="3-D group [default: filtered, else points3d].")
    ] = None,
    out_dir: Annotated[
        Path | None, typer.Option(help="Folder [default: beside the store].")
    ] = None,
) -> None:
    """Export 3-D points as CSV, OpenSim .trc or FreeMoCap-style .npy."""
    from .pipeline import export_store

    with _errors():
        for path in export_store(store, fmt, group=group, out_dir=out_dir):
            out.print(f"wrote {path}", highlight=False)


@app.command("run")
def run_cmd(
    recording: Annotated[Path, typer.Argument(help="The recording to reconstruct.")],
    calibration: Annotated[
        Path | None, typer.Option("--calibration", "-c", help="calibration .toml or .qca.txt.")
    ] = None,
    calibration_recording: Annotated[
        Path | None, typer.Option(help="A ChArUco recording to calibrate from first.")
    ] = None,
    tracker: Annotated[str, typer.Option("--tracker", "-t", help="2-D tracker.")] = "markers",
    param: Annotated[
        list[str] | None, typer.Option("--param", "-p", help="Tracker parameter NAME=VALUE.")
    ] = None,
    out_: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Zarr store [default: RECORDING/mocapflow.zarr]."),
    ] = None,
    board: Annotated[list[str] | None, typer.Option("--board", "-b", help=BOARD_HELP)] = None,
    min_views: Annotated[int, typer.Option(help="Fewest views per point.")] = 2,
    min_confidence: Annotated[float, typer.Option(help="Confidence threshold.")] = 0.5,
    max_error: Annotated[
        float | None, typer.Option(help="Outlier rejection target, px (off by default).")
    ] = None,
    swap_lr: Annotated[
        bool, typer.Option(help="Undo single views' left/right label swaps.")
    ] = True,
    max_gap: Annotated[int, typer.Option(help="Fill gaps up to this many frames.")] = 10,
    cutoff: Annotated[float, typer.Option(help="Low-pass cut-off, Hz.")] = 7.0,
    fmt: Annotated[list[str], typer.Option("--format", "-f", help="Exports.")] = [  # noqa: B006
        "csv",
        "trc",
        "npy",
    ],
    cluster: Annotated[str | None, typer.Option(help="Profile in cluster.yaml.")] = None,
    cluster_config: Annotated[Path | None, typer.Option(help="Cluster profiles file.")] = None,
) -> None:
    """Track, triangulate, filter and export a recording, all on one cluster."""
    from .pipeline import run_pipeline

    with _errors():
        result = _run_pipeline(
            run_pipeline,
            recording,
            calibration=calibration,
            calibration_recording=calibration_recording,
            tracker=tracker,
            out=out_,
            board=_params(board),
            min_views=min_views,
            min_confidence=min_confidence,
            max_error=max_error,
            swap_lr=swap_lr,
            max_gap=max_gap,
            cutoff=cutoff,
            formats=tuple(fmt),
            cluster=cluster,
            cluster_config=cluster_config,
            **_params(param),
        )
    raise typer.Exit(result.tracking.exit_code)


def _run_pipeline(run_pipeline, recording, **kwargs):
    from .quality import store_summary

    on_event, stop = _progress_events("tracking")
    try:
        result = run_pipeline(recording, on_event=on_event, **kwargs)
    finally:
        stop()
    if result.calibration_fit is not None:
        _print_calibration(result.calibration_fit, result.calibration)
    _print_result(result.tracking)
    _print_summary(store_summary(result.store))
    for path in result.exports:
        out.print(f"wrote {path}", highlight=False)
    return result


@app.command("demo")
def demo_cmd(
    folder: Annotated[
        Path | None, typer.Argument(help="Where the outputs go [default: a temp folder].")
    ] = None,
    sample: Annotated[
        Path | None,
        typer.Option(help="The real sample recording [default: samples/pose2sim_single_person]."),
    ] = None,
    synthetic: Annotated[
        bool, typer.Option(help="Also calibrate and reconstruct a synthetic recording.")
    ] = True,
    frames: Annotated[int, typer.Option(help="Frames per camera of the synthetic part.")] = 300,
    cameras: Annotated[int, typer.Option(help="Cameras of the synthetic part.")] = 4,
) -> None:
    """Track a real person with MediaPipe to a 3-D skeleton; then a synthetic check."""
    from .demo import pose_demo, synthetic_demo

    with _errors():
        root = Path(folder) if folder else Path(tempfile.mkdtemp(prefix="mocapflow-demo-"))
        err.print("[bold]1. a real recording of a person[/] (Pose2Sim demo, 4 cameras, Qualisys)")
        part = _with_progress("tracking", lambda on_event: pose_demo(root, sample, on_event))
        _print_part(part)
        code = part.result.tracking.exit_code
        if synthetic:
            err.print(
                "\n[bold]2. a synthetic recording[/]: calibrate from ChArUco, reconstruct markers"
            )
            part2 = _with_progress(
                "tracking", lambda on_event: synthetic_demo(root, frames, cameras, on_event)
            )
            _print_part(part2)
            out.print(
                "camera centres after alignment, error (mm): "
                + ", ".join(f"{k} {v:.2f}" for k, v in part2.truth["camera_centre_mm"].items()),
                highlight=False,
            )
            for group in ("points3d", "filtered"):
                t = part2.truth[group]
                out.print(
                    f"3-D error against the ground truth ({group}): RMSE {t['rmse_mm']:.2f} mm, "
                    f"median {t['median_mm']:.2f} mm, over {t['points']} points",
                    highlight=False,
                )
            code = max(code, part2.result.tracking.exit_code)
        out.print(f"\noutputs in {root}")
    raise typer.Exit(code)


def _with_progress(label: str, work):
    """Run ``work(on_event)`` with a progress bar for its tracking stages."""
    on_event, stop = _progress_events(label)
    try:
        return work(on_event)
    finally:
        stop()


def _print_part(part) -> None:
    """Print a pipeline run and what a mocap user checks first."""
    result = part.result
    if result.calibration_fit is not None:
        _print_calibration(result.calibration_fit, result.calibration)
    _print_result(result.tracking)
    _print_summary(part.summary)
    for path in result.exports:
        out.print(f"wrote {path}", highlight=False)


def _print_summary(summary: dict) -> None:
    """Print detections per view, and per 3-D group the points, error and bone stability."""
    out.print(
        "detections per view: "
        + ", ".join(f"{k} {v * 100:.0f}%" for k, v in summary["detected"].items()),
        highlight=False,
    )
    for group, s in summary["groups"].items():
        text = f"{group}: {s['triangulated'] * 100:.1f}% of points triangulated"
        if group != "filtered":  # filtering keeps the triangulation's errors
            text += (
                f", reprojection error median {s['median_error_px']:.1f} px, "
                f"p90 {s['p90_error_px']:.1f} px"
            )
        if s["bones"]:
            text += f", bone length CV median {s['bone_cv_median']:.3f} ({s['bones']} bones)"
        out.print(text, highlight=False)


def run() -> None:  # pragma: no cover - console entry point alias
    """Entry point for ``python -m mocapflow``."""
    app(prog_name="mocapflow")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(run())
