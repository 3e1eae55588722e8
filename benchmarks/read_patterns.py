"""How should a task read its frame range? Measure the options side by side.

Writes a 1280x720 H.264 video (B-frames, keyframe every 120 frames) with
mocapflow's writer, then reads all of it with one decoder thread in several
patterns, checking each against OpenCV's sequential read and timing it.

    python benchmarks/read_patterns.py [--frames 600] [--repeat 5] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ["OPENCV_FFMPEG_THREADS"] = "1"  # one decoder thread, as in a worker

import cv2  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from conftest import moving_pattern  # noqa: E402
from mocapflow.plan import plan_chunks  # noqa: E402
from mocapflow.recording import open_recording  # noqa: E402
from mocapflow.video import VideoWriter, iter_range, probe  # noqa: E402


def cv2_sequential(path):
    cap = cv2.VideoCapture(str(path))
    out = []
    while True:
        ok, f = cap.read()
        if not ok:
            return out
        out.append(f)


def cv2_seek_chunks(path, n, chunk):
    out = []
    for a in range(0, n, chunk):
        cap = cv2.VideoCapture(str(path))
        cap.set(cv2.CAP_PROP_POS_FRAMES, a)
        for _ in range(min(chunk, n - a)):
            ok, f = cap.read()
            if not ok:
                break
            out.append(f)
        cap.release()
    return out


def pyav_ranges(path, ranges):
    info = probe(path)
    out = []
    for a, b in ranges:
        key = info.keyframe_before(a)
        out.extend(iter_range(path, a, b, int(info.pts[a]), int(info.pts[key]), threads=1))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=600)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    cv2.setNumThreads(1)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "cam1.mp4"
        frames = moving_pattern(args.frames, size=(1280, 720))
        with VideoWriter(path, 30, "h264", gop=120) as w:
            for f in frames:
                w.write(f)
        n = args.frames
        planned = [(s.start, s.stop) for s in plan_chunks(open_recording(tmp), 240)]
        patterns = {
            "cv2, sequential": lambda: cv2_sequential(path),
            "cv2, seek then read, chunks of 60": lambda: cv2_seek_chunks(path, n, 60),
            "cv2, seek then read, chunks of 240": lambda: cv2_seek_chunks(path, n, 240),
            "PyAV, whole video in one pass": lambda: pyav_ranges(path, [(0, n)]),
            "PyAV, keyframe seek, chunks of 60": lambda: pyav_ranges(
                path, [(a, min(a + 60, n)) for a in range(0, n, 60)]
            ),
            "PyAV, keyframe seek, mocapflow's plan (240)": lambda: pyav_ranges(path, planned),
        }
        oracle = cv2_sequential(path)
        rows = []
        for name, fn in patterns.items():
            fn()  # warm the file cache and the libraries
            times = []
            for _ in range(args.repeat):  # best of N: this machine is shared and noisy
                t0 = time.perf_counter()
                got = fn()
                times.append(time.perf_counter() - t0)
            dt = min(times)
            exact = len(got) == len(oracle) and all(
                np.array_equal(a, b) for a, b in zip(got, oracle, strict=True)
            )
            rows.append({"pattern": name, "fps": len(got) / dt, "exact": exact})
    base = rows[0]["fps"]
    print(f"{'read pattern':48} {'frames/s':>9} {'vs cv2 seq':>10}  exact")
    for r in rows:
        r["ratio"] = r["fps"] / base
        print(f"{r['pattern']:48} {r['fps']:9.0f} {r['ratio']:10.2f}  {r['exact']}")
    print(f"planned tasks: {planned}")
    if args.json:
        args.json.write_text(json.dumps({"frames": n, "plan": planned, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
