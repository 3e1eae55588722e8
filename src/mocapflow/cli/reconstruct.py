"""3-D commands: calibrate, triangulate, filter, export, run."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from ..errors import UsageError
from ..schema import DEFAULT_CHUNK_FRAMES, DEFAULT_TRACKER, FILTERED, POINTS3D
from . import options as opt
from .app import app, err, errors, out
from .console import (
    print_calibration,
    print_kinematics,
    print_render,
    print_result,
    print_summary,
    print_sync,
    tracking_progress,
)
from .options import ALL_FORMATS, FILTER, TRIANGULATION

CALIBRATION_HELP = (
    "Calibration file: anipose, Pose2Sim or caliscope .toml, Qualisys .qca.txt, "
    "EasyMocap intri.yml."
)
Store = Annotated[Path, typer.Argument(help="A store written by mocapflow process.")]
Calibration = Annotated[
    Path,
    typer.Option(
        "--calibration",
        "-c",
        help=CALIBRATION_HELP,
    ),
]


@app.command("calibrate")
def calibrate_cmd(
    paths: Annotated[
        list[str],
        typer.Argument(
            help="A recording of the board; or 'intrinsics' then each camera's video or "
            "folder of images.",
            metavar="RECORDING | intrinsics CAMERA...",
        ),
    ],
    out_: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="TOML to write.",
            show_default="RECORDING/calibration.toml, or intrinsics.toml",
        ),
    ] = None,
    board: Annotated[list[str] | None, typer.Option("--board", "-b", help=opt.BOARD_HELP)] = None,
    origin: Annotated[
        str, typer.Option(help="World frame: camera (camera 0) or board (its ground plane).")
    ] = "camera",
    intrinsics: Annotated[
        Path | None,
        typer.Option(help="Intrinsics fitted apart (calibrate intrinsics), held fixed."),
    ] = None,
    refine_intrinsics: Annotated[
        bool, typer.Option(help="Let the fit refine the --intrinsics given.")
    ] = False,
    shared: Annotated[
        bool, typer.Option(help="intrinsics: the cameras are one model; fit them together.")
    ] = False,
    overwrite: opt.Overwrite = False,
    workers: opt.Workers = None,
    cluster: opt.Cluster = None,
    cluster_config: opt.ClusterConfig = None,
) -> None:
    """Calibrate the cameras from a board recording; write an anipose TOML.

    `mocapflow calibrate intrinsics CAMERA...` fits each camera alone from its own
    recording (a video, or a folder of images); `mocapflow calibrate RECORDING
    --intrinsics FILE` then fits the cameras' poses with those intrinsics fixed.
    """
    from ..calibration import calibrate, calibrate_intrinsics
    from .console import print_intrinsics

    with errors():
        board_spec = opt.board(board)
        if paths[0] == "intrinsics" and not Path(paths[0]).exists():
            if len(paths) < 2:
                raise UsageError("calibrate intrinsics: give each camera's video or image folder")
            with tracking_progress("corners") as progress:
                results, path = calibrate_intrinsics(
                    paths[1:],
                    out_ if out_ is not None else Path("intrinsics.toml"),
                    board=board_spec,
                    shared=shared,
                    overwrite=overwrite,
                    cluster=opt.on(cluster, cluster_config, workers, progress=progress),
                )
            print_intrinsics(results, path)
            return
        if len(paths) > 1:
            raise UsageError(
                f"calibrate takes one recording, not {len(paths)} paths; to fit cameras apart, "
                "write: mocapflow calibrate intrinsics CAMERA..."
            )
        with tracking_progress("corners") as progress:
            fit, path = calibrate(
                paths[0],
                out_,
                board=board_spec,
                origin=origin,
                cluster=opt.on(cluster, cluster_config, workers, progress=progress),
                overwrite=overwrite,
                report=False,
                intrinsics=intrinsics,
                refine_intrinsics=refine_intrinsics,
            )
    print_calibration(fit, path)


@app.command("triangulate")
def triangulate_cmd(
    store: Store,
    calibration: Calibration,
    min_views: opt.MinViews = TRIANGULATION.min_views,
    min_confidence: opt.MinConfidence = TRIANGULATION.min_confidence,
    max_error: opt.MaxError = TRIANGULATION.max_error,
    swap_lr: opt.SwapLR = TRIANGULATION.swap_lr,
    people: opt.People = "1",
    offset: opt.Offsets = None,
    cluster: opt.Cluster = None,
    cluster_config: opt.ClusterConfig = None,
) -> None:
    """Triangulate a 2-D store into its points3d group (views aligned by their offsets)."""
    from ..calib import read_calibration, up_axis
    from ..ledger import summary
    from ..runner import triangulate_store
    from ..sync import parse_offsets

    with errors():
        settings = opt.triangulation_settings(min_views, min_confidence, max_error, swap_lr, people)
        offsets = parse_offsets(offset)
        cameras, meta = read_calibration(calibration)
        with tracking_progress() as progress:
            points = triangulate_store(
                store,
                cameras,
                settings,
                up_axis=up_axis(meta),
                calibration=calibration,
                cluster=opt.on(cluster, cluster_config, progress=progress),
                offsets=offsets,
            )
        s = summary(store)
    print_summary({"views": [], "groups": {POINTS3D: s["groups"][POINTS3D]}}, store)
    untrusted(points.attrs.get("verdict"))


@app.command("sync")
def sync_cmd(
    store: Store,
    calibration: Annotated[
        Path | None,
        typer.Option(
            "--calibration",
            "-c",
            help="The cameras: motion then finds the lag where the views' keypoints agree "
            "(else it correlates their speeds).",
        ),
    ] = None,
    method: Annotated[
        str,
        typer.Option(
            help="motion, audio or flash; several, comma-separated, are compared (the first "
            "that finds an offset is written)."
        ),
    ] = "motion",
    reference: Annotated[
        str | None, typer.Option(help="The reference view.", show_default="the first")
    ] = None,
    offset: opt.Offsets = None,
    max_offset: Annotated[
        int | None,
        typer.Option(help="Largest offset tried, frames.", show_default="half the shorter view"),
    ] = None,
    subframe: Annotated[
        bool, typer.Option(help="Keep fractions of a frame (audio always keeps them).")
    ] = False,
) -> None:
    """Find each view's time offset against the reference and write it into the store."""
    from ..calib import read_calibration
    from ..sync import parse_offsets, sync_store
    from .console import print_sync

    with errors():
        offsets = parse_offsets(offset)
        cameras = read_calibration(calibration)[0] if calibration is not None else None
        methods = tuple(m.strip() for m in method.split(",") if m.strip())
        result = sync_store(
            store,
            methods,
            reference=reference,
            offsets=offsets,
            max_offset=max_offset,
            subframe=subframe,
            cameras=cameras,
        )
    print_sync(result)


@app.command("filter")
def filter_cmd(
    store: Annotated[Path, typer.Argument(help="A store with a points3d group.")],
    max_gap: opt.MaxGap = FILTER.max_gap,
    cutoff: opt.Cutoff = FILTER.cutoff,
    order: opt.Order = FILTER.order,
    cluster: opt.Cluster = None,
    cluster_config: opt.ClusterConfig = None,
) -> None:
    """Gap-fill and zero-phase low-pass the 3-D points into the filtered group."""
    from ..ledger import summary
    from ..runner import filter_store

    with errors():
        settings = opt.filter_settings(max_gap, cutoff, order)
        with tracking_progress() as progress:
            filter_store(
                store, settings, cluster=opt.on(cluster, cluster_config, progress=progress)
            )
        s = summary(store)
    print_summary({"views": [], "groups": {FILTERED: s["groups"][FILTERED]}}, store)


@app.command("export")
def export_cmd(
    store: Annotated[Path, typer.Argument(help="A store with 3-D points.")],
    fmt: opt.Formats = ALL_FORMATS,
    group: Annotated[
        str | None, typer.Option(help="3-D group.", show_default="filtered, else points3d")
    ] = None,
    out_dir: Annotated[
        Path | None, typer.Option(help="Folder.", show_default="beside the store")
    ] = None,
) -> None:
    """Export 3-D points for OpenSim (.trc), anipose (.csv) or FreeMoCap (.npy)."""
    from ..pipeline import export_store

    with errors():
        paths = export_store(store, opt.formats(fmt), group=group, out_dir=out_dir)
    for path in paths:
        out.print(f"wrote {path}", highlight=False)


@app.command("run")
def run_cmd(
    recording: Annotated[Path, typer.Argument(help="The recording to reconstruct.")],
    calibration: Annotated[
        Path | None,
        typer.Option(
            "--calibration",
            "-c",
            help=CALIBRATION_HELP,
        ),
    ] = None,
    calibration_recording: Annotated[
        Path | None, typer.Option(help="A ChArUco recording to calibrate from first.")
    ] = None,
    tracker: opt.Tracker = DEFAULT_TRACKER,
    param: opt.Params = None,
    chunk_frames: opt.ChunkFrames = DEFAULT_CHUNK_FRAMES,
    out_: opt.Out = None,
    board: Annotated[list[str] | None, typer.Option("--board", "-b", help=opt.BOARD_HELP)] = None,
    min_views: opt.MinViews = TRIANGULATION.min_views,
    min_confidence: opt.MinConfidence = TRIANGULATION.min_confidence,
    max_error: opt.MaxError = TRIANGULATION.max_error,
    swap_lr: opt.SwapLR = TRIANGULATION.swap_lr,
    people: opt.People = "1",
    sync: Annotated[
        str | None,
        typer.Option(
            help="Find the views' time offsets after tracking: motion, audio or flash.",
            show_default=False,
        ),
    ] = None,
    offset: opt.Offsets = None,
    kinematics: Annotated[
        bool, typer.Option(help="End with joint angles, centre of mass and OpenSim IK.")
    ] = False,
    mass: opt.Mass = None,
    render: Annotated[
        bool,
        typer.Option(help="End by rendering every view with the detections and the 3-D skeleton."),
    ] = False,
    max_gap: opt.MaxGap = FILTER.max_gap,
    cutoff: opt.Cutoff = FILTER.cutoff,
    order: opt.Order = FILTER.order,
    fmt: opt.Formats = ALL_FORMATS,
    workers: opt.Workers = None,
    report: opt.Report = True,
    overwrite: opt.Overwrite = False,
    cluster: opt.Cluster = None,
    cluster_config: opt.ClusterConfig = None,
    dashboard: opt.Dashboard = None,
) -> None:
    """Track, triangulate, filter and export a recording, all on one cluster."""
    from ..ledger import summary
    from ..pipeline import run_pipeline
    from ..sync import parse_offsets

    with errors():
        kwargs = dict(
            sync=tuple(m.strip() for m in sync.split(",") if m.strip()) if sync else (),
            offsets=parse_offsets(offset),
            kinematics=kinematics,
            mass=mass,
            render=render,
            calibration=calibration,
            calibration_recording=calibration_recording,
            tracker=tracker,
            tracker_params=opt.params(param),
            chunk_frames=chunk_frames,
            out=out_,
            board=opt.board(board),
            triangulation=opt.triangulation_settings(
                min_views, min_confidence, max_error, swap_lr, people
            ),
            filtering=opt.filter_settings(max_gap, cutoff, order),
            formats=opt.formats(fmt),
            report=report,
            overwrite=overwrite,
        )
        with tracking_progress() as progress:
            on = opt.on(cluster, cluster_config, workers, dashboard, progress)
            result = run_pipeline(recording, cluster=on, **kwargs)
        s = summary(result.store)
    if result.calibration_fit is not None:
        print_calibration(result.calibration_fit, result.calibration)
    print_result(result.tracking)
    if result.sync is not None:
        print_sync(result.sync)
    print_summary(s, result.store)
    for path in result.exports:
        out.print(f"wrote {path}", highlight=False)
    if result.kinematics is not None:
        print_kinematics(result.kinematics)
    if result.render is not None:
        print_render(result.render)
    untrusted(result.verdict)
    raise typer.Exit(result.exit_code)


def untrusted(verdict: str | None) -> None:
    """Say in one line that the 3-D cannot be trusted, and exit 1 (the results stay written)."""
    if verdict:
        err.print(f"[red]error:[/] {escape(verdict)}", highlight=False)
        raise typer.Exit(1)
