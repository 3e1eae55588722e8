"""Several people in 2-D: ``-p max_people=4`` against the one-person tracker and skellytracker.

On Pose2Sim's two-person demo (samples/pose2sim_multi_person: 4 views x 100
frames, 1088 x 1920), one after another:

- ``tracker-people``: the ``mediapipe`` tracker with ``max_people=4`` called on
  each view's frames in one thread (decoding not timed), in a process of its own;
- ``tracker-single``: the same with the default ``max_people=1`` (MediaPipe's
  legacy API);
- ``process-people`` and ``process-single``: ``mocapflow process`` on the
  recording, the whole command (cluster start, decoding, tracking, store);
- ``skelly-static`` and ``skelly-tracking``: stock skellytracker
  (``process_folder_of_videos``, MediaPipe Holistic, model complexity 1), as
  FreeMoCap runs it, in its own venv (peers/venvs.py).

Frames per second count video frames (400); ms per person-frame divides the
time by the people found (filled slots, or frames with a person for the
one-person runs). mocapflow runs from the development venv here.

    python benchmarks/people_2d.py [--out docs/benchmark-people-2d.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "peers"))
import venvs  # noqa: E402

REPO = HERE.parent
SAMPLE = REPO / "samples" / "pose2sim_multi_person"
VIDEOS = sorted((SAMPLE / "synchronized_videos").glob("*.mp4"))
MAX_PEOPLE = 4

TRACKER_RUN = """
import json, sys, time
import numpy as np
from mocapflow.trackers import get_tracker
from mocapflow.video import read_frames
tracker = get_tracker("mediapipe", max_people=int(sys.argv[1]))
seconds, people, frames = 0.0, 0, 0
tracker(read_frames(sys.argv[2], 0, 1, pixel_format="rgb24"))  # models built, not timed
for path in sys.argv[2:]:
    f = read_frames(path, 0, 10**6, pixel_format="rgb24")
    t = time.perf_counter()
    out = tracker(f)
    seconds += time.perf_counter() - t
    people += int(np.isfinite(out["position"][:, 0, 0, :]).sum())
    frames += len(f)
print(json.dumps({"seconds": seconds, "frames": frames, "person_frames": people}))
"""


def tracker_run(max_people: int) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", TRACKER_RUN, str(max_people), *map(str, VIDEOS)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def store_people(store: Path) -> int:
    import xarray as xr

    ds = xr.open_zarr(store, consolidated=False)
    return int(np.isfinite(ds.position.isel(space=0, keypoint=0)).sum())


def timed(cmd: list[str]) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "benchmark-people-2d.json")
    args = ap.parse_args()
    exe = str(Path(sys.executable).with_name("mocapflow"))
    skelly = str(venvs.python("skellytracker"))
    frames = 100 * len(VIDEOS)
    rows: dict[str, dict] = {}
    for name, people in (("tracker-people", MAX_PEOPLE), ("tracker-single", 1)):
        r = tracker_run(people)
        rows[name] = {"seconds": r["seconds"], "person_frames": r["person_frames"]}
    with tempfile.TemporaryDirectory() as scratch:
        s = Path(scratch)
        for name, params in (("process-people", ["-p", f"max_people={MAX_PEOPLE}"]),
                             ("process-single", [])):  # fmt: skip
            store = s / f"{name}.zarr"
            sec = timed([exe, "process", str(SAMPLE), *params, "--out", str(store)])
            rows[name] = {"seconds": sec, "person_frames": store_people(store)}
        for name, static in (("skelly-static", "1"), ("skelly-tracking", "0")):
            folder = s / name
            videos = str(SAMPLE / "synchronized_videos")
            peer = str(HERE / "peers" / "skelly_pose.py")
            sec = timed([skelly, peer, videos, str(folder), "--static", static])
            (npy,) = folder.glob("*.npy")
            body = np.load(npy)[:, :, :33, :2]  # (view, frame, landmark, xy)
            rows[name] = {"seconds": sec, "person_frames": int(np.isfinite(body[..., 0, 0]).sum())}
    for r in rows.values():
        r["frames_per_s"] = frames / r["seconds"]
        r["ms_per_person_frame"] = 1e3 * r["seconds"] / max(r["person_frames"], 1)
    doc = {
        "recording": str(SAMPLE.relative_to(REPO)),
        "frames": frames,
        "max_people": MAX_PEOPLE,
        "cpus": len(os.sched_getaffinity(0)),
        "machine": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "skellytracker": venvs.versions("skellytracker").get("skellytracker"),
        "date": time.strftime("%Y-%m-%d"),
        "runs": rows,
    }
    args.out.write_text(json.dumps(doc, indent=2) + "\n")
    args.out.with_suffix(".md").write_text(markdown(doc))


def markdown(doc: dict) -> str:
    lines = [
        "# Several people in 2-D: benchmark",
        "",
        f"Pose2Sim's two-person demo ({doc['recording']}), {doc['frames']} frames "
        f"(4 views x 100, 1088 x 1920), {doc['cpus']} CPU cores, run once on {doc['date']} "
        "by `benchmarks/people_2d.py`; raw figures in `benchmark-people-2d.json`. "
        f"`max_people={doc['max_people']}`. ms per person-frame: the time over the people found.",
        "",
        "| run | seconds | frames/s | people found (person-frames) | ms per person-frame |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for name, r in doc["runs"].items():
        lines.append(
            f"| {name} | {r['seconds']:.1f} | {r['frames_per_s']:.1f} | {r['person_frames']} "
            f"| {r['ms_per_person_frame']:.1f} |"
        )
    lines += [
        "",
        "`tracker-*`: the tracker alone in one thread (decoding not timed); `process-*`: the "
        "whole `mocapflow process` command on its local cluster; `skelly-*`: stock "
        "skellytracker's MediaPipe Holistic (one person), as FreeMoCap runs it (its own "
        "process pool, annotated videos written).",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
