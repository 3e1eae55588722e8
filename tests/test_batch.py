"""Scheduled batch runs: skip what is done, redo what changed, never twice at once."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

EXE = str(Path(sys.executable).with_name("mocapflow"))
FLOW = Path(__file__).resolve().parents[1] / "flows" / "batch.py"
HELPERS = Path(__file__).resolve().parent / "helpers"


@pytest.fixture()
def root(markers_recording, tmp_path) -> Path:
    """Three recordings at different depths, FreeMoCap and flat layouts."""
    src = markers_recording / "synchronized_videos"
    shutil.copytree(src, tmp_path / "lab" / "2026-11-01" / "s1" / "synchronized_videos")
    shutil.copytree(src, tmp_path / "lab" / "2026-11-02" / "s2" / "synchronized_videos")
    flat = tmp_path / "other" / "s3"
    flat.mkdir(parents=True)
    for v in sorted(src.glob("*.mp4"))[:2]:
        shutil.copy(v, flat / v.name)
    return tmp_path


def batch(root: Path, *extra: str) -> tuple[subprocess.CompletedProcess, list[dict]]:
    proc = subprocess.run(
        [EXE, "batch", str(root), "-t", "framestats", "--chunk-frames", "45", *extra],
        capture_output=True,
        text=True,
        timeout=600,
    )
    lines = (root / "mocapflow-batch.jsonl").read_text().splitlines()
    return proc, [json.loads(x) for x in lines]


def test_second_run_does_nothing_and_a_touched_video_changes_nothing(root):
    first, log = batch(root)
    assert first.returncode == 0, first.stderr
    assert sorted(r["action"] for r in log) == ["processed"] * 3
    second, log = batch(root)
    assert second.returncode == 0
    assert [r["action"] for r in log[3:]] == ["skipped"] * 3
    assert all(r["seconds"] < 1.0 for r in log[3:])  # a few stats and one JSON read each
    video = root / "lab" / "2026-11-02" / "s2" / "synchronized_videos" / "cam3.mp4"
    os.utime(video, (video.stat().st_atime, video.stat().st_mtime + 60))
    third, log = batch(root)
    assert third.returncode == 0, third.stderr
    assert [r["action"] for r in log[6:]] == ["skipped"] * 3  # same bytes, same input


def test_the_flow_s_workers_do_not_load_the_command_line(root):
    """Each worker re-runs flows/batch.py first (spawn), which loads no command line there.

    The probe tracker raises in a worker that imported Typer, Rich or mocapflow.cli.
    """
    proc = subprocess.run(
        [sys.executable, str(FLOW), str(root), "-t", "workerprobe:NoCommandLine"],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PYTHONPATH": str(HELPERS)},
    )
    assert proc.returncode == 0, proc.stderr
    log = [json.loads(x) for x in (root / "mocapflow-batch.jsonl").read_text().splitlines()]
    assert [r["action"] for r in log] == ["processed"] * 3
    assert all(set(r["views"].values()) == {"ok"} for r in log)


def test_concurrent_runs_never_process_one_recording_twice(root):
    procs = [
        subprocess.Popen(
            [sys.executable, str(FLOW), str(root), "-t", "framestats", "--chunk-frames", "45"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    for p in procs:
        p.communicate(timeout=600)
        assert p.returncode == 0
    log = [json.loads(x) for x in (root / "mocapflow-batch.jsonl").read_text().splitlines()]
    processed = [r["recording"] for r in log if r["action"] == "processed"]
    assert sorted(processed) == sorted(set(processed)) and len(processed) == 3
    assert len(log) == 6  # every recording reported by both runs


def test_a_corrupt_recording_is_reported_and_the_rest_finish(root):
    bad = root / "lab" / "2026-11-01" / "s1" / "synchronized_videos"
    for v in bad.glob("*.mp4"):
        v.write_text("not a video")
    proc, log = batch(root)
    assert proc.returncode == 1
    by = {Path(r["recording"]).name: r for r in log}
    assert (
        by["s1"]["action"] == "failed" and "none of the 4 videos can be read" in by["s1"]["error"]
    )
    assert by["s2"]["action"] == by["s3"]["action"] == "processed"
    assert by["s2"]["views"] == {f"cam{i}": "ok" for i in range(1, 5)}


def test_a_stale_lock_is_taken_over(root):
    rec = root / "other" / "s3"
    (rec / ".mocapflow.zarr.lock").write_text("process 999999 on somehost\n")  # long gone
    proc, log = batch(root)
    assert proc.returncode == 0 and {r["action"] for r in log} == {"processed"}
