"""How long ``mocapflow sync`` takes, against the tracking it follows.

    python benchmarks/sync.py [--views 16] [--frames 1800] [--size 320x240] [--skip-sample]

Two stores, each tracked by ``mocapflow process`` and then synced by
``mocapflow sync -c CALIBRATION`` (motion, the epipolar score; whole commands,
start-up included), timed side by side in one run:

* ``sample``: the real one-person sample (4 views, 100 frames of 1080x1920 at
  60 fps) re-encoded without the first 0, 7, 3 and 11 frames of its views, as
  ``tests/test_sync.py`` does, tracked with MediaPipe;
* ``synthetic``: a markers render of ``--views`` cameras and ``--frames`` frames
  (``--size``, 30 fps) whose cameras start at seeded random whole frames 0-30
  after the first (``synthesize(starts=...)``), tracked with the markers
  tracker, which is far cheaper than a pose model: the ratio is the worst case.

``sync`` reads only the store (its 2-D tracks), never the videos. No peer is
timed: Pose2Sim's ``synchronization.py`` needs its own project layout and an
interactive choice of keypoints and time range, and runs on its JSON files.

Results: docs/benchmark-sync.json and docs/benchmark-sync.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "tests"))
EXE = str(Path(sys.executable).with_name("mocapflow"))
SAMPLE = REPO / "samples" / "pose2sim_single_person"
CUTS = {"cam01": 0, "cam02": 7, "cam03": 3, "cam04": 11}


def timed(*args) -> float:
    """Run a mocapflow command; return its wall time (s)."""
    t0 = time.perf_counter()
    proc = subprocess.run(
        [EXE, *map(str, args)],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    seconds = time.perf_counter() - t0
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(map(str, args))} failed:\n{proc.stderr}")
    return seconds


def offsets_of(store: Path) -> dict:
    from mocapflow.sync import read_sync

    return read_sync(store).get("offsets", {})


def case(name, store, calibration, track_args, truth) -> dict:
    tracking = timed("process", *track_args, "--out", store)
    syncing = timed("sync", store, "-c", calibration)
    found = offsets_of(store)
    return {
        "case": name,
        "tracking_s": round(tracking, 2),
        "sync_s": round(syncing, 2),
        "sync_over_tracking": round(syncing / tracking, 4),
        "offsets": found,
        "truth": truth,
        "exact": all(found.get(v) == k for v, k in truth.items()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--views", type=int, default=16)
    parser.add_argument("--frames", type=int, default=1800)
    parser.add_argument("--size", default="320x240")
    parser.add_argument("--skip-sample", action="store_true")
    args = parser.parse_args()
    from helpers.cut import cut_recording
    from mocapflow.synthetic import TRUE_CALIBRATION, synthesize

    results = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if not args.skip_sample:
            rec = cut_recording(SAMPLE, tmp / "sample", CUTS)
            track = [rec, "-t", "mediapipe", "-p", "max_people=1"]
            truth = {"cam02": 7.0, "cam04": 11.0}  # cam03: the sample's own -2 frames too
            results.append(case("sample", tmp / "s.zarr", SAMPLE / "Calib.qca.txt", track, truth))
        rng = np.random.default_rng(5)
        starts = [0, *rng.integers(0, 31, args.views - 1).tolist()]
        width, height = map(int, args.size.split("x"))
        t0 = time.perf_counter()
        synth = synthesize(
            tmp / "synth",
            kind="markers",
            cameras=args.views,
            frames=args.frames,
            size=(width, height),
            seed=5,
            starts=starts,
        )
        render = time.perf_counter() - t0
        names = [c.name for c in synth.cameras]
        truth = {n: float(k) for n, k in zip(names, starts, strict=True)}
        track = [tmp / "synth", "-t", "markers"]
        row = case("synthetic", tmp / "m.zarr", tmp / "synth" / TRUE_CALIBRATION, track, truth)
        row["render_s"] = round(render, 1)
        results.append(row)
        shutil.rmtree(tmp / "synth", ignore_errors=True)
    out = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}",
        "views": args.views,
        "frames": args.frames,
        "size": args.size,
        "results": results,
    }
    (REPO / "docs" / "benchmark-sync.json").write_text(json.dumps(out, indent=2) + "\n")
    lines = [
        "# mocapflow sync: time against tracking",
        "",
        f"{out['date']}, {out['machine']}; `python benchmarks/sync.py`.",
        "",
        "| store | tracking (s) | sync (s) | sync / tracking | offsets exact |",
        "|---|---|---|---|---|",
    ]
    for r in results:
        label = (
            "real sample, 4 views x 100 frames, MediaPipe"
            if r["case"] == "sample"
            else f"synthetic, {args.views} views x {args.frames} frames, markers"
        )
        lines.append(
            f"| {label} | {r['tracking_s']} | {r['sync_s']} | {r['sync_over_tracking']:.1%} "
            f"| {'yes' if r['exact'] else 'no: ' + json.dumps(r['offsets'])} |"
        )
    (REPO / "docs" / "benchmark-sync.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
