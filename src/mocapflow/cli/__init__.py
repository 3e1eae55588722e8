"""The ``mocapflow`` command: a thin layer over the Python API.

``app``          the Typer app, global options, logging and error handling
``options``      every shared option, declared once with its default
``console``      what the terminal shows: the progress bar and the tables
``tracking``     process, batch, info, synth, cluster show, demo
``reconstruct``  calibrate, triangulate, filter, export, run
``kinematics``   kinematics
``render``       render
"""

import gc

from . import kinematics, reconstruct, render, tracking  # noqa: F401  (registers the commands)
from .app import app

__all__ = ["app", "run"]


def run(args: list[str] | None = None, prog_name: str = "mocapflow") -> None:
    """Run the command (what :func:`mocapflow.__main__.main` calls).

    When the command is done, everything still alive is frozen out of the
    garbage collector (:func:`gc.freeze`). The interpreter's exit then skips
    its last full collections over the hundreds of thousands of objects that
    Dask, xarray, bokeh and the trackers leave behind, which took about 0.5 s
    of every command. Exit handlers still run and the streams are still
    flushed; only the finalizers of objects caught in reference cycles are
    skipped, which Python never promises to run at exit.

    Parameters
    ----------
    args : list of str, optional
        The command's arguments; default the command line's.
    prog_name : str
        The name its help and errors show.

    """
    try:
        app(args, prog_name=prog_name)
    finally:
        gc.freeze()
