"""2-D commands: process, batch, info, synth, cluster show, demo."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from ..schema import DASHBOARD_ADDRESS, DEFAULT_CHUNK_FRAMES, DEFAULT_TRACKER, FILTERED, POINTS3D
from . import options as opt
from .app import app, err, errors, out
from .console import print_info, print_result, print_summary, tracking_progress

Recording = Annotated[
    Path, typer.Argument(help="Recording folder (videos, or synchronized_videos/).")
]


@app.command("process")
def process_cmd(
    recording: Recording,
    out_: opt.Out = None,
    tracker: opt.Tracker = DEFAULT_TRACKER,
    param: opt.Params = None,
    chunk_frames: opt.ChunkFrames = DEFAULT_CHUNK_FRAMES,
    workers: opt.Workers = None,
    report: opt.Report = True,
    overwrite: opt.Overwrite = False,
    cluster: opt.Cluster = None,
    cluster_config: opt.ClusterConfig = None,
    dashboard: opt.Dashboard = None,
) -> None:
    """Track every frame of every video of a recording into a Zarr store (a rerun resumes)."""
    from ..runner import process

    with errors(), tracking_progress() as progress:
        result = process(
            recording,
            tracker,
            out_,
            tracker_params=opt.params(param),
            chunk_frames=chunk_frames,
            cluster=opt.on(cluster, cluster_config, workers, dashboard, progress),
            report=report,
            overwrite=overwrite,
        )
    print_result(result)
    raise typer.Exit(result.exit_code)


@app.command("batch")
def batch_cmd(
    root: Annotated[Path, typer.Argument(help="Folder searched for recordings, however deep.")],
    tracker: opt.Tracker = DEFAULT_TRACKER,
    param: opt.Params = None,
    chunk_frames: opt.ChunkFrames = DEFAULT_CHUNK_FRAMES,
    workers: opt.Workers = None,
    cluster: opt.Cluster = None,
    cluster_config: opt.ClusterConfig = None,
) -> None:
    """Process every new or unfinished recording under ROOT; skip complete ones."""
    from ..batch import SUMMARY_NAME, run_batch

    def show(r: dict) -> None:
        note = f" ({r['error']})" if r.get("error") else ""
        out.print(
            escape(f"{r['action']:9} {r['seconds']:8.3f} s  {r['recording']}{note}"),
            highlight=False,
        )

    with errors():
        records = run_batch(
            root,
            tracker,
            tracker_params=opt.params(param),
            chunk_frames=chunk_frames,
            cluster=opt.on(cluster, cluster_config, workers),
            on_result=show,
        )
    out.print(f"{len(records)} recordings; summary appended to {root / SUMMARY_NAME}")
    raise typer.Exit(1 if any(r["exit_code"] for r in records) else 0)


@app.command("info")
def info_cmd(store: Annotated[Path, typer.Argument(help="A mocapflow Zarr store.")]) -> None:
    """Summarise a store: views, frames, detections, run facts, completion, 3-D groups."""
    from ..ledger import summary

    with errors():
        s = summary(store)
    print_info(store, s)


@app.command("verify")
def verify_cmd(store: Annotated[Path, typer.Argument(help="A mocapflow Zarr store.")]) -> None:
    """Check every chunk and group of a store against its ledger; name what is damaged."""
    from ..ledger import verify
    from .console import print_problems

    with errors():
        problems = verify(store)
    if not problems:
        out.print(f"{store}: every chunk and group is whole")
    print_problems(store, problems)
    raise typer.Exit(1 if problems else 0)


@app.command("synth")
def synth_cmd(
    out_dir: Annotated[Path, typer.Argument(help="Folder to create.")],
    kind: Annotated[str, typer.Option(help="markers or charuco.")] = "markers",
    scene: Annotated[
        str,
        typer.Option(
            help="charuco: sweep (the board through the volume) or turntable (a small board "
            "turning once near the centre, each camera seeing it face-on only part of the time)."
        ),
    ] = "sweep",
    cameras: Annotated[int, typer.Option(help="Number of cameras.")] = 4,
    frames: Annotated[
        int | None, typer.Option(help="Frames per video.", show_default="120; turntable 150")
    ] = None,
    size: Annotated[
        str | None, typer.Option(help="WIDTHxHEIGHT.", show_default="640x480; turntable 960x720")
    ] = None,
    fps: Annotated[float, typer.Option(help="Frame rate.")] = 30.0,
    codec: Annotated[str, typer.Option(help="h264, mp4v, mjpg or vp9.")] = "h264",
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    markers: Annotated[int, typer.Option(help="Markers in the markers scene.")] = 6,
    overwrite: Annotated[bool, typer.Option(help="Replace a recording already there.")] = False,
) -> None:
    """Render a synthetic recording with known cameras and 3-D ground truth."""
    from ..errors import UsageError
    from ..synthetic import TRUE_CALIBRATION, synthesize

    with errors():
        dims = None
        if size is not None:
            try:
                dims = tuple(int(x) for x in size.lower().split("x"))
            except ValueError:
                dims = ()
            if len(dims) != 2:
                raise UsageError(f"--size {size!r}: write it as WIDTHxHEIGHT, e.g. 640x480")
        rec = synthesize(
            out_dir,
            kind=kind,
            cameras=cameras,
            frames=frames,
            size=dims,
            fps=fps,
            codec=codec,
            seed=seed,
            n_markers=markers,
            overwrite=overwrite,
            scene=scene,
        )
    out.print(f"wrote {len(rec.videos)} videos to {rec.path / 'synchronized_videos'}")
    out.print(f"ground truth: {rec.path / 'ground_truth.zarr'}, {rec.path / TRUE_CALIBRATION}")


cluster_app = typer.Typer(no_args_is_help=True, help="Inspect the cluster profiles.")
app.add_typer(cluster_app, name="cluster")


@cluster_app.command("show")
def cluster_show(
    name: Annotated[
        str | None, typer.Argument(help="Profile.", show_default="the file's default")
    ] = None,
    cluster_config: opt.ClusterConfig = None,
) -> None:
    """Print a profile as resolved: the sizing decision, or the job script to submit."""
    from ..cluster import detect_resources, job_script, load_profile, size_cluster

    with errors():
        profile = load_profile(name, cluster_config)
        out.print(f"profile {profile['name']!r} ({profile['type']}) from {profile['source']}")
        if profile["type"] == "local":
            res = detect_resources()
            out.print(f"  cores: {res.cores} ({res.notes['cores']})", highlight=False)
            out.print(f"  memory: {res.memory / 2**30:.1f} GiB ({res.notes['memory']})")
            sizing = size_cluster(
                10**6,
                1920 * 1080 * 3,
                16,
                res,
                workers=profile.get("workers"),
                memory_limit=profile.get("memory_limit"),
                processes=profile.get("processes", True),
            )
            out.print(
                f"  for a 1920x1080 recording with many tasks: {sizing.reason}", highlight=False
            )
            per = "per worker" if sizing.processes else "of this process"
            out.print(f"  memory limit {per}: {sizing.memory_limit / 2**30:.1f} GiB")
            out.print(f"  dashboard: {profile.get('dashboard_address', DASHBOARD_ADDRESS)}")
            out.print("  (a small recording gets fewer workers: never more than its tasks)")
        elif profile["type"] == "address":
            where = profile.get("address") or f"scheduler file {profile['scheduler_file']}"
            out.print(f"  connects to {where}; the workers must see the videos and the store")
        elif profile["type"] in ("slurm", "pbs"):
            scale = profile.get("adapt") or f"{profile.get('jobs', 1)} jobs"
            out.print(f"  scaling: {scale}\n")
            out.print(job_script(profile), highlight=False, markup=False)
        else:
            out.print(f"  a profile type a package registers (mocapflow.profiles): {profile}")


@app.command("demo")
def demo_cmd(
    folder: Annotated[
        Path | None, typer.Argument(help="Where the outputs go.", show_default="a temp folder")
    ] = None,
    sample: Annotated[
        Path | None,
        typer.Option(
            help="The real sample recording.", show_default="samples/pose2sim_single_person"
        ),
    ] = None,
    synthetic: Annotated[
        bool, typer.Option(help="Also calibrate and reconstruct a synthetic recording.")
    ] = True,
    frames: Annotated[int, typer.Option(help="Frames per camera of the synthetic part.")] = 300,
    cameras: Annotated[int, typer.Option(help="Cameras of the synthetic part.")] = 4,
) -> None:
    """Track a real person with MediaPipe to a 3-D skeleton; then a synthetic check."""
    from ..demo import pose_demo, synthetic_demo

    root = Path(folder) if folder else Path(tempfile.mkdtemp(prefix="mocapflow-demo-"))
    err.print("[bold]1. a real recording of a person[/] (Pose2Sim demo, 4 cameras, Qualisys)")
    with errors(), tracking_progress() as progress:
        part = pose_demo(root, sample, opt.on(None, None, progress=progress))
    _print_part(part)
    code = part.result.tracking.exit_code
    if synthetic:
        err.print(
            "\n[bold]2. a synthetic recording[/]: calibrate from ChArUco, reconstruct markers"
        )
        with errors(), tracking_progress() as progress:
            part2 = synthetic_demo(root, frames, cameras, opt.on(None, None, progress=progress))
        _print_part(part2)
        out.print(
            "camera centres after alignment, error (mm): "
            + ", ".join(f"{k} {v:.2f}" for k, v in part2.truth["camera_centre_mm"].items()),
            highlight=False,
        )
        for group in (POINTS3D, FILTERED):
            t = part2.truth[group]
            out.print(
                f"3-D error against the ground truth ({group}): RMSE {t['rmse_mm']:.2f} mm, "
                f"median {t['median_mm']:.2f} mm, over {t['points']} points",
                highlight=False,
            )
        code = max(code, part2.result.tracking.exit_code)
    out.print(f"\noutputs in {root}")
    raise typer.Exit(code)


def _print_part(part) -> None:
    """Print a pipeline run and what a mocap user checks first."""
    from .console import print_calibration

    result = part.result
    if result.calibration_fit is not None:
        print_calibration(result.calibration_fit, result.calibration)
    print_result(result.tracking)
    print_summary(part.summary, result.store)
    for path in result.exports:
        out.print(f"wrote {path}", highlight=False)
