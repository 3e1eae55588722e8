"""Multi-camera calibration side by side: mocapflow, aniposelib and caliscope.

    python benchmarks/calibration.py [--repeats 1] [--real PATH] [--only sweep,turntable,real]

Three recordings, each calibrated by the three tools in turn (interleaved):

* ``sweep``: the default synthetic ChArUco render (4 cameras, 300 frames of
  1280x720 H.264, a 120 mm-square 7x5 board sweeping the volume; seed 11, as
  benchmarks/charuco.py);
* ``turntable``: ``synthesize(kind="charuco", scene="turntable")`` (4 cameras
  in a ring 2.5 m out, 150 frames of 960x720, an 80 mm-square board turning
  once near the centre; seed 0);
* ``real``: caliscope's webcam session (4 videos, 1280x720, 111 frames at
  6 fps, an inverted 4x5 DICT_4X4_1000 board, 54 mm squares), with caliscope's
  own calibration of it as the reference (``--real``: a folder holding the
  videos, ``charuco.toml`` and ``camera_array.toml``, or the videos in
  ``rec/`` beside ``charuco_calibration/``).

The tools, each in its own venv (``benchmarks/peers/venvs.py``):

* ``mocapflow``: the ``mocapflow calibrate`` command as users run it (board
  detection on the local cluster, the fit, the TOML and the HTML report);
* ``aniposelib`` 0.8.0: ``calibrate_videos``'s two steps
  (``peers/anipose_calibrate_board.py``; every 20th frame, its default);
* ``caliscope`` 0.11.5: its scripting API's one-recording workflow
  (``peers/caliscope_calibrate.py``: every 5th moment of the sweep, every 3rd of
  the turntable, every one of the 111-frame real session).

Accuracy: on the renders, camera centres against the true cameras after the
rigid motion that best aligns the worlds (mm) and focal lengths (%); on the real
session, focal lengths against caliscope's reference (%), the RMS reprojection
error where the tool reports it, and the six inter-camera distances against the
reference's (mm).

Results: docs/benchmark-calibration.json and docs/benchmark-calibration.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import os
import platform
import shutil
import statistics
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

from peers import venvs  # noqa: E402
from proctree import run_measured  # noqa: E402

DATA = HERE / "results" / "data" / "calibration"
SCRATCH = HERE / "results" / "scratch-calibration"
TOOLS = ("mocapflow", "aniposelib", "caliscope")
#: Per recording: mocapflow's --board, aniposelib's board (sx, sy, square, marker, dict
#: size), caliscope's board options, and caliscope's frame step.
BOARDS = {
    "sweep": (
        ["-b", "square_length=120"],
        ["7", "5", "120", "96", "250"],
        ["--columns", "7", "--rows", "5", "--square-cm", "12", "--dictionary",
         "DICT_4X4_250", "--aruco-scale", "0.8", "--frame-step", "5"],
    ),
    "turntable": (
        ["-b", "square_length=80"],
        ["7", "5", "80", "64", "250"],
        ["--columns", "7", "--rows", "5", "--square-cm", "8", "--dictionary",
         "DICT_4X4_250", "--aruco-scale", "0.8", "--frame-step", "3"],
    ),
    "real": (
        None,  # the board file, below
        ["4", "5", "54", "40.5", "1000"],
        ["--columns", "4", "--rows", "5", "--square-cm", "5.4", "--dictionary",
         "DICT_4X4_1000", "--aruco-scale", "0.75", "--inverted", "--frame-step", "1"],
    ),
}  # fmt: skip


def synthetic(scene: str) -> Path:
    """The synthetic recording of ``scene``, rendered once."""
    from mocapflow.synthetic import synthesize

    root = DATA / scene
    if not (root / "true_calibration.toml").exists():
        if scene == "sweep":
            synthesize(root, kind="charuco", frames=300, size=(1280, 720), seed=11, overwrite=True)
        else:
            synthesize(root, kind="charuco", scene="turntable", seed=0, overwrite=True)
    return root / "synchronized_videos"


def real_paths(real: Path) -> tuple[Path, Path, Path]:
    """The real session's videos folder, board file and reference calibration."""
    for videos, extra in ((real, real), (real / "rec", real / "charuco_calibration")):
        if sorted(videos.glob("cam_*.mp4")) and (extra / "camera_array.toml").is_file():
            return videos, extra / "charuco.toml", extra / "camera_array.toml"
    raise SystemExit(f"--real {real}: no cam_*.mp4 with camera_array.toml and charuco.toml")


def commands(name: str, videos: Path, board_file: Path | None) -> dict[str, list[str]]:
    """The three tools' command lines on one recording; each writes SCRATCH/<name>-<tool>."""
    ours, anipose_board, caliscope_board = BOARDS[name]
    if ours is None:
        ours = ["-b", str(board_file)]
    rec = SCRATCH / f"{name}-mocapflow"
    mocapflow = str(venvs.mocapflow_python().with_name("mocapflow"))
    link = f"mkdir -p {rec}/synchronized_videos && ln -s {videos}/*.mp4 {rec}/synchronized_videos/"
    return {
        "mocapflow": ["sh", "-c", f"{link} && {mocapflow} calibrate {rec} {' '.join(ours)} "
                      f"--out {rec}/calibration.toml --overwrite"],
        "aniposelib": [str(venvs.python("aniposelib")),
                       str(HERE / "peers" / "anipose_calibrate_board.py"), str(videos),
                       str(SCRATCH / f"{name}-aniposelib.toml"), *anipose_board],
        "caliscope": [str(venvs.python("caliscope")),
                      str(HERE / "peers" / "caliscope_calibrate.py"), str(videos),
                      str(SCRATCH / f"{name}-caliscope"), *caliscope_board],
    }  # fmt: skip


def result_file(name: str, tool: str) -> Path:
    """Where a tool's calibration of ``name`` lands."""
    return {
        "mocapflow": SCRATCH / f"{name}-mocapflow" / "calibration.toml",
        "aniposelib": SCRATCH / f"{name}-aniposelib.toml",
        "caliscope": SCRATCH / f"{name}-caliscope" / "camera_array.toml",
    }[tool]


def load(path: Path, names: list[str]) -> tuple[list, dict]:
    """Cameras of a calibration file in the order of ``names`` (matched by sorted order)."""
    from mocapflow.calib import read_calibration

    cams, meta = read_calibration(path)
    found = [cams[k] for k in sorted(cams)]
    if len(found) != len(names):
        raise ValueError(f"{path}: {len(found)} cameras, expected {len(names)}")
    return found, meta


def accuracy(name: str, tool: str, truth_path: Path) -> dict:
    """The tool's accuracy on one recording (see the module's docstring)."""
    from mocapflow.calib import centre_errors, read_calibration

    truth, _ = read_calibration(truth_path)
    names = sorted(truth)
    true = [truth[n] for n in names]
    est, meta = load(result_file(name, tool), names)
    out: dict = {}
    focal = [100 * (e.matrix[0, 0] / t.matrix[0, 0] - 1) for e, t in zip(est, true, strict=True)]
    out["focal_pct"] = focal
    out["focal_pct_max"] = max(abs(f) for f in focal)
    rms = meta.get("rms_reprojection_error_px")
    if rms is not None:
        out["rms_px"] = float(rms)
    if name == "real":
        pairs = list(itertools.combinations(range(len(names)), 2))
        dist = [np.linalg.norm(est[i].center - est[j].center) for i, j in pairs]
        ref = [np.linalg.norm(true[i].center - true[j].center) for i, j in pairs]
        out["distances_mm"] = [float(d) for d in dist]
        out["reference_distances_mm"] = [float(d) for d in ref]
        out["distance_err_mm_max"] = float(max(abs(a - b) for a, b in zip(dist, ref, strict=True)))
        out["distance_err_pct_max"] = float(
            max(100 * abs(a / b - 1) for a, b in zip(dist, ref, strict=True))
        )
    else:
        err = [float(e) for e in centre_errors(est, true)]
        out["centre_mm"] = err
        out["centre_mm_max"] = max(err)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--real", type=Path, default=REPO / "tests" / "data" / "caliscope_charuco")
    ap.add_argument("--only", default="sweep,turntable,real")
    ap.add_argument("--json", type=Path, default=REPO / "docs" / "benchmark-calibration.json")
    ap.add_argument("--markdown", type=Path, default=REPO / "docs" / "benchmark-calibration.md")
    args = ap.parse_args()
    recordings: dict[str, tuple[Path, Path | None, Path]] = {}
    for name in args.only.split(","):
        if name == "real":
            videos, board, ref = real_paths(args.real)
            recordings[name] = (videos, board, ref)
        else:
            videos = synthetic(name)
            recordings[name] = (videos, None, videos.parent / "true_calibration.toml")
    runs: dict[str, dict[str, list[dict]]] = {n: {} for n in recordings}
    acc: dict[str, dict[str, dict]] = {n: {} for n in recordings}
    for r in range(args.repeats):
        for name, (videos, board, ref) in recordings.items():
            for tool, cmd in commands(name, videos, board).items():
                for leftover in SCRATCH.glob(f"{name}-{tool}*"):
                    shutil.rmtree(leftover) if leftover.is_dir() else leftover.unlink()
                SCRATCH.mkdir(parents=True, exist_ok=True)
                try:
                    m = run_measured(cmd, env={**os.environ, "PYTHONWARNINGS": "ignore"})
                    out = m.pop("stdout")
                except Exception as exc:  # noqa: BLE001 (a tool that fails is reported, not hidden)
                    m = {"wall_s": float("nan"), "cpu_s": float("nan"), "peak_rss_mb": 0.0}
                    out = str(exc)
                m["ok"] = result_file(name, tool).is_file()
                if not m["ok"]:
                    m["failure"] = str(out)[-2000:]
                runs[name].setdefault(tool, []).append(m)
                print(f"repeat {r + 1} {name:10s} {tool:11s} {m['wall_s']:7.2f} s "
                      f"{m['cpu_s']:7.2f} CPU s {m['peak_rss_mb']:6.0f} MB ok={m['ok']}",
                      flush=True)  # fmt: skip
                if r == 0 and m["ok"]:
                    try:
                        acc[name][tool] = accuracy(name, tool, ref)
                    except Exception as exc:  # noqa: BLE001 (a peer's file we cannot read)
                        acc[name][tool] = {"error": f"{type(exc).__name__}: {exc}"}
                elif r == 0:
                    acc[name][tool] = {"error": "no calibration written"}
    summary = {
        name: {
            tool: {
                k: statistics.median(m[k] for m in ms) for k in ("wall_s", "cpu_s", "peak_rss_mb")
            }
            | {"ok": all(m["ok"] for m in ms)}
            for tool, ms in cells.items()
        }
        for name, cells in runs.items()
    }
    versions = {**venvs.versions("aniposelib"), **venvs.versions("caliscope")}
    doc = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {"cores": len(os.sched_getaffinity(0)), "platform": platform.platform()},
        "peer_versions": {k: versions[k] for k in ("aniposelib", "caliscope") if k in versions},
        "summary": summary,
        "accuracy": acc,
        "runs": runs,
    }
    args.json.write_text(json.dumps(doc, indent=1, default=str))
    text = markdown(doc)
    args.markdown.write_text(text)
    print(text)


def _cell(a: dict, name: str) -> str:
    if "error" in a:
        return f"failed ({a['error'][:80]})"
    if name == "real":
        rms = f", RMS {a['rms_px']:.2f} px" if "rms_px" in a else ""
        return (
            f"focal within {a['focal_pct_max']:.1f} % of the reference{rms}; distances within "
            f"{a['distance_err_mm_max']:.0f} mm ({a['distance_err_pct_max']:.1f} %)"
        )
    return f"centres within {a['centre_mm_max']:.2f} mm, focal within {a['focal_pct_max']:.3f} %"


def markdown(doc: dict) -> str:
    lines = [
        f"Measured {doc['date'][:10]} on {doc['machine']['cores']} cores; peers: "
        + ", ".join(f"{k} {v}" for k, v in doc["peer_versions"].items())
        + ". Wall time of the whole calibration (detection and fit), median of the runs.",
        "",
        "| recording | tool | wall s | CPU s | peak MB | accuracy |",
        "|---|---|---:|---:|---:|---|",
    ]
    for name, cells in doc["summary"].items():
        for tool, c in cells.items():
            acc = _cell(doc["accuracy"][name].get(tool, {"error": "not run"}), name)
            lines.append(
                f"| {name} | {tool} | {c['wall_s']:.1f} | {c['cpu_s']:.1f} | "
                f"{c['peak_rss_mb']:.0f} | {acc} |"
            )
    lines += ["", *NOTES]
    return "\n".join(lines) + "\n"


NOTES = [
    "Synthetic accuracy: camera centres against the true cameras after the rigid motion that",
    "best aligns the worlds, and focal lengths, worst camera. Real: focal lengths and the six",
    "inter-camera distances against caliscope's own reference calibration of the session",
    "(itself an estimate), and mocapflow's RMS reprojection error. aniposelib's boards are never",
    "inverted, so it cannot find the real session's inverted board. caliscope runs headless",
    "from its scripting API (`caliscope.api`), intrinsics held in its extrinsic step as its",
    "one-recording demo does.",
]


if __name__ == "__main__":
    main()
