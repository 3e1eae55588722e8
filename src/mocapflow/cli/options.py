"""Every option that more than one command takes, declared once.

Defaults come from :mod:`mocapflow.schema`; a command writes
``tracker: Tracker = DEFAULT_TRACKER`` and so shows and uses the same default
as every other command. Where a default is computed (a path beside the
recording, a sized worker count), ``show_default`` says so in words.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..errors import UsageError
from ..export import FORMATS, NATIVE_FORMATS
from ..schema import DASHBOARD_ADDRESS, FilterSettings, TriangulationSettings
from ..trackers import available

__all__ = [
    "BOARD_HELP",
    "ChunkFrames",
    "Cluster",
    "ClusterConfig",
    "Cutoff",
    "Dashboard",
    "Formats",
    "MaxError",
    "MaxGap",
    "MinConfidence",
    "MinViews",
    "Offsets",
    "Order",
    "Out",
    "Overwrite",
    "Params",
    "Report",
    "SwapLR",
    "Tracker",
    "Workers",
    "filter_settings",
    "formats",
    "params",
    "triangulation_settings",
]

BOARD_HELP = (
    "The board: a board.toml (or caliscope's charuco.toml), and/or parameters NAME=VALUE: "
    "type (charuco, checkerboard), squares_x, squares_y, square_length (mm), marker_ratio, "
    "dictionary, legacy, inverted; corners_x, corners_y for a checkerboard."
)

Offsets = Annotated[
    list[str] | None,
    typer.Option(
        "--offset",
        help="A view's time offset by hand, VIEW=FRAMES (repeatable): frame i of VIEW shows "
        "the reference's frame i + FRAMES (a view started k frames late has +k).",
        show_default=False,
    ),
]
Tracker = Annotated[
    str,
    typer.Option(
        "--tracker",
        "-t",
        help=f"{', '.join(available())}, or package.module:factory.",
    ),
]
Params = Annotated[
    list[str] | None,
    typer.Option(
        "--param", "-p", help="Tracker parameter NAME=VALUE (repeatable).", show_default=False
    ),
]
Out = Annotated[
    Path | None,
    typer.Option("--out", "-o", help="The Zarr store.", show_default="RECORDING/mocapflow.zarr"),
]
ChunkFrames = Annotated[int, typer.Option(help="Frames per task.")]
Workers = Annotated[
    int | None,
    typer.Option(
        help="Worker processes (worker threads with --cluster threads).",
        show_default="sized to the machine and the work",
    ),
]
Cluster = Annotated[
    str | None,
    typer.Option(
        help="Profile in the cluster profiles file; built in: local, and threads (worker "
        "threads in this process: quicker start, half the memory).",
        show_default="its default, local",
    ),
]
ClusterConfig = Annotated[
    Path | None,
    typer.Option(help="Cluster profiles file.", show_default="./cluster.yaml if present"),
]
Dashboard = Annotated[
    str | None,
    typer.Option(help="Dashboard host:port.", show_default=f"the profile's, {DASHBOARD_ADDRESS}"),
]
Report = Annotated[bool, typer.Option(help="Save a performance report beside the store.")]
IK = Annotated[
    bool | None,
    typer.Option(
        "--ik/--no-ik",
        help="OpenSim inverse kinematics (needs the opensim extra).",
        show_default="when opensim is installed",
    ),
]
Mass = Annotated[
    float | None,
    typer.Option(help="The person's mass, kg: segment masses.", show_default="70 in the model"),
]
Sex = Annotated[str, typer.Option(help="de Leva's table: male or female.")]
Overwrite = Annotated[
    bool, typer.Option(help="Replace a store made from other inputs, and its 3-D groups.")
]
MinViews = Annotated[int, typer.Option(help="Fewest views per 3-D point.")]
MinConfidence = Annotated[float, typer.Option(help="Leave out 2-D points under this confidence.")]
MaxError = Annotated[
    float | None,
    typer.Option(
        help="Reject views, point by point, while the reprojection error is over this (px).",
        show_default="1% of the image diagonal",
    ),
]
SwapLR = Annotated[bool, typer.Option(help="Undo single views' left/right label swaps.")]
People = Annotated[
    str,
    typer.Option(
        help="People to keep in 3-D, best supported first: a number, or all (one file each).",
    ),
]
MaxGap = Annotated[int, typer.Option(help="Fill gaps up to this many frames.")]
Cutoff = Annotated[float, typer.Option(help="Low-pass cut-off, Hz.")]
Order = Annotated[int, typer.Option(help="Butterworth filter order.")]
Formats = Annotated[
    str,
    typer.Option("--format", "-f", help=f"Comma-separated, any of {', '.join(FORMATS)}."),
]

#: Defaults, taken from the one place they are declared.
TRIANGULATION = TriangulationSettings()
FILTER = FilterSettings()
ALL_FORMATS = ",".join(NATIVE_FORMATS)


def params(pairs: list[str] | None, option: str = "--param") -> dict:
    """Parse ``NAME=VALUE`` pairs; the values stay text, typed by the tracker's signature.

    See :mod:`mocapflow.trackers.params`: ``010`` is ten and ``maybe`` is not a bool.
    """
    out = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            example = "squares_x=7" if option == "--board" else "n_markers=8"
            raise UsageError(f"{option} {pair!r}: write it as NAME=VALUE, e.g. {example}")
        out[key.strip()] = value.strip()
    return out


def board(values: list[str] | None) -> dict | None:
    """Parse ``--board``: a board file, then ``NAME=VALUE`` pairs overriding it."""
    from ..calib.boards import read_board

    files = [v for v in values or [] if "=" not in v and (v.endswith(".toml") or Path(v).is_file())]
    if len(files) > 1:
        raise UsageError(f"--board: give one board file, not {', '.join(files)}")
    spec = read_board(files[0]) if files else {}
    pairs = params([v for v in values or [] if v not in files], "--board")
    return {**spec, **pairs} if (spec or pairs) else None


def formats(text: str) -> tuple[str, ...]:
    """Parse ``csv,trc`` (repeats and spaces allowed) into known formats."""
    from ..export import formats as known_formats

    names = tuple(dict.fromkeys(f.strip() for f in text.split(",") if f.strip()))
    known = known_formats()
    unknown = [f for f in names if f not in known]
    if unknown or not names:
        raise UsageError(f"--format {text!r}: choose from {', '.join(known)} (comma-separated)")
    return names


def triangulation_settings(
    min_views, min_confidence, max_error, swap_lr, people: str = "1"
) -> TriangulationSettings:
    """Build the settings from the options (checked where they are declared)."""
    return TriangulationSettings(min_views, min_confidence, max_error, swap_lr, people_of(people))


def people_of(text: str) -> int | None:
    """``--people``: a whole number, 1 or more, or ``all`` (None)."""
    if text.strip().lower() == "all":
        return None
    try:
        number = int(text)
    except ValueError:
        number = 0
    if number < 1:
        raise UsageError(
            f"--people {text}: give a whole number, 1 or more, or all; the default is 1"
        )
    return number


def filter_settings(max_gap, cutoff, order) -> FilterSettings:
    """Build the settings from the options (checked where they are declared)."""
    return FilterSettings(max_gap, cutoff, order)


def on(cluster, cluster_config, workers=None, dashboard=None, progress=None):
    """Return the one cluster handle of a command's options (see ClusterOptions)."""
    from ..cluster.session import ClusterOptions

    return ClusterOptions(
        profile=cluster,
        config=cluster_config,
        workers=workers,
        dashboard_address=dashboard,
        on_event=progress,
    )
