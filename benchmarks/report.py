"""Render a benchmark JSON (from run.py) as the markdown tables of docs/performance.md.

python benchmarks/report.py docs/benchmark-full.json > docs/performance-tables.md
"""

from __future__ import annotations

import json
import sys

from run import rows, targets


def render(doc: dict) -> str:
    lines = []
    m, v = doc["machine"], doc["versions"]
    lines.append(
        f"Run of {doc['date']} on {m['cores']} cores, {m['memory_gb']:.0f} GiB "
        f"({m['cpu']}); Python {v['python']}, numpy {v['numpy']}, OpenCV {v['opencv']}, "
        f"PyAV {v['av']}, dask {v['dask']}, distributed {v['distributed']}, "
        f"xarray {v['xarray']}, zarr {v['zarr']}. The run took {doc['duration_s'] / 60:.0f} "
        "minutes."
    )
    lines.append("")
    lines.append(
        "| workload | tracker | strategy | wall s | excl. start-up s | peak MB | "
        "processes | CPU % |"
    )
    lines.append("|---|---|---|---:|---:|---:|---:|---:|")
    for w, t, s, r, excl in rows(doc["results"]):
        lines.append(
            f"| {w} | {t} | {s} | {r['wall_s']:.2f} | {excl} | "
            f"{r['peak_rss_mb']:.0f} | {r['max_processes']} | {100 * r['cpu_util']:.0f} |"
        )
    lines.append("")
    lines.append(
        "mocapflow against each baseline (speed-up > 1 and memory ratio < 1 favour mocapflow):"
    )
    lines.append("")
    lines.append(
        "| workload | tracker | baseline | speed-up | speed-up excl. start-up | memory ratio |"
    )
    lines.append("|---|---|---|---:|---:|---:|")
    for w, per in doc["ratios"].items():
        for t, by in per.items():
            for b, r in by.items():
                lines.append(
                    f"| {w} | {t} | {b} | {r['speedup']:.2f} | "
                    f"{r['speedup_excl_startup']:.2f} | {r['memory_ratio']:.2f} |"
                )
    lines.append("")
    lines.append("| target | value | met |")
    lines.append("|---|---:|---|")
    for g in targets(doc["results"]):
        note = f" ({g['note']})" if g.get("note") else ""
        lines.append(f"| {g['target']}{note} | {g['value']:.2f} | {'yes' if g['met'] else 'no'} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render(json.loads(open(sys.argv[1]).read())))
