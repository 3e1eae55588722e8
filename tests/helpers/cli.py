"""Run the installed ``mocapflow`` command as a user does, on a wide terminal."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

EXE = str(Path(sys.executable).with_name("mocapflow"))


def mocapflow(*args, ok=(0,), timeout: int = 600, cwd=None) -> subprocess.CompletedProcess:
    """Run ``mocapflow ARGS`` (in ``cwd``); assert its exit code is one of ``ok``; return it."""
    proc = subprocess.run(
        [EXE, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        env={**os.environ, "COLUMNS": "300"},  # tables and lines unwrapped
    )
    assert proc.returncode in ok, proc.stderr
    return proc


def one_line(text: str) -> str:
    """Collapse whitespace, so a message reads the same however it was wrapped."""
    return " ".join(text.split())
