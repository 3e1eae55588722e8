"""OpenSim inverse kinematics: mocapflow's chunks on the cluster against one sequential
``InverseKinematicsTool`` run on the same TRC and model, the way Pose2Sim runs it.

    python benchmarks/kinematics.py [--copies 36] [--workers 1,2] [--ik-frames 120]

The real one-person sample is run once (``mocapflow run ... -p max_people=1``);
its filtered 3-D (100 frames at 60 fps) is played forwards and backwards
``--copies`` times (no jump between copies: 3,600 frames, one minute, by
default), the person's model is built once from it (``person_model``), and the
same markers are written as a TRC (``to_trc``, as ``mocapflow export`` writes
it). Then, side by side in one run:

* ``opensim tool``: ``InverseKinematicsTool`` on the TRC and the model, in this
  process (``mocapflow.osim.run_ik_tool``: the same marker weights, coordinate
  task and accuracy), reading the TRC and writing the ``.mot`` included;
* ``mocapflow``: the IK group's graph (``ik_dataset``: one task per
  ``--ik-frames`` frames, each solving ``WARMUP`` frames before its own) computed
  on a LocalCluster of 1 and of 2 worker processes, already started and with
  OpenSim imported, as the tool's process has it (that start is given apart).

Both results are compared coordinate by coordinate. Results:
docs/benchmark-kinematics.json and docs/benchmark-kinematics.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
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
REPO = HERE.parent
SAMPLE = REPO / "samples" / "pose2sim_single_person"
EXE = str(Path(sys.executable).with_name("mocapflow"))


def _long_points(store: Path, copies: int):
    import xarray as xr

    ds = xr.open_zarr(store, group="filtered", consolidated=False).load()
    parts = [ds if i % 2 == 0 else ds.isel(time=slice(None, None, -1))
             for i in range(copies)]  # fmt: skip
    long = xr.concat(parts, dim="time")
    fps = float(ds.attrs["fps"])
    long = long.assign_coords(time=np.arange(long.sizes["time"]) / fps)
    long.attrs = dict(ds.attrs)
    return long


def _warm() -> None:
    import mocapflow.kinematics  # noqa: F401
    from mocapflow import osim

    osim.require()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=36)
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--ik-frames", type=int, default=120)
    args = parser.parse_args()

    from distributed import Client, LocalCluster

    from mocapflow import osim
    from mocapflow.export import to_trc
    from mocapflow.kinematics import ik_dataset, person_model

    opensim = osim.require()
    tmp = Path(tempfile.mkdtemp(prefix="mf-kin-"))
    store = tmp / "pose.zarr"
    subprocess.run(
        [EXE, "run", SAMPLE, "-c", SAMPLE / "Calib.qca.txt", "-t", "mediapipe", "-p",
         "max_people=1", "--out", store, "-f", "trc", "--no-report"],
        check=True, capture_output=True,
    )  # fmt: skip
    points = _long_points(store, args.copies)
    n = points.sizes["time"]
    keypoints = [str(k) for k in points.keypoint.values]
    up = points.attrs["up_axis"]
    model_xml = person_model(points.position.values[..., 0], keypoints, up)
    model = tmp / "person.osim"
    model.write_text(model_xml)
    trc = to_trc(points, tmp / "long.trc")

    t0 = time.perf_counter()
    osim.run_ik_tool(model, trc, tmp / "tool.mot")
    tool_s = time.perf_counter() - t0
    tool = opensim.TimeSeriesTable(str(tmp / "tool.mot"))
    labels = list(tool.getColumnLabels())
    tool_values = tool.getMatrix().to_numpy()[:, [labels.index(c) for c in osim.COORDINATES]]

    rotational = [j for j, lin in enumerate(osim.COORDINATES.values()) if not lin]
    runs = []
    for workers in (int(w) for w in args.workers.split(",")):
        t0 = time.perf_counter()
        cluster = LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
        )
        with cluster, Client(cluster) as client:
            client.run(_warm)  # the tool's process has imported OpenSim too
            start_s = time.perf_counter() - t0
            models = {str(points.individual.values[0]): model_xml}
            lazy = ik_dataset(points, models, "filtered", args.ik_frames)
            t1 = time.perf_counter()
            done = lazy.compute()
            ik_s = time.perf_counter() - t1
        ours = np.stack([done[c].values[:, 0] for c in osim.COORDINATES], axis=1)
        diff = np.abs(ours[:, rotational] - tool_values[:, rotational])
        runs.append({
            "workers": workers,
            "cluster_start_s": round(start_s, 2),
            "ik_s": round(ik_s, 2),
            "speedup_vs_tool": round(tool_s / ik_s, 2),
            "max_diff_deg": float(np.nanmax(diff)),
            "median_rms_mm": float(np.nanmedian(done.marker_rms.values)),
            "tasks": -(-n // args.ik_frames),
        })  # fmt: skip
        print(json.dumps(runs[-1]), flush=True)

    out = {
        "date": dt.date.today().isoformat(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}",
        "opensim": opensim.__version__,
        "frames": n,
        "markers": len(osim.marker_names()),
        "coordinates": len(osim.COORDINATES),
        "tool_s": round(tool_s, 2),
        "runs": runs,
    }
    (REPO / "docs" / "benchmark-kinematics.json").write_text(json.dumps(out, indent=2) + "\n")
    lines = [
        "# OpenSim inverse kinematics: chunks on the cluster against one IK tool run",
        "",
        f"{out['date']}, {out['machine']}, OpenSim {out['opensim']}. The real sample's filtered "
        f"3-D played forwards and backwards to {n} frames (60 fps), {out['markers']} markers, "
        f"{out['coordinates']} coordinates, one model; `python benchmarks/kinematics.py`.",
        "",
        f"OpenSim's `InverseKinematicsTool`, one sequential run: **{tool_s:.1f} s**.",
        "",
        "| workers | tasks | cluster start (s) | IK (s) | speed-up against the tool | "
        "max difference (deg) | marker RMS median (mm) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        lines.append(
            f"| {r['workers']} | {r['tasks']} | {r['cluster_start_s']} | {r['ik_s']} | "
            f"{r['speedup_vs_tool']}x | {r['max_diff_deg']:.4f} | {r['median_rms_mm']:.1f} |"
        )
    (REPO / "docs" / "benchmark-kinematics.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
