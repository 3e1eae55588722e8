"""Run a command and measure its whole process tree: wall, CPU, peak memory, processes.

The tree is sampled at 50 Hz (summed RSS of every live process, and how many
are alive); CPU seconds come from ``RUSAGE_CHILDREN``, which counts every
process of the tree once it has been waited for.
"""

from __future__ import annotations

import os
import resource
import subprocess
import threading
import time

import psutil


def run_measured(cmd: list[str], *, env: dict | None = None, cwd=None) -> dict:
    """Run ``cmd`` to completion; return its figures, or raise with its stderr if it failed.

    Returns
    -------
    dict
        ``wall_s``, ``cpu_s``, ``cpu_util`` (CPU over wall x usable cores),
        ``peak_rss_mb``, ``max_processes``, ``launched`` (epoch), ``stdout``.

    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    launched = time.time()
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=cwd
    )
    root = psutil.Process(proc.pid)
    peak = {"rss": 0, "procs": 0}

    def sample() -> None:
        while proc.poll() is None:
            try:
                tree = [root, *root.children(recursive=True)]
            except psutil.NoSuchProcess:
                break
            rss = alive = 0
            for p in tree:
                try:
                    rss += p.memory_info().rss
                    alive += 1
                except psutil.NoSuchProcess:
                    pass
            peak["rss"] = max(peak["rss"], rss)
            peak["procs"] = max(peak["procs"], alive)
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, err = proc.communicate()
    wall = time.perf_counter() - t0
    sampler.join()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))} failed ({proc.returncode}):\n{err[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {
        "wall_s": wall,
        "cpu_s": cpu,
        "cpu_util": cpu / (wall * len(os.sched_getaffinity(0))),
        "peak_rss_mb": peak["rss"] / 2**20,
        "max_processes": peak["procs"],
        "launched": launched,
        "stdout": out,
    }
