"""ChArUco tracking and calibration, side by side with skellytracker and aniposelib.

    python benchmarks/charuco.py [--videos 4,8,16] [--repeats 3] [--quick]

On a synthetic ChArUco recording (4 cameras, 300 frames of 1280x720 H.264, made
once; copies for 8 and 16 videos), interleaved in one run:

* ``mocapflow``: ``mocapflow process -t charuco``, stock (sized cluster, report);
* ``mocapflow-threads``: the same with ``--cluster threads`` (the same sizing as
  worker threads in the command's own process);
* ``skelly-stock``: skellytracker 2025.10.1024's ``process_folder_of_videos``
  with its ChArUco tracker (its pool rule and annotated videos), in its venv;
* ``skelly-bare``: the same tracker's loop without the annotated videos;
* ``loop`` (4 videos): cv2 read + gray + ``detectBoard`` in one process, with
  mocapflow's OpenCV: the CPU-per-frame floor;
* ``mocapflow-calibrate`` / ``anipose-calibrate`` (4 videos): the whole
  calibration (board detection and fit) by ``mocapflow calibrate`` and by
  aniposelib 0.8.0 (``calibrate_videos``'s steps, in its venv); their
  camera centres are compared with the scene's true cameras.

mocapflow and its loop run in mocapflow's own venv as users install it
(``benchmarks/peers/venvs.py``), not in the development venv.

Results: docs/benchmark-charuco.json and docs/benchmark-charuco.md.
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

DATA = HERE / "results" / "data" / "charuco"
SCRATCH = HERE / "results" / "scratch-charuco"
FRAMES = 300


def source() -> Path:
    """The 4-camera synthetic ChArUco recording, made once."""
    from mocapflow.synthetic import synthesize

    root = DATA / "source"
    if not (root / "true_calibration.toml").exists():
        synthesize(root, kind="charuco", cameras=4, frames=FRAMES, size=(1280, 720), seed=11,
                   overwrite=True)  # fmt: skip
    return root


def commands(n: int) -> dict[str, list[str]]:
    src = source()
    rec = copies(sorted((src / "synchronized_videos").glob("*.mp4")), DATA, n)
    videos = str(rec / "synchronized_videos")
    skelly = str(venvs.python("skellytracker"))
    anipose = str(venvs.python("aniposelib"))
    ours = venvs.mocapflow_python()  # mocapflow as users install it
    mocapflow = str(ours.with_name("mocapflow"))
    calib_rec = SCRATCH / "mocapflow-calibrate"
    link = (
        f"mkdir -p {calib_rec}/synchronized_videos && "
        f"ln -s {src}/synchronized_videos/*.mp4 {calib_rec}/synchronized_videos/ && "
    )
    return {
        "mocapflow": [mocapflow, "process", str(rec), "-t", "charuco", "--out",
                      str(SCRATCH / "mocapflow.zarr")],
        "mocapflow-threads": [mocapflow, "process", str(rec), "-t", "charuco", "--out",
                              str(SCRATCH / "mocapflow-threads.zarr"), "--cluster", "threads"],
        "skelly-stock": [skelly, str(HERE / "peers" / "skelly_charuco.py"), videos,
                         str(SCRATCH / "skelly-stock")],
        "skelly-bare": [skelly, str(HERE / "peers" / "skelly_charuco.py"), videos,
                        str(SCRATCH / "skelly-bare"), "--bare"],
        "loop": [str(ours), str(HERE / "charuco_loop.py"), videos],
        "mocapflow-calibrate": ["sh", "-c", link + f"{mocapflow} calibrate {calib_rec} "
                                f"--out {SCRATCH / 'mocapflow-calibrate.toml'} --overwrite"],
        "anipose-calibrate": [anipose, str(HERE / "peers" / "anipose_calibrate.py"),
                              str(src / "synchronized_videos"),
                              str(SCRATCH / "anipose-calibrate.toml")],
    }  # fmt: skip


def accuracy() -> dict:
    """Camera-centre errors (mm) of both calibrations, after aligning them to the truth."""
    from mocapflow.calib import align_worlds, read_toml

    truth, _ = read_toml(source() / "true_calibration.toml")
    out = {}
    for name in ("mocapflow-calibrate", "anipose-calibrate"):
        cams, _ = read_toml(SCRATCH / f"{name}.toml")
        est = [cams[k] for k in sorted(cams)]
        rot, shift = align_worlds(est, [truth[c.name] for c in est])
        err = [float(np.linalg.norm(rot @ c.center + shift - truth[c.name].center)) for c in est]
        focal = [abs(c.matrix[0, 0] / truth[c.name].matrix[0, 0] - 1) * 100 for c in est]
        out[name] = {"centre_mm_max": max(err), "centre_mm": err, "focal_pct_max": max(focal)}
    return out


def main() -> None:
    args = arguments(__doc__.splitlines()[0], "charuco")
    counts = args.counts
    checks = {}

    def after_first(n: int) -> None:
        if n == counts[0]:
            checks.update(accuracy())

    runs = interleave(
        commands,
        counts,
        1 if args.quick else args.repeats,
        frames=lambda n: n * FRAMES,
        scratch=SCRATCH,
        once=("loop", "mocapflow-calibrate", "anipose-calibrate"),
        after_first=after_first,
    )
    summary = medians(runs)
    versions = {**venvs.versions("skellytracker"), **venvs.versions("aniposelib")}
    doc = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {"cores": len(os.sched_getaffinity(0)), "platform": platform.platform()},
        "peer_versions": {k: versions[k] for k in ("skellytracker", "aniposelib") if k in versions},
        "mocapflow_env": venvs.mocapflow_versions(),
        "summary": summary,
        "runs": runs,
        "calibration_accuracy": checks,
    }
    args.json.write_text(json.dumps(doc, indent=1, default=float))
    text = markdown(doc)
    args.markdown.write_text(text)
    print(text)


def markdown(doc: dict) -> str:
    summary = doc["summary"]
    lines = [
        f"Measured {doc['date'][:10]} on {doc['machine']['cores']} cores; peers: "
        + ", ".join(f"{k} {v}" for k, v in doc["peer_versions"].items())
        + ". Medians of interleaved runs; the ChArUco recording is 300 frames of "
        "1280x720 H.264 per video.",
        "",
        *table(summary),
        "",
        "Ratios (over 1: mocapflow is faster or uses less):",
        "",
        *ratios(
            summary,
            [
                ("skelly-stock", "mocapflow", "tracking, against stock skellytracker"),
                ("skelly-bare", "mocapflow", "tracking, against its loop without annotated videos"),
                ("skelly-stock", "mocapflow-threads", "--cluster threads, against stock"),
                ("skelly-bare", "mocapflow-threads", "--cluster threads, against its loop"),
                ("anipose-calibrate", "mocapflow-calibrate", "calibration, against aniposelib"),
            ],
        ),
    ]
    first = summary[min(summary)]
    loop = first["loop"]["cpu_s"] / first["loop"]["frames"]
    lines += ["", "CPU per frame of mocapflow's tracking against the bare loop:", ""]
    for run in ("mocapflow", "mocapflow-threads"):
        for n, cells in summary.items():
            ours = cells[run]["cpu_s"] / cells[run]["frames"]
            lines.append(f"- {run}, {n} videos: {ours / loop:.2f}x the loop's {1000 * loop:.1f} ms")
    lines += [
        "",
        "Calibration accuracy (camera centres after aligning the worlds; focal length):",
        "",
    ]
    for name, acc in doc["calibration_accuracy"].items():
        lines.append(
            f"- {name}: centres within {acc['centre_mm_max']:.2f} mm, "
            f"focal within {acc['focal_pct_max']:.3f} %"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
