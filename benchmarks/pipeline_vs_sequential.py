"""mocapflow against the plain loop: decode and track every video in turn, in one process.

Both run in this process on the same synthetic recording. mocapflow's time is
split into cluster start-up and tracking (the progress of its own run).

    python benchmarks/pipeline_vs_sequential.py [--cameras 4] [--frames 600]
        [--size 640x480] [--tracker markers] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

import mocapflow
from mocapflow.trackers import get_tracker
from mocapflow.video import iter_range, probe


def sequential(recording: Path, tracker: str) -> float:
    trk = get_tracker(tracker)
    t0 = time.perf_counter()
    for video in sorted((recording / "synchronized_videos").iterdir()):
        info = probe(video)
        batch = []
        for frame in iter_range(video, 0, info.n_frames, int(info.pts[0]), None):
            batch.append(frame)
            if len(batch) == 16:
                trk(np.stack(batch))
                batch.clear()
        if batch:
            trk(np.stack(batch))
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cameras", type=int, default=4)
    ap.add_argument("--frames", type=int, default=600)
    ap.add_argument("--size", default="640x480")
    ap.add_argument("--tracker", default="markers")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    w, h = (int(x) for x in args.size.split("x"))
    with tempfile.TemporaryDirectory() as tmp:
        rec = Path(tmp) / "rec"
        mocapflow.synthesize(rec, cameras=args.cameras, frames=args.frames, size=(w, h), seed=1)
        cv2.setNumThreads(0)
        sequential(rec, args.tracker)  # warm-up: file cache, imports
        t_seq = sequential(rec, args.tracker)
        events = {}
        t0 = time.perf_counter()
        res = mocapflow.process(
            rec,
            args.tracker,
            Path(tmp) / "s.zarr",
            report=False,
            cluster=mocapflow.ClusterOptions(
                on_event=lambda kind, info: events.setdefault(kind, time.perf_counter())
            ),
        )
        t_total = time.perf_counter() - t0
        t_start = events["start"] - t0
    n = args.cameras * args.frames
    out = {
        "workload": f"{args.cameras} x {args.frames} frames, {args.size} H.264, {args.tracker}",
        "sequential_s": t_seq,
        "mocapflow_total_s": t_total,
        "mocapflow_startup_s": t_start,
        "mocapflow_tracking_s": t_total - t_start,
        "workers": res.sizing["workers"],
        "speedup_excluding_startup": t_seq / (t_total - t_start),
        "speedup_including_startup": t_seq / t_total,
    }
    print(f"workload: {out['workload']} ({n} frames), {out['workers']} workers")
    print(f"sequential loop      {t_seq:6.2f} s  {n / t_seq:6.0f} frames/s")
    print(
        f"mocapflow (tracking) {t_total - t_start:6.2f} s  {n / (t_total - t_start):6.0f} frames/s"
        f"  x{out['speedup_excluding_startup']:.2f}"
    )
    print(
        f"mocapflow (total)    {t_total:6.2f} s  start-up {t_start:.2f} s"
        f"  x{out['speedup_including_startup']:.2f}"
    )
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
