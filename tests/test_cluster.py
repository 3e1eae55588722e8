"""Sizing with faked resources: cores, memory and the task count each limit workers."""

from __future__ import annotations

import pytest

from mocapflow.cluster import Resources, detect_resources, estimate_footprint, size_cluster

GIB = 2**30
FRAME_720P = 1280 * 720 * 3


def test_cores_limit():
    s = size_cluster(100, FRAME_720P, 16, Resources(cores=4, memory=64 * GIB))
    assert s.workers == 4 and "cores" in s.reason and s.threads_per_worker == 1


def test_memory_limits():
    footprint = estimate_footprint(FRAME_720P, 16)
    res = Resources(cores=16, memory=int(3 * footprint / 0.8) + 1)
    s = size_cluster(100, FRAME_720P, 16, res)
    assert s.workers == 3 and "memory" in s.reason
    assert s.memory_limit >= s.footprint


def test_task_count_limits():
    s = size_cluster(2, FRAME_720P, 16, Resources(cores=8, memory=64 * GIB))
    assert s.workers == 2 and "only 2 tasks" in s.reason


def test_bigger_frames_need_more_memory():
    res = Resources(cores=32, memory=8 * GIB)
    small = size_cluster(100, 640 * 480 * 3, 16, res)
    big = size_cluster(100, 3840 * 2160 * 3, 16, res)
    assert big.workers < small.workers


def test_override_and_validation():
    res = Resources(cores=2, memory=8 * GIB)
    assert size_cluster(100, FRAME_720P, 16, res, workers=5).workers == 5
    with pytest.raises(ValueError):
        size_cluster(100, FRAME_720P, 16, res, workers=0)


def test_worker_threads_in_this_process():
    res = Resources(cores=2, memory=8 * GIB)
    s = size_cluster(100, FRAME_720P, 16, res, processes=False)
    assert (s.workers, s.threads_per_worker, s.processes) == (1, 2, False)
    assert s.reason.startswith("2 worker threads in this process, limited by 2 usable cores")
    assert s.memory_limit == int(8 * GIB * 0.8)  # the whole budget: one process
    few = size_cluster(1, FRAME_720P, 16, res, processes=False)
    assert few.threads_per_worker == 1 and "only 1 tasks" in few.reason
    # Threads share one process's base footprint: memory allows far more of them.
    small = Resources(cores=32, memory=4 * GIB)
    procs = size_cluster(100, FRAME_720P, 16, small)
    threads = size_cluster(100, FRAME_720P, 16, small, processes=False)
    assert procs.workers == 5 and threads.threads_per_worker == 22  # (3.2 GiB - 480) / 127 MiB
    # Stages that hold no frames (triangulation, filtering: frame_bytes 0) are sized too.
    no_frames = size_cluster(8, 0, 16, res, processes=False)
    assert no_frames.threads_per_worker == 2 and "usable cores" in no_frames.reason


def test_detect_resources_is_sane():
    import os

    r = detect_resources()
    assert 1 <= r.cores <= (os.cpu_count() or 1) and r.memory > 0


HEAVY = ("xarray", "pandas", "dask.array", "numba")


def _heavy_modules() -> list[str]:
    import sys

    return [m for m in HEAVY if m in sys.modules]


def test_workers_stay_light():
    """A worker imports the reader, trackers and zarr, but not xarray or dask.array.

    Every worker pays its imports in start-up time and memory: xarray and pandas
    cost about 0.2 s and 60 MB each, dask.array (with numbagg/numba, which
    movement installs) 0.5 s and 55 MB more. Only the client builds datasets.
    """
    import gc
    import subprocess
    import sys

    from mocapflow.cluster import size_cluster, start_cluster

    # What a worker of the command line loads: the command's entry module (spawn
    # re-imports it), the preload, and the task code the setup plugin imports;
    # and the command line, which the command's own process loads.
    code = (
        "import sys, mocapflow.__main__, mocapflow.cli, mocapflow.cluster, mocapflow.tasks, "
        "mocapflow.trackers; "
        f"print([m for m in {HEAVY!r} if m in sys.modules])"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.strip() == "[]", proc.stdout + proc.stderr
    # And a live worker of a real LocalCluster, after its setup plugin ran.
    cluster, client = start_cluster(size_cluster(1, FRAME_720P, 16, workers=1), "127.0.0.1:0")
    try:
        assert list(client.run(_heavy_modules).values()) == [[]]
        # what the imports left alive is frozen, so the worker's exit (and each full
        # collection) skips it: a cluster closed in about 0.04 s instead of 0.2 s
        assert all(n > 10_000 for n in client.run(gc.get_freeze_count).values())
    finally:
        client.close()
        cluster.close()


def _closing_race_kept(dask_worker) -> list[bool]:
    import logging

    log = logging.getLogger("distributed.worker")

    def kept(msg: str) -> bool:
        record = log.makeRecord(log.name, logging.ERROR, __file__, 1, msg, (), None)
        return all(f.filter(record) for f in log.filters)

    return [
        kept("Failed to communicate with scheduler during heartbeat."),
        kept("Unexpected exception during heartbeat. Closing worker."),
    ]


def test_workers_drop_only_the_closing_heartbeat_race():
    """A worker process logs no traceback for dask/distributed#7105's race, and keeps the rest."""
    from mocapflow.cluster import size_cluster, start_cluster

    cluster, client = start_cluster(size_cluster(1, FRAME_720P, 16, workers=1), "127.0.0.1:0")
    try:
        assert list(client.run(_closing_race_kept).values()) == [[False, True]]
    finally:
        client.close()
        cluster.close()


#: Resident MB given back to the system when 44 MB of arrays (1, 3 and 40 MB) are freed.
GIVEN_BACK = (
    "import os, numpy as np\n"
    "def rss():\n"
    "    return int(open('/proc/self/statm').read().split()[1]) * os.sysconf('SC_PAGESIZE')\n"
    "def given_back():\n"
    "    arrays = [np.ones(n * 2**20, np.uint8) for n in (1, 3, 40)]\n"
    "    before = rss(); del arrays\n"
    "    return round((before - rss()) / 2**20)\n"
)


def test_worker_threads_get_the_worker_processes_malloc_settings():
    """mallopt gives worker threads what MALLOC_ENV gives worker processes: frames stay in the heap.

    With glibc's defaults, a 40 MB frame batch is mapped afresh, faulted in page
    by page, and given back to the system each time; with the workers' settings
    the heap keeps it for the next. A cluster of worker threads sets them in its
    process; one of worker processes leaves its command's process alone. A
    setting the user made in the environment stays theirs.
    """
    import os
    import subprocess
    import sys

    code = GIVEN_BACK + (
        "import sys\n"
        "from mocapflow.cluster import malloc_like_workers, size_cluster, start_cluster\n"
        "names = []\n"
        "if sys.argv[1] == 'tuned':\n"
        "    names = malloc_like_workers()\n"
        "elif sys.argv[1] != 'default':\n"
        "    sizing = size_cluster(1, 1000, 16, workers=1, processes=sys.argv[1] == 'processes')\n"
        "    cluster, client = start_cluster(sizing, '127.0.0.1:0')\n"
        "    client.close(); cluster.close()\n"
        "print(sorted(names), given_back())\n"
    )
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k != "GLIBC_TUNABLES"
    }
    both = "['MALLOC_MMAP_THRESHOLD_', 'MALLOC_TRIM_THRESHOLD_']"
    mmap = "['MALLOC_MMAP_THRESHOLD_']"
    trim_0 = "glibc.malloc.trim_threshold=0"
    cases = {  # case: (argument, environment, names set, MB given back)
        "default": ("default", {}, "[]", ">=40"),
        "tuned": ("tuned", {}, both, "0"),
        "user's MALLOC_": ("tuned", {"MALLOC_TRIM_THRESHOLD_": "0"}, mmap, ">=40"),
        "user's tunable": ("tuned", {"GLIBC_TUNABLES": trim_0}, mmap, ">=40"),
        "worker threads": ("threads", {}, "[]", "0"),
        "worker processes": ("processes", {}, "[]", ">=40"),
    }  # fmt: skip
    for case, (arg, extra, names, mb) in cases.items():
        proc = subprocess.run(
            [sys.executable, "-c", code, arg],
            capture_output=True, text=True, timeout=120, env={**env, **extra},
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        got_names, got_mb = proc.stdout.splitlines()[-1].rsplit("] ", 1)
        assert got_names + "]" == names, (case, proc.stdout)
        assert int(got_mb) >= 40 if mb == ">=40" else int(got_mb) == int(mb), (case, proc.stdout)


def _malloc_env() -> dict[str, str | None]:
    import os

    from mocapflow.cluster import MALLOC_ENV

    return {k: os.environ.get(k) for k in MALLOC_ENV}


def test_worker_processes_keep_the_users_malloc_settings(monkeypatch):
    """Worker processes get MALLOC_ENV, except a name the user set, whose value they get.

    Dask lets the environment override its pre-spawn settings; this holds us to it,
    as :func:`~mocapflow.cluster.malloc_like_workers` holds worker threads.
    """
    from mocapflow.cluster import MALLOC_ENV, size_cluster, start_cluster

    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "0")
    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_", raising=False)
    cluster, client = start_cluster(size_cluster(1, FRAME_720P, 16, workers=1), "127.0.0.1:0")
    try:
        (env,) = client.run(_malloc_env).values()
    finally:
        client.close()
        cluster.close()
    assert env == {
        "MALLOC_MMAP_THRESHOLD_": MALLOC_ENV["MALLOC_MMAP_THRESHOLD_"],
        "MALLOC_TRIM_THRESHOLD_": "0",
    }


def test_the_commands_blas_setting_is_the_workers():
    """The command's own process runs BLAS as its workers do (``COMMAND_ENV``)."""
    from mocapflow.__main__ import COMMAND_ENV
    from mocapflow.cluster import WORKER_ENV

    assert COMMAND_ENV.items() <= WORKER_ENV.items()


def test_a_live_worker_loads_only_the_worker_module_of_the_cluster_package():
    """Dask preloads mocapflow.cluster.worker into each worker process; the profiles
    (mocapflow's YAML reading and profile checks), the sizing and the session stay out.
    (Dask itself imports yaml for its own config, in every process, so that module is
    no measure: the profile code is.) The probe is defined in the script's __main__, so
    it travels by value: a function of this test module would make the worker import
    the module, and with it what the module imports."""
    import subprocess
    import sys

    code = (
        "from mocapflow.cluster.session import start_cluster\n"
        "from mocapflow.cluster.sizing import size_cluster\n"
        "def probe():\n"
        "    import sys\n"
        "    return sorted(m for m in sys.modules if m.startswith('mocapflow.cluster'))\n"
        "if __name__ == '__main__':\n"
        f"    cluster, client = start_cluster(size_cluster(1, {FRAME_720P}, 16, workers=1),"
        " '127.0.0.1:0')\n"
        "    print(list(client.run(probe).values()))\n"
        "    client.close(); cluster.close()\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    loaded = proc.stdout.strip().splitlines()[-1]
    assert loaded == "[['mocapflow.cluster', 'mocapflow.cluster.worker']]", loaded
