"""See the result: render."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..schema import RENDER_FRAMES
from . import options as opt
from .app import app, errors
from .console import print_render, tracking_progress


@app.command("render")
def render_cmd(
    store: Annotated[Path, typer.Argument(help="A mocapflow store (its videos where it says).")],
    views: Annotated[
        str | None, typer.Option(help="Views to render, comma separated.", show_default="all")
    ] = None,
    group: Annotated[
        str | None,
        typer.Option(help="3-D group drawn.", show_default="filtered, else points3d"),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Folder for the videos.", show_default="NAME.render"),
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace videos already there.")] = False,
    chunk_frames: opt.ChunkFrames = RENDER_FRAMES,
    videos: Annotated[
        Path | None,
        typer.Option(help="Folder of the videos, if moved.", show_default="where the store says"),
    ] = None,
    cluster: opt.Cluster = None,
    cluster_config: opt.ClusterConfig = None,
    workers: opt.Workers = None,
) -> None:
    """Draw the detections and the reprojected 3-D skeleton over every view, in parallel chunks."""
    from ..render import render_store

    with errors():
        with tracking_progress() as progress:
            result = render_store(
                store,
                views=[v.strip() for v in views.split(",") if v.strip()] if views else None,
                group=group,
                out=out,
                overwrite=overwrite,
                chunk_frames=chunk_frames,
                videos=videos,
                cluster=opt.on(cluster, cluster_config, workers, progress=progress),
            )
    print_render(result)
    raise typer.Exit(1 if result.failed else 0)
