"""A tracker that fails in a process that loaded the command line.

Used as ``--tracker workerprobe:NoCommandLine`` with ``PYTHONPATH`` holding this
folder: ``framestats``, except that it raises in a worker that imported Typer,
Rich or :mod:`mocapflow.cli` (which a worker never uses).
"""

import sys

from mocapflow.trackers import get_tracker

COMMAND_LINE = ("typer", "rich", "mocapflow.cli")  # not click: distributed itself loads it


class NoCommandLine:
    """framestats, run only where the command line was not loaded."""

    name = "no-command-line"

    def __init__(self):
        self._inner = get_tracker("framestats")

    def params(self) -> dict:
        return {}

    def outputs(self):
        return self._inner.outputs()

    def __call__(self, frames):
        loaded = [m for m in COMMAND_LINE if m in sys.modules]
        if loaded:
            raise RuntimeError(f"this worker loaded the command line: {', '.join(loaded)}")
        return self._inner(frames)
