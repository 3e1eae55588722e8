"""mocapflow's MediaPipe trackers side by side with skellytracker (FreeMoCap's tracker library).

    python benchmarks/pose.py [--videos 4,8,16] [--repeats 3] [--quick]

On copies of the real sample (samples/pose2sim_single_person: 100 frames of
1080x1920 per camera), for 4, 8 and 16 videos, in one run, interleaved:

* ``skelly-tracking`` / ``skelly-static``: skellytracker 2025.10.1024, stock
  (``process_folder_of_videos`` with its MediaPipe Holistic tracker, model
  complexity 1, its own pool rule and its annotated videos), in its own venv
  (mediapipe 0.10.14, numpy<2, opencv-contrib 4.8), in tracking mode (its
  default) and in static mode;
* ``mocapflow-holistic-tracking`` / ``mocapflow-holistic-static``: ``mocapflow
  process -t mediapipe_holistic`` with the same model and mode (stock: sized
  cluster, performance report; tracking mode warms each task up with 30 frames);
* ``mocapflow-default``: ``mocapflow process -t mediapipe`` (Pose, static mode);
* ``mocapflow-holistic-tracking-threads``: as ``mocapflow-holistic-tracking``
  with ``--cluster threads`` (the same sizing as worker threads in one process);
* ``loop-*`` (4 videos only): the bare single-process loop (cv2 read, RGB,
  one model), the CPU-per-frame floor.

mocapflow and its loops run in mocapflow's own venv as users install it
(``benchmarks/peers/venvs.py``), not in the development venv.

Each run is measured as a whole process tree (wall, CPU, peak RSS, processes;
see proctree.py). Results go to docs/benchmark-pose.json and a markdown
summary to docs/benchmark-pose.md. It also checks that the two modes, and
skellytracker and mocapflow, give the same landmarks on the same frames.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from peers import venvs  # noqa: E402
from sidebyside import arguments, copies, interleave, medians, ratios, table  # noqa: E402

REPO = HERE.parent
SAMPLE = REPO / "samples" / "pose2sim_single_person" / "synchronized_videos"
DATA = HERE / "results" / "data" / "pose"
FRAMES_PER_VIDEO = 100


def recording(n: int) -> Path:
    """A recording of ``n`` videos: copies of the sample's four, made once."""
    return copies(sorted(SAMPLE.glob("*.mp4")), DATA, n)


def commands(rec: Path, scratch: Path) -> dict[str, list[str]]:
    """Every configuration's command line on one recording."""
    skelly = str(venvs.python("skellytracker"))
    ours = str(venvs.mocapflow_python())  # mocapflow as users install it
    exe = str(Path(ours).with_name("mocapflow"))
    videos = str(rec / "synchronized_videos")

    def mocapflow(name: str, tracker: str, *params: str, cluster: str = "local") -> list[str]:
        p = [x for kv in params for x in ("-p", kv)]
        return [
            exe,
            "process",
            str(rec),
            "-t",
            tracker,
            *p,
            "--out",
            str(scratch / f"{name}.zarr"),
            "--cluster",
            cluster,
        ]

    return {
        "skelly-tracking": [skelly, str(HERE / "peers" / "skelly_pose.py"), videos,
                            str(scratch / "skelly-tracking"), "--static", "0"],
        "skelly-static": [skelly, str(HERE / "peers" / "skelly_pose.py"), videos,
                          str(scratch / "skelly-static"), "--static", "1"],
        "mocapflow-holistic-tracking": mocapflow(
            "mocapflow-holistic-tracking", "mediapipe_holistic", "static_image_mode=false"
        ),
        "mocapflow-holistic-static": mocapflow("mocapflow-holistic-static", "mediapipe_holistic"),
        "mocapflow-default": mocapflow("mocapflow-default", "mediapipe"),
        "mocapflow-holistic-tracking-threads": mocapflow(
            "mocapflow-holistic-tracking-threads",
            "mediapipe_holistic",
            "static_image_mode=false",
            cluster="threads",
        ),
        "loop-holistic-tracking": [ours, str(HERE / "pose_loop.py"), videos,
                                   "--kind", "holistic", "--static", "0"],
        "loop-holistic-static": [ours, str(HERE / "pose_loop.py"), videos,
                                 "--kind", "holistic", "--static", "1"],
        "loop-pose-static": [ours, str(HERE / "pose_loop.py"), videos,
                             "--kind", "pose", "--static", "1"],
    }  # fmt: skip


def agreement(scratch: Path) -> dict:
    """Median pixel distance between body landmarks of runs on the same frames."""
    import xarray as xr

    def store(name: str) -> np.ndarray:
        ds = xr.open_zarr(scratch / f"{name}.zarr", consolidated=False)
        pos = ds.position.isel(individual=0, keypoint=slice(0, 33))
        return pos.transpose("view", "time", "keypoint", "space").values

    def skelly(name: str) -> np.ndarray:
        (npy,) = (scratch / name).glob("*.npy")
        return np.load(npy)[:, :, :33, :2]

    def median_px(a: np.ndarray, b: np.ndarray) -> float:
        return float(np.nanmedian(np.linalg.norm(a - b, axis=-1)))

    static, tracking = store("mocapflow-holistic-static"), store("mocapflow-holistic-tracking")
    return {
        "mocapflow static vs tracking mode": median_px(static, tracking),
        "skellytracker vs mocapflow, static mode": median_px(skelly("skelly-static"), static),
        "skellytracker vs mocapflow, tracking mode": median_px(skelly("skelly-tracking"), tracking),
    }


def main() -> None:
    args = arguments(__doc__.splitlines()[0], "pose")
    counts = args.counts
    scratch = HERE / "results" / "scratch-pose"
    checks = {}

    def after_first(n: int) -> None:
        if n == counts[0]:
            checks.update(agreement(scratch))

    runs = interleave(
        lambda n: commands(recording(n), scratch),
        counts,
        1 if args.quick else args.repeats,
        frames=lambda n: n * FRAMES_PER_VIDEO,
        scratch=scratch,
        once=("loop",),
        after_first=after_first,
    )
    doc = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {"cores": len(os.sched_getaffinity(0)), "platform": platform.platform()},
        "peer_versions": {
            k: v
            for k, v in venvs.versions("skellytracker").items()
            if k in ("skellytracker", "mediapipe", "numpy", "opencv-contrib-python")
        },
        "mocapflow_env": venvs.mocapflow_versions(),
        "repeats": 1 if args.quick else args.repeats,
        "summary": medians(runs),
        "runs": runs,
        "landmark_agreement_px": checks,
    }
    args.json.write_text(json.dumps(doc, indent=1, default=float))
    args.markdown.write_text(markdown(doc))
    print(markdown(doc))


def markdown(doc: dict) -> str:
    """The tables of docs/benchmark-pose.md."""
    lines = [
        f"Measured {doc['date'][:10]} on {doc['machine']['cores']} cores, median of "
        f"{doc['repeats']} interleaved runs; skellytracker "
        f"{doc['peer_versions'].get('skellytracker')} with mediapipe "
        f"{doc['peer_versions'].get('mediapipe')} in its own venv. Wall s, CPU s, "
        "peak RSS of the process tree, processes, CPU ms per frame.",
        "",
        *table(doc["summary"]),
        "",
        "Ratios (over 1: mocapflow is faster or uses less):",
        "",
        *ratios(
            doc["summary"],
            [
                (
                    "skelly-tracking",
                    "mocapflow-holistic-tracking",
                    "same model and mode (tracking)",
                ),
                ("skelly-static", "mocapflow-holistic-static", "same model and mode (static)"),
                ("skelly-tracking", "mocapflow-default", "each one's default"),
                (
                    "skelly-tracking",
                    "mocapflow-holistic-tracking-threads",
                    "same model and mode (tracking), --cluster threads",
                ),
            ],
        ),
    ]
    first = doc["summary"][min(doc["summary"])]
    lines += ["", "CPU per frame against the bare single-process loop (same model and mode):", ""]
    for ours, loop in [
        ("mocapflow-holistic-tracking", "loop-holistic-tracking"),
        ("mocapflow-holistic-static", "loop-holistic-static"),
        ("mocapflow-default", "loop-pose-static"),
        ("mocapflow-holistic-tracking-threads", "loop-holistic-tracking"),
    ]:
        for n, cells in doc["summary"].items():
            o = cells[ours]["cpu_s"] / cells[ours]["frames"]
            b = first[loop]["cpu_s"] / first[loop]["frames"]
            lines.append(f"- {ours}, {n} videos: {o / b:.2f}x the loop's {1000 * b:.1f} ms")
    loop = first["loop-holistic-tracking"]
    lines += [
        "",
        f"The bare loop keeps {loop['cpu_s'] / loop['wall_s']:.2f} cores busy "
        "(MediaPipe's and FFmpeg's own threads).",
        "",
        "Landmark agreement on the same frames (median distance, body landmarks):",
        "",
    ]
    lines += [f"- {k}: {v:.2f} px" for k, v in doc["landmark_agreement_px"].items()]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
