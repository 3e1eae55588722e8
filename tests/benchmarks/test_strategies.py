"""The benchmark's baselines compute what mocapflow computes (same tracker, same frames)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

STRATEGIES = Path(__file__).resolve().parents[2] / "benchmarks" / "strategies.py"


def run(strategy, recording, tracker, out):
    proc = subprocess.run(
        [sys.executable, str(STRATEGIES), strategy, str(recording), tracker, str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads((out / "timing.json").read_text())


@pytest.mark.parametrize("tracker", ["framestats", "markers"])
def test_baselines_match_mocapflow(markers_recording, tmp_path, tracker):
    run("mocapflow", markers_recording, tracker, tmp_path / "m")
    ds = xr.open_zarr(tmp_path / "m" / "s.zarr", consolidated=False)
    for strategy in ("process-per-video", "pool-rule", "pool-4"):
        run(strategy, markers_recording, tracker, tmp_path / strategy)
        got = np.load(tmp_path / strategy / "result.npz")
        for name in got.files:
            np.testing.assert_array_equal(got[name], ds[name].values, err_msg=f"{strategy} {name}")


def test_ceiling_decodes_every_frame(markers_recording, tmp_path):
    timing = run("ceiling", markers_recording, "framestats", tmp_path / "c")
    assert timing["processes"] >= 1  # it asserts itself that every frame was decoded
