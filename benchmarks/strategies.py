"""The strategies the benchmark compares, each run as its own process by ``run.py``.

    python benchmarks/strategies.py STRATEGY RECORDING TRACKER OUTDIR

process-per-video
    One ``multiprocessing.Process`` per video, all started at once; each sends
    its whole result arrays to the parent, which stacks and saves them
    (FreeMoCap's original "million processes" pattern).
pool-rule / pool-4
    ``multiprocessing.Pool`` mapping over the videos with skellytracker's rule,
    ``max(1, min(cpu_count() - 1, n_videos))`` processes, or with 4; full arrays
    return to the parent for saving, as FreeMoCap does.
mocapflow
    The real ``mocapflow.process`` path with default sizing.
mocapflow-threads
    The same with ``cluster="threads"``: the sizing's workers as threads of this
    one process.
ceiling
    Decode only (no tracker, no storage): the videos' frames split evenly over
    all cores in keyframe-aligned ranges, one decoder thread each.

Every strategy but the ceiling runs the same tracker code on the same frames
(decoded by mocapflow's reader, batches of 16). Timings go to OUTDIR/timing.json.
"""

from __future__ import annotations

import gc
import json
import math
import multiprocessing as mp
import os
import sys
import time
from pathlib import Path

import numpy as np

from mocapflow.plan import plan_chunks
from mocapflow.recording import open_recording
from mocapflow.schema import BATCH_FRAMES
from mocapflow.trackers import get_tracker
from mocapflow.video import iter_range, probe


def track_video(path: str, tracker_name: str) -> dict[str, np.ndarray]:
    """Decode a whole video in order and track it: what one baseline process does."""
    tracker = get_tracker(tracker_name)
    info = probe(path)
    parts: dict[str, list] = {name: [] for name in tracker.outputs()}
    batch = []

    def flush():
        out = tracker(np.stack(batch))
        for name in parts:
            parts[name].append(out[name])
        batch.clear()

    for frame in iter_range(path, 0, info.n_frames, int(info.pts[0]), None):
        batch.append(frame)
        if len(batch) == BATCH_FRAMES:
            flush()
    if batch:
        flush()
    return {name: np.concatenate(p) for name, p in parts.items()}


def _to_queue(path, tracker_name, queue):
    queue.put((path, track_video(path, tracker_name)))


def _pool_worker(args):
    return track_video(*args)


def save_stacked(results: list[dict], outdir: Path) -> None:
    """Stack every view's arrays (padding with NaN) and save them, as the baselines do."""
    n = max(len(next(iter(r.values()))) for r in results)
    stacked = {}
    for name in results[0]:
        arrs = []
        for r in results:
            a = r[name].astype(np.float32)
            pad = np.full((n - len(a), *a.shape[1:]), np.nan, np.float32)
            arrs.append(np.concatenate([a, pad]))
        stacked[name] = np.stack(arrs)
    np.savez(outdir / "result.npz", **stacked)


def videos_of(recording: Path) -> list[str]:
    return [str(v.path) for v in open_recording(recording).ok_views]


def process_per_video(recording, tracker, outdir):
    paths = videos_of(recording)
    queue = mp.Queue()
    procs = [mp.Process(target=_to_queue, args=(p, tracker, queue)) for p in paths]
    for p in procs:
        p.start()
    got = dict(queue.get() for _ in procs)  # drain before joining
    for p in procs:
        p.join()
    save_stacked([got[p] for p in paths], outdir)


def pool(recording, tracker, outdir, processes):
    paths = videos_of(recording)
    with mp.Pool(processes) as p:
        results = p.map(_pool_worker, [(path, tracker) for path in paths])
    save_stacked(results, outdir)


def skellytracker_rule(n_videos: int) -> int:
    return max(1, min((os.cpu_count() or 1) - 1, n_videos))


def run_mocapflow(recording, tracker, outdir, cluster: str | None = None) -> dict:
    import mocapflow

    events = {}
    res = mocapflow.process(
        recording,
        tracker,
        outdir / "s.zarr",
        cluster=mocapflow.ClusterOptions(
            profile=cluster, on_event=lambda kind, info: events.setdefault(kind, time.time())
        ),
        report=False,
    )
    # Wall-clock time when the cluster was ready: run.py subtracts its launch time.
    return {"cluster_ready_epoch": events["start"], "workers": res.sizing["workers"]}


def _decode_ranges(ranges) -> int:
    n = 0
    for path, a, b, start_pts, seek_pts in ranges:
        for _ in iter_range(path, a, b, start_pts, seek_pts, threads=1):
            n += 1
    return n


def ceiling(recording, outdir) -> dict:
    import cv2

    cv2.setNumThreads(1)
    rec = open_recording(recording)
    cores = len(os.sched_getaffinity(0))
    total = sum(v.info.n_frames for v in rec.ok_views)
    specs = plan_chunks(rec, max(1, math.ceil(total / cores / 2)))
    loads = [[] for _ in range(cores)]
    frames = [0] * cores
    for s in sorted(specs, key=lambda s: -s.n_frames):  # longest first onto the least loaded
        i = int(np.argmin(frames))
        loads[i].append((s.path, s.start, s.stop, s.start_pts, s.seek_pts))
        frames[i] += s.n_frames
    with mp.get_context("spawn").Pool(cores) as p:
        decoded = sum(p.map(_decode_ranges, loads))
    assert decoded == total, (decoded, total)
    return {"processes": cores}


def main() -> None:
    strategy, recording, tracker, outdir = sys.argv[1:5]
    recording, outdir = Path(recording), Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    extra: dict = {}
    if strategy == "process-per-video":
        process_per_video(recording, tracker, outdir)
    elif strategy == "pool-rule":
        n = skellytracker_rule(len(videos_of(recording)))
        pool(recording, tracker, outdir, n)
        extra["processes"] = n
    elif strategy == "pool-4":
        pool(recording, tracker, outdir, 4)
    elif strategy == "mocapflow":
        extra = run_mocapflow(recording, tracker, outdir)
    elif strategy == "mocapflow-threads":
        extra = run_mocapflow(recording, tracker, outdir, cluster="threads")
    elif strategy == "ceiling":
        extra = ceiling(recording, outdir)
    else:
        raise SystemExit(f"unknown strategy {strategy}")
    extra["inner_wall_s"] = time.perf_counter() - t0
    (outdir / "timing.json").write_text(json.dumps(extra))
    gc.freeze()  # exit as the mocapflow command does, whatever the strategy (see cli.run)


if __name__ == "__main__":
    main()
