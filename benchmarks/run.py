"""Benchmark mocapflow against FreeMoCap-style process pools and the decode ceiling.

    python benchmarks/run.py [--quick] [--json PATH] [--plots DIR] [--only A,B,...]

Every strategy (see ``strategies.py``) runs as its own process on the same
synthetic recordings (seeded, made once and cached under
``benchmarks/results/data``), one after another in this run. For each run this
script samples the whole process tree at 50 Hz (summed RSS, processes alive),
and takes the CPU seconds of the tree from ``RUSAGE_CHILDREN``. The strategies
run in mocapflow's venv as users install it (``peers/venvs.py``).

Workloads (full; ``--quick`` shrinks frames and sizes):

A  balanced: 4 cameras x 1800 frames, 1280x720 H.264
B  uneven: 6 cameras, two 3x longer than the rest (4 x 600 + 2 x 1800)
C  many videos: 32 cameras x 120 frames
D  memory scaling: 1, 4, 16 and 32 videos of 300 frames

Each runs with ``framestats`` (I/O bound) and ``markers`` (heavier).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import sys
import time
from pathlib import Path

import psutil

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from peers import venvs  # noqa: E402
from proctree import run_measured  # noqa: E402

DATA = HERE / "results" / "data"
STRATEGIES = [
    "process-per-video",
    "pool-rule",
    "pool-4",
    "mocapflow",
    "mocapflow-threads",
    "ceiling",
]
BASELINES = ["process-per-video", "pool-rule", "pool-4", "ceiling"]
TRACKERS = ["framestats", "markers"]


def workloads(quick: bool, size: tuple[int, int] | None = None) -> dict[str, dict]:
    """Workload name -> synthesize() arguments (and, for D, how many videos)."""
    if quick:
        default, long, short, many, d_frames = (480, 272), 240, 80, 40, 40
        counts = [1, 4, 16]
    else:
        default, long, short, many, d_frames = (1280, 720), 1800, 600, 120, 300
        counts = [1, 4, 16, 32]
    size = size or default
    w = {
        "A": {"cameras": 4, "frames": long, "size": size, "seed": 101},
        "B": {"cameras": 6, "frames": [short] * 4 + [3 * short] * 2, "size": size, "seed": 102},
        "C": {"cameras": 32 if not quick else 16, "frames": many, "size": size, "seed": 103},
    }
    for n in counts:
        w[f"D{n}"] = {
            "cameras": n,
            "frames": d_frames,
            "size": size,
            "seed": 104,
            "subset_of": max(counts),
        }
    return w


def make_data(name: str, spec: dict, quick: bool, tag: str | None = None) -> Path:
    """Synthesize (once) the recording of a workload; D subsets share one recording."""
    from mocapflow.synthetic import synthesize

    tag = tag or ("quick" if quick else "full")
    if "subset_of" in spec:
        full_n = spec["subset_of"]
        source = DATA / tag / f"D{full_n}"
        if not (source / "ground_truth.zarr").exists():
            shutil.rmtree(source, ignore_errors=True)
            synthesize(
                source,
                cameras=full_n,
                frames=spec["frames"],
                size=spec["size"],
                seed=spec["seed"],
                gop=120,
            )
        if spec["cameras"] == full_n:
            return source
        root = DATA / tag / name
        videos = root / "synchronized_videos"
        if not videos.is_dir():
            videos.mkdir(parents=True)
            for i in range(spec["cameras"]):
                src = source / "synchronized_videos" / f"cam{i + 1}.mp4"
                shutil.copy(src, videos / src.name)
        return root
    root = DATA / tag / name
    if not (root / "ground_truth.zarr").exists():
        shutil.rmtree(root, ignore_errors=True)
        synthesize(
            root,
            cameras=spec["cameras"],
            frames=spec["frames"],
            size=spec["size"],
            seed=spec["seed"],
            gop=120,
        )
    return root


def measure(strategy: str, recording: Path, tracker: str, scratch: Path) -> dict:
    """Run one strategy in its own process and measure its whole process tree."""
    shutil.rmtree(scratch, ignore_errors=True)
    # Every strategy in mocapflow's venv as users install it (not the development venv).
    python = str(venvs.mocapflow_python())
    cmd = [python, str(HERE / "strategies.py"), strategy, str(recording), tracker]
    m = run_measured([*cmd, str(scratch)])
    launched = m.pop("launched")
    m.pop("stdout")
    timing = json.loads((scratch / "timing.json").read_text())
    out = {**m, **timing}
    if "cluster_ready_epoch" in timing:
        # Start-up: interpreter, imports, probing, the store template and the cluster.
        out["startup_s"] = out.pop("cluster_ready_epoch") - launched
        out["wall_excl_startup_s"] = m["wall_s"] - out["startup_s"]
    shutil.rmtree(scratch, ignore_errors=True)
    return out


def ratios(cell: dict) -> dict:
    """mocapflow's time and memory against each baseline (>1: mocapflow is better)."""
    m = cell["mocapflow"]
    out = {}
    for b in BASELINES:
        if b not in cell:
            continue
        out[b] = {
            "speedup": cell[b]["wall_s"] / m["wall_s"],
            "speedup_excl_startup": cell[b]["wall_s"] / m["wall_excl_startup_s"],
            "memory_ratio": m["peak_rss_mb"] / cell[b]["peak_rss_mb"],
        }
    return out


def targets(results: dict) -> list[dict]:
    """The issue's targets, evaluated on this run."""
    out = []
    a = results.get("A", {}).get("framestats")
    if a:
        excl = a["mocapflow"]["wall_excl_startup_s"] / a["ceiling"]["wall_s"]
        incl = a["mocapflow"]["wall_s"] / a["ceiling"]["wall_s"]
        out.append(
            {
                "target": "A framestats: mocapflow within 1.15x of the decode ceiling "
                "(start-up excluded)",
                "value": excl,
                "met": excl <= 1.15,
                "note": f"{incl:.2f}x with start-up ({a['mocapflow']['startup_s']:.2f} s)",
            }
        )
    for tracker in TRACKERS:
        b = results.get("B", {}).get(tracker)
        if b:
            v = b["pool-rule"]["wall_s"] / b["mocapflow"]["wall_s"]
            out.append(
                {
                    "target": f"B {tracker}: at least 1.5x faster than pool-rule",
                    "value": v,
                    "met": v >= 1.5,
                }
            )
        c = results.get("C", {}).get(tracker)
        if c:
            v = c["mocapflow"]["peak_rss_mb"] / c["process-per-video"]["peak_rss_mb"]
            out.append(
                {
                    "target": f"C {tracker}: peak memory at most 40% of process-per-video",
                    "value": v,
                    "met": v <= 0.40,
                }
            )
        ds = sorted(
            (int(k[1:]), v[tracker])
            for k, v in results.items()
            if k.startswith("D") and tracker in v
        )
        if len(ds) >= 2:
            counts = dict(ds)
            lo = counts.get(4, ds[0][1])
            hi = ds[-1][1]
            v = hi["mocapflow"]["peak_rss_mb"] / lo["mocapflow"]["peak_rss_mb"]
            out.append(
                {
                    "target": f"D {tracker}: mocapflow memory at {ds[-1][0]} videos within "
                    "1.3x of 4 videos",
                    "value": v,
                    "met": v <= 1.3,
                }
            )
    # Processes: main + workers + multiprocessing's resource tracker, whatever the video count.
    procs = {(w, t): c["mocapflow"] for w, per in results.items() for t, c in per.items()}
    d_counts = sorted(int(w[1:]) for w in results if w.startswith("D"))
    seen = [m["max_processes"] - m["workers"] for m in procs.values()]
    typical = sorted(seen)[len(seen) // 2]
    over = sorted(
        {f"{w} {t}" for (w, t), m in procs.items() if m["max_processes"] - m["workers"] > typical}
    )
    grows = False
    if len(d_counts) >= 2:
        first, last = f"D{d_counts[0]}", f"D{d_counts[-1]}"
        grows = any(
            procs[(last, t)]["max_processes"] > procs[(first, t)]["max_processes"] + 1
            for (w, t) in procs
            if w == last
        )
    out.append(
        {
            "target": "mocapflow processes bounded by workers, not videos "
            f"(typically workers + {typical}: main and resource tracker)",
            "value": max(seen),
            "met": not grows and max(seen) <= typical + 1,
            "note": f"one more, briefly, in {', '.join(over)}" if over else "",
        }
    )
    return out


def rows(results: dict):
    """Yield ``(workload, tracker, strategy, figures, start-up-excluded wall)`` per run."""
    for w, per in results.items():
        for t, cell in per.items():
            for s in STRATEGIES:
                if s in cell:
                    r = cell[s]
                    excl = f"{r['wall_excl_startup_s']:.2f}" if "wall_excl_startup_s" in r else ""
                    yield w, t, s, r, excl


def print_table(results: dict) -> None:
    head = (
        f"{'load':5} {'tracker':10} {'strategy':18} {'wall s':>8} {'excl.start':>10} "
        f"{'peak MB':>8} {'procs':>5} {'cpu %':>6}"
    )
    print(head)
    print("-" * len(head))
    for w, t, s, r, excl in rows(results):
        print(
            f"{w:5} {t:10} {s:18} {r['wall_s']:8.2f} {excl:>10} {r['peak_rss_mb']:8.0f} "
            f"{r['max_processes']:5d} {100 * r['cpu_util']:6.0f}"
        )


def plot(results: dict, out: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    files = []
    fig, axes = plt.subplots(1, len(TRACKERS), figsize=(11, 4), sharey=True)
    for ax, tracker in zip(axes, TRACKERS, strict=True):
        ds = sorted(
            (int(k[1:]), v[tracker])
            for k, v in results.items()
            if k.startswith("D") and tracker in v
        )
        for s in STRATEGIES:
            xs = [n for n, c in ds if s in c]
            ax.plot(xs, [c[s]["peak_rss_mb"] for n, c in ds if s in c], marker="o", label=s)
        ax.set(
            title=f"workload D, {tracker}",
            xlabel="videos",
            ylabel="peak memory of the process tree (MB)",
            xscale="log",
            yscale="log",
        )
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(out / "memory_vs_videos.png", dpi=110)
    files.append("memory_vs_videos.png")
    fig, axes = plt.subplots(1, len(TRACKERS), figsize=(11, 4))
    loads = [w for w in results if not w.startswith("D")]
    for ax, tracker in zip(axes, TRACKERS, strict=True):
        width = 0.8 / len(STRATEGIES)
        for i, s in enumerate(STRATEGIES):
            vals = [
                results[w][tracker][s]["wall_s"]
                if tracker in results[w] and s in results[w][tracker]
                else 0
                for w in loads
            ]
            ax.bar([j + i * width for j in range(len(loads))], vals, width, label=s)
        ax.set_xticks([j + 0.4 - width / 2 for j in range(len(loads))], loads)
        ax.set(title=f"wall time, {tracker}", ylabel="seconds")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "wall_time.png", dpi=110)
    files.append("wall_time.png")
    plt.close("all")
    return files


def versions() -> dict:
    import av
    import cv2
    import dask
    import distributed
    import numpy
    import xarray
    import zarr

    return {
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "opencv": cv2.__version__,
        "av": av.__version__,
        "dask": dask.__version__,
        "distributed": distributed.__version__,
        "xarray": xarray.__version__,
        "zarr": zarr.__version__,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small workloads, under 3 minutes")
    ap.add_argument("--json", type=Path, help="write every figure here")
    ap.add_argument("--plots", type=Path, help="write PNG plots here")
    ap.add_argument("--only", help="comma-separated workloads, e.g. A,D4")
    ap.add_argument("--trackers", default=",".join(TRACKERS))
    ap.add_argument("--size", help="frame size WIDTHxHEIGHT instead of 1280x720, e.g. 960x540")
    args = ap.parse_args()
    t_start = time.perf_counter()
    size = tuple(int(x) for x in args.size.split("x")) if args.size else None
    specs = workloads(args.quick, size)
    tag = f"{'quick' if args.quick else 'full'}-{args.size}" if args.size else None
    if args.only:
        specs = {k: v for k, v in specs.items() if k in args.only.split(",")}
    trackers = args.trackers.split(",")
    results: dict = {}
    scratch = DATA.parent / "scratch"
    for name, spec in specs.items():
        rec = make_data(name, spec, args.quick, tag)
        print(f"workload {name}: {rec}", file=sys.stderr, flush=True)
        ceiling = measure("ceiling", rec, "framestats", scratch)
        for tracker in trackers:
            cell = {"ceiling": ceiling}
            for s in STRATEGIES[:-1]:
                cell[s] = measure(s, rec, tracker, scratch)
                print(
                    f"  {tracker:10} {s:18} {cell[s]['wall_s']:7.2f} s", file=sys.stderr, flush=True
                )
            results.setdefault(name, {})[tracker] = cell
    print_table(results)
    goals = targets(results)
    print()
    for g in goals:
        flag = "met " if g["met"] else "MISS"
        print(f"[{flag}] {g['target']}: {g['value']:.2f} {g.get('note', '')}")
    duration = time.perf_counter() - t_start
    print(f"\nbenchmark took {duration:.0f} s")
    doc = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {
            "cores": len(os.sched_getaffinity(0)),
            "cpu": platform.processor() or platform.machine(),
            "memory_gb": psutil.virtual_memory().total / 2**30,
        },
        "versions": versions(),
        "quick": args.quick,
        "duration_s": duration,
        "workloads": {
            k: {kk: vv for kk, vv in v.items() if kk != "subset_of"} for k, v in specs.items()
        },
        "results": results,
        "ratios": {w: {t: ratios(c) for t, c in per.items()} for w, per in results.items()},
        "targets": goals,
    }
    if args.plots:
        doc["plots"] = plot(results, args.plots)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(doc, indent=2))


if __name__ == "__main__":
    main()
