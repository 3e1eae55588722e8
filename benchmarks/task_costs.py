"""Where does a mocapflow task's time go? The same ranges, three ways, on one cluster.

    python benchmarks/task_costs.py RECORDING [--tracker framestats] [--chunk-frames 240]

Runs every planned range on the same 2-worker LocalCluster as (1) decode only,
(2) decode and track (no storage), (3) the real task (decode, track, write the
region, fsync, record done), and prints the wall time of each pass.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from mocapflow import ledger
from mocapflow.cluster import Resources, size_cluster, start_cluster
from mocapflow.plan import make_plan
from mocapflow.tasks import run_chunk, track_chunk
from mocapflow.video import iter_range


def decode(spec) -> int:
    return sum(
        1 for _ in iter_range(spec.path, spec.start, spec.stop, spec.start_pts, spec.seek_pts)
    )


def track(spec, tracker) -> int:
    return track_chunk(spec, tracker)["n_decoded"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("recording", type=Path)
    ap.add_argument("--tracker", default="framestats")
    ap.add_argument("--chunk-frames", type=int, default=240)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    plan = make_plan(args.recording, args.tracker, args.chunk_frames)
    specs, trk, grid = plan.specs, plan.tracker, plan.time_chunk
    tmp = Path(tempfile.mkdtemp())
    path = str(tmp / "s.zarr")
    ledger.prepare(path, plan, overwrite=False)
    sizing = size_cluster(
        len(specs), 1, 1, Resources(args.workers, 64 * 2**30), workers=args.workers
    )
    cluster, client = start_cluster(sizing)
    try:
        client.run(lambda: None)
        passes = [
            ("decode only", decode, lambda s: (s,)),
            ("decode + track", track, lambda s: (s, trk)),
            ("decode + track + write (the real task)", run_chunk, lambda s: (s, trk, path, grid)),
        ]
        n = sum(s.n_frames for s in specs)
        print(f"{len(specs)} ranges, {n} frames, {args.workers} workers, {args.tracker}")
        for name, fn, fargs in passes:
            t = time.perf_counter()
            client.gather([client.submit(fn, *fargs(s), pure=False) for s in specs])
            dt = time.perf_counter() - t
            print(f"{name:40} {dt:6.2f} s  {n / dt:6.0f} frames/s")
    finally:
        client.close()
        cluster.close()
        shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
