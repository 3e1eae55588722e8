"""A tracker that takes its time, so a test can act while a run is going on.

Used as ``--tracker slowtrack:Slow`` with ``PYTHONPATH`` holding this folder:
any built-in tracker (``-p inner=markers``), plus ``delay`` seconds per frame.
"""

import time

from mocapflow.trackers import get_tracker


class Slow:
    """A built-in tracker, slowed down."""

    name = "slow"

    def __init__(self, delay: float = 0.05, inner: str = "framestats"):
        self.delay = float(delay)
        self.inner = inner
        self._inner = get_tracker(inner)

    def params(self) -> dict:
        return {"delay": self.delay, "inner": self.inner}

    def outputs(self):
        return self._inner.outputs()

    def __call__(self, frames):
        time.sleep(self.delay * len(frames))
        return self._inner(frames)
