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

import typer
import yaml
from rich.console import Console
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
        err.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        err.print("interrupted; rerun the same command to resume", highlight=False)
        raise typer.Exit(130) from None
    except Exception as exc:  # an unexpected failure still gets one line
        if STATE["debug"]:
            raise
        err.print(
            f"[bold red]error:[/] {type(exc).__name__}: {exc} (rerun with --debug for details)",
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


@app.command("demo")
def demo_cmd(
    folder: Annotated[
        Path | None, typer.Argument(help="Where to make the sample [default: a temp folder].")
    ] = None,
    frames: Annotated[int, typer.Option(help="Frames per camera.")] = 600,
    cameras: Annotated[int, typer.Option(help="Cameras.")] = 4,
) -> None:
    """Make a synthetic 4-camera sample, track its markers in parallel, and show the result."""
    from .synthetic import synthesize

    with _errors():
        root = Path(folder) if folder else Path(tempfile.mkdtemp(prefix="mocapflow-demo-"))
        recording = root / "recording"
        err.print(f"making a {cameras}-camera sample of {frames} frames in {recording} ...")
        synthesize(
            recording, kind="markers", cameras=cameras, frames=frames, size=(640, 480), seed=7
        )
        store = root / "mocapflow.zarr"
        result = _run(recording, store, "markers", {}, overwrite=True)
        _print_result(result)
        out.print(f"\nsample: {recording}\nstore:  {store}")
        out.print(f"try:    mocapflow info {store}")
    raise typer.Exit(result.exit_code)


def run() -> None:  # pragma: no cover - console entry point alias
    """Entry point for ``python -m mocapflow``."""
    app(prog_name="mocapflow")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(run())
