"""The live monitor: the dashboard names tasks by stage and view and shows real progress.

A real run, watched through the dashboard's own HTTP server while it goes on:
its Prometheus page (the counts the progress panels draw from) and, where
Debian's Chromium is installed, a screenshot of the status page in a real
headless browser.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from mocapflow import ledger

EXE = str(Path(sys.executable).with_name("mocapflow"))
HELPERS = Path(__file__).resolve().parent / "helpers"


def _dashboard(proc) -> str:
    for line in proc.stderr:
        if line.startswith("dashboard: "):
            return line.split()[1].removesuffix("/status")
    raise AssertionError("no dashboard line")


def _finished_per_prefix(base: str) -> dict[str, float]:
    text = urllib.request.urlopen(f"{base}/metrics", timeout=10).read().decode()
    out: dict[str, float] = {}
    pattern = r'dask_scheduler_prefix_state_totals_total\{state="memory",task_prefix_name="([^"]+)"\} ([0-9.e+]+)'  # noqa: E501
    for name, value in re.findall(pattern, text):
        out[name] = float(value)
    return out


def test_the_dashboard_shows_progress_per_view(recording_copy, tmp_path):
    pytest.importorskip("prometheus_client")
    store = tmp_path / "s.zarr"
    proc = subprocess.Popen(
        [EXE, "process", recording_copy, "-t", "slowtrack:Slow", "-p", "delay=0.02",
         "--out", store, "--chunk-frames", "15", "--workers", "1", "--no-report",
         "--dashboard", "127.0.0.1:0"],
        env={**os.environ, "PYTHONPATH": str(HELPERS)},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    try:
        base = _dashboard(proc)
        folder = store / ledger.LEDGER_GROUP / "chunks"
        while not folder.is_dir() or len(list(folder.glob("*.json"))) < 4:
            assert proc.poll() is None
            time.sleep(0.05)
        done_before = len(list(folder.glob("*.json")))
        finished = _finished_per_prefix(base)
        tracked = {k: v for k, v in finished.items() if k.startswith("track_cam")}
        assert tracked, finished  # tasks are named by stage and view
        assert sum(tracked.values()) >= done_before > 0  # finished tasks count as finished
        chromium = shutil.which("chromium") or shutil.which("chromium-browser")
        if chromium:
            shot = tmp_path / "status.png"
            subprocess.run(
                [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", f"--user-data-dir={tmp_path / 'chrome'}",
                 "--window-size=1400,900", "--virtual-time-budget=4000",
                 f"--screenshot={shot}", f"{base}/status"],
                capture_output=True, timeout=120,
            )  # fmt: skip
            from PIL import Image

            image = Image.open(shot).convert("RGB")
            colours = len(image.getcolors(maxcolors=1 << 24))
            assert colours > 50, "the status page rendered blank"
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        proc.communicate(timeout=120)
    if not chromium:
        pytest.skip("progress checked; Debian's chromium is not installed for the screenshot")
