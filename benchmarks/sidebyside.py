"""Run configurations side by side, interleaved, and keep the median of each.

Shared by the peer benchmarks (pose.py, charuco.py): every configuration is a
command line; each repeat runs all of them, for every video count, one after
another, so that slow drifts of the machine hit every configuration alike.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
from collections.abc import Callable
from pathlib import Path

from proctree import run_measured

KEYS = ("wall_s", "cpu_s", "cpu_util", "peak_rss_mb", "max_processes", "frames")


def arguments(description: str, name: str) -> argparse.Namespace:
    """The options every peer benchmark takes; results go to ``docs/benchmark-<name>.*``."""
    docs = Path(__file__).resolve().parents[1] / "docs"
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--videos", default="4,8,16")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="4 videos, 1 repeat")
    ap.add_argument("--json", type=Path, default=docs / f"benchmark-{name}.json")
    ap.add_argument("--markdown", type=Path, default=docs / f"benchmark-{name}.md")
    args = ap.parse_args()
    args.counts = [4] if args.quick else [int(x) for x in args.videos.split(",")]
    return args


def copies(sources: list[Path], root: Path, n: int) -> Path:
    """A recording of ``n`` videos, copies of ``sources`` in turn, made once under ``root``."""
    videos = root / str(n) / "synchronized_videos"
    if len(list(videos.glob("*.mp4"))) != n:
        shutil.rmtree(videos.parent, ignore_errors=True)
        videos.mkdir(parents=True)
        for i in range(n):
            shutil.copy(sources[i % len(sources)], videos / f"cam{i + 1:02d}.mp4")
    return videos.parent


def interleave(
    commands: Callable[[int], dict[str, list[str]]],
    counts: list[int],
    repeats: int,
    frames: Callable[[int], int],
    scratch: Path,
    once: tuple[str, ...] = (),
    after_first: Callable[[int], None] | None = None,
) -> dict[int, dict[str, list[dict]]]:
    """Run every command for every count, ``repeats`` times; return the measurements.

    Commands whose name starts with one of ``once`` run for the first count only.
    ``after_first(n)`` runs after the first repeat's commands of each count.
    """
    runs: dict[int, dict[str, list[dict]]] = {n: {} for n in counts}
    for r in range(repeats):
        for n in counts:
            for name, cmd in commands(n).items():
                if name.startswith(once) and n != counts[0]:
                    continue
                for leftover in scratch.glob(f"{name}*"):
                    shutil.rmtree(leftover, ignore_errors=True)
                scratch.mkdir(parents=True, exist_ok=True)
                m = run_measured(cmd, env={**os.environ, "PYTHONWARNINGS": "ignore"})
                m.pop("stdout")
                m["frames"] = frames(n)
                runs[n].setdefault(name, []).append(m)
                print(f"repeat {r + 1} {n:2d} videos {name:30s} {m['wall_s']:7.2f} s "
                      f"{m['cpu_s']:7.2f} CPU s {m['peak_rss_mb']:7.0f} MB "
                      f"{m['max_processes']:3d} procs", flush=True)  # fmt: skip
            if r == 0 and after_first is not None:
                after_first(n)
    return runs


def medians(runs: dict[int, dict[str, list[dict]]]) -> dict[int, dict[str, dict]]:
    """The median of every figure, per count and configuration."""
    return {
        n: {
            name: {k: statistics.median(m[k] for m in ms) for k in KEYS}
            for name, ms in cells.items()
        }
        for n, cells in runs.items()
    }


def table(summary: dict[int, dict[str, dict]]) -> list[str]:
    """The markdown table of every configuration's medians."""
    lines = [
        "| videos | run | wall s | CPU s | peak MB | procs | CPU ms/frame |",
        "|---:|---|---:|---:|---:|---:|---:|",
    ]
    for n, cells in summary.items():
        for name, c in cells.items():
            lines.append(
                f"| {n} | {name} | {c['wall_s']:.1f} | {c['cpu_s']:.1f} | "
                f"{c['peak_rss_mb']:.0f} | {c['max_processes']} | "
                f"{1000 * c['cpu_s'] / c['frames']:.1f} |"
            )
    return lines


def ratios(summary, pairs: list[tuple[str, str, str]]) -> list[str]:
    """Wall and memory ratios of peer over mocapflow (over 1: mocapflow is better)."""
    lines = ["| videos | comparison | wall ratio | memory ratio |", "|---:|---|---:|---:|"]
    for n, cells in summary.items():
        for peer, ours, label in pairs:
            if peer in cells and ours in cells:
                p, o = cells[peer], cells[ours]
                lines.append(
                    f"| {n} | {label} | {p['wall_s'] / o['wall_s']:.2f}x | "
                    f"{p['peak_rss_mb'] / o['peak_rss_mb']:.2f}x |"
                )
    return lines
