"""The ``mocapflow`` command: a thin layer over the Python API.

``app``          the Typer app, global options, logging and error handling
``options``      every shared option, declared once with its default
``render``       the progress bar and the tables
``tracking``     process, batch, info, synth, cluster show, demo
``reconstruct``  calibrate, triangulate, filter, export, run
"""

from . import reconstruct, tracking  # noqa: F401  (registers the commands)
from .app import app

__all__ = ["app", "run"]


def run() -> None:  # pragma: no cover - console entry point alias
    """Entry point for ``python -m mocapflow``."""
    app(prog_name="mocapflow")
