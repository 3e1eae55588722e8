"""Biomechanics: kinematics."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..schema import IK_FRAMES
from . import options as opt
from .app import app, errors
from .console import print_kinematics, tracking_progress


@app.command("kinematics")
def kinematics_cmd(
    store: Annotated[Path, typer.Argument(help="A store with 3-D points (run or triangulate).")],
    group: Annotated[
        str | None, typer.Option(help="3-D group.", show_default="filtered, else points3d")
    ] = None,
    ik: opt.IK = None,
    mass: opt.Mass = None,
    sex: opt.Sex = "male",
    ik_frames: Annotated[int, typer.Option(help="Frames per inverse-kinematics task.")] = (
        IK_FRAMES
    ),
    out_dir: Annotated[
        Path | None,
        typer.Option(
            help="Folder for the model, motion and TRC files.", show_default="beside the store"
        ),
    ] = None,  # fmt: skip
    cluster: opt.Cluster = None,
    cluster_config: opt.ClusterConfig = None,
    workers: opt.Workers = None,
) -> None:
    """Joint angles, centre of mass, and OpenSim inverse kinematics in parallel chunks."""
    from ..kinematics import kinematics_store

    with errors():
        with tracking_progress() as progress:
            result = kinematics_store(
                store,
                group=group,
                ik=ik,
                mass=mass,
                sex=sex,
                ik_frames=ik_frames,
                out_dir=out_dir,
                cluster=opt.on(cluster, cluster_config, workers, progress=progress),
            )
    print_kinematics(result)
