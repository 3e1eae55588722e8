"""Rendering annotated videos: mocapflow's chunked render against skellytracker's, side by side.

    python benchmarks/render.py [--workers 1,2] [--copies 4] [--chunk-frames 30]

Two recordings, made of the real one-person sample (4 views x 100 frames of
1080x1920, 60 fps): the sample itself, and 16 views (its 4 videos each linked
``--copies`` times, with its Qualisys cameras copied under the new names). Each
is run once (``mocapflow run``: tracked, triangulated, filtered). Then, side by
side in one run on the same videos:

* ``skellytracker``: skellytracker 2025.10.1024's ``process_video`` with its
  MediaPipe Holistic tracker and its annotated video written, in its own venv
  (``peers/skelly_annotate.py``), timed inside its process by phase: decoding,
  tracking, drawing (``annotate_image``) and writing (``VideoHandler``, OpenCV's
  ``mp4v``). Its annotated video is a side product of tracking: the frames are
  decoded once for both. ``draw + write`` is its cost on top of tracking,
  ``decode + draw + write`` what a pass that only draws costs;
* ``mocapflow``: ``mocapflow render STORE --workers N``, the whole command
  (cluster start, projection, decoding, drawing, H.264 encoding, the join),
  wall-clock, at each ``--workers``.

The rendered videos are checked against their sources (frame count, size).
Results: docs/benchmark-render.json and docs/benchmark-render.md.
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

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
SAMPLE = REPO / "samples" / "pose2sim_single_person"
EXE = str(Path(sys.executable).with_name("mocapflow"))
sys.path.insert(0, str(HERE))


def _recording(root: Path, copies: int) -> tuple[Path, Path]:
    """Link the sample's videos ``copies`` times; return the folder and its calibration."""
    from mocapflow.calib.formats import read_qca, write_toml

    videos = sorted((SAMPLE / "synchronized_videos").glob("*.mp4"))
    cameras = read_qca(SAMPLE / "Calib.qca.txt")
    folder = root / "synchronized_videos"
    folder.mkdir(parents=True)
    out = []
    for _ in range(copies):
        for v in videos:
            name = f"cam{len(out) + 1:02d}"
            (folder / f"{name}.mp4").symlink_to(v)
            cam = cameras[v.stem]
            out.append(type(cam)(name, cam.size, cam.matrix, cam.distortions, cam.rotation,
                                 cam.translation))  # fmt: skip
    calib = write_toml(root / "calibration.toml", out, {"up_axis": "+z"})
    return folder, calib


def _run(cmd: list[str]) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return time.perf_counter() - t


def main() -> None:
    """Run the benchmark and write its results."""
    from peers import venvs

    from mocapflow.video import probe

    ap = argparse.ArgumentParser()
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--copies", type=int, default=4)
    ap.add_argument("--chunk-frames", type=int, default=30)
    args = ap.parse_args()
    workers = [int(w) for w in args.workers.split(",")]
    skelly = str(venvs.python("skellytracker"))
    tmp = Path(tempfile.mkdtemp(prefix="render-bench-"))
    rows = []
    try:
        for label, copies in (("sample, 4 views", 1), (f"{4 * args.copies} views", args.copies)):
            root = tmp / f"rec{copies}"
            folder, calib = _recording(root, copies)
            store = root / "mocapflow.zarr"
            subprocess.run([EXE, "run", str(root), "-c", str(calib), "-f", "npy"], check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
            frames = sum(probe(v).n_frames for v in folder.glob("*.mp4"))
            row = {"recording": label, "views": 4 * copies, "frames": frames}
            phases = tmp / f"skelly{copies}.json"
            t = _run([skelly, str(HERE / "peers" / "skelly_annotate.py"), str(folder),
                      str(tmp / f"skelly{copies}"), str(phases)])  # fmt: skip
            row["skellytracker"] = {**json.loads(phases.read_text()), "command_s": t}
            for w in workers:
                out = tmp / f"mf{copies}-{w}"
                t = _run([EXE, "render", str(store), "--out", str(out), "--workers", str(w),
                          "--chunk-frames", str(args.chunk_frames)])  # fmt: skip
                for v in folder.glob("*.mp4"):
                    got, want = probe(out / v.name), probe(v)
                    assert (got.n_frames, got.width, got.height) == (
                        want.n_frames, want.width, want.height)  # fmt: skip
                row[f"mocapflow_{w}"] = t
                shutil.rmtree(out)
            rows.append(row)
            print(json.dumps(row), flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    doc = {
        "date": dt.date.today().isoformat(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}",
        "peer_versions": {k: v for k, v in venvs.versions("skellytracker").items()
                          if k in ("skellytracker", "mediapipe", "opencv-contrib-python")},
        "chunk_frames": args.chunk_frames,
        "rows": rows,
    }  # fmt: skip
    (REPO / "docs" / "benchmark-render.json").write_text(json.dumps(doc, indent=2) + "\n")
    lines = [
        "# Rendering annotated videos: mocapflow's chunked render against skellytracker's",
        "",
        f"{doc['date']}, {doc['machine']}; skellytracker "
        f"{doc['peer_versions'].get('skellytracker')} (MediaPipe Holistic, complexity 1); "
        f"`python benchmarks/render.py`; render tasks of {args.chunk_frames}+ frames.",
        "",
        "skellytracker draws while it tracks, on frames it decodes once for both: its drawing "
        "and writing are timed inside its process. mocapflow's render is a pass of its own "
        "(decoding, projecting, drawing, H.264), timed as the whole command.",
        "",
        "| recording | frames | skellytracker draw + write (s) | its decode + draw + write (s) "
        "| its whole run with tracking (s) | "
        + " | ".join(f"mocapflow render, {w} worker(s) (s)" for w in workers)
        + " | speed-up against its decode + draw + write |",
        "|---|---|---|---|---|" + "---|" * len(workers) + "---|",
    ]
    for r in rows:
        s = r["skellytracker"]
        own = s["annotate_s"] + s["write_s"]
        alone = own + s["decode_s"]
        best = min(r[f"mocapflow_{w}"] for w in workers)
        lines.append(
            f"| {r['recording']} | {r['frames']} | {own:.1f} | {alone:.1f} | {s['wall_s']:.1f} | "
            + " | ".join(f"{r[f'mocapflow_{w}']:.1f}" for w in workers)
            + f" | {alone / best:.2f}x |"
        )
    (REPO / "docs" / "benchmark-render.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
