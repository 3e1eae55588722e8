"""Size a LocalCluster to the machine and the work, and start it on loopback.

Workers are single-threaded processes (decoding and tracking hold the GIL for
long stretches). Their number is the smallest of:

* the usable cores (CPU affinity and any cgroup CPU quota),
* what the memory budget allows for one worker's estimated footprint,
* the number of tasks.

So the number of processes never grows with the number of videos.
"""

from __future__ import annotations

import logging
import math
import os
import socket
from dataclasses import asdict, dataclass, field
from pathlib import Path

import dask
import psutil
from distributed import Client, LocalCluster, WorkerPlugin

__all__ = [
    "BASE_WORKER_BYTES",
    "Resources",
    "Sizing",
    "WORKER_ENV",
    "detect_resources",
    "estimate_footprint",
    "size_cluster",
    "start_cluster",
    "WorkerSetup",
    "connect",
    "open_cluster",
]

logger = logging.getLogger(__name__)

#: Resident memory of an idle worker (numpy, OpenCV, PyAV, Dask) plus the free heap it keeps.
BASE_WORKER_BYTES = 480 * 2**20
#: Copies of the frame batch alive at once (decoded frames, the stack, tracker temporaries).
SAFETY_FACTOR = 3.0
#: Share of the available memory the workers may use together.
MEMORY_FRACTION = 0.8
#: glibc settings for workers. Dask's nanny sets MALLOC_TRIM_THRESHOLD_=65536, and any
#: explicit trim threshold freezes glibc's adaptive mmap threshold, so every decoded frame
#: (about 1-6 MB) became a fresh mmap with page faults: measured 2x slower tasks, mostly
#: system time. Frames below 64 MiB now come from the heap, which keeps up to 128 MiB free.
MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": str(64 * 2**20), "MALLOC_TRIM_THRESHOLD_": str(128 * 2**20)}
#: Set in every worker before any capture opens, so workers do not oversubscribe cores.
WORKER_ENV = {
    "OPENCV_FFMPEG_THREADS": "1",
    "MOCAPFLOW_DECODE_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
}


@dataclass(frozen=True)
class Resources:
    """What this process may use.

    Attributes
    ----------
    cores : int
        Usable cores.
    memory : int
        Usable memory in bytes.
    notes : dict
        Where each figure came from.

    """

    cores: int
    memory: int
    notes: dict = field(default_factory=dict)


def _cgroup_cpu_limit() -> float | None:
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            return int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:  # cgroup v1
        quota = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us").read_text())
        period = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us").read_text())
        if quota > 0:
            return quota / period
    except (OSError, ValueError):
        pass
    return None


def _cgroup_memory_free() -> int | None:
    for limit_file, usage_file in (
        ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
        (
            "/sys/fs/cgroup/memory/memory.limit_in_bytes",
            "/sys/fs/cgroup/memory/memory.usage_in_bytes",
        ),
    ):
        try:
            raw = Path(limit_file).read_text().strip()
            if raw == "max" or int(raw) >= 2**60:
                continue
            return max(0, int(raw) - int(Path(usage_file).read_text()))
        except (OSError, ValueError):
            continue
    return None


def detect_resources() -> Resources:
    """Return the cores and memory this process may use, honouring affinity and cgroups."""
    try:
        cores = len(os.sched_getaffinity(0))
        notes = {"cores": f"{cores} in this process's CPU affinity"}
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
        notes = {"cores": f"{cores} from os.cpu_count()"}
    quota = _cgroup_cpu_limit()
    if quota is not None and math.floor(quota) < cores:
        cores = max(1, math.floor(quota))
        notes["cores"] = f"{cores} from the cgroup CPU quota ({quota:g} CPUs)"
    memory = int(psutil.virtual_memory().available)
    notes["memory"] = f"{memory / 2**30:.1f} GiB available"
    cg = _cgroup_memory_free()
    if cg is not None and cg < memory:
        memory = cg
        notes["memory"] = f"{memory / 2**30:.1f} GiB left under the cgroup memory limit"
    return Resources(cores=max(1, cores), memory=memory, notes=notes)


def estimate_footprint(frame_bytes: int, frames_held: int) -> int:
    """Estimate one worker's peak memory: base process plus the frames it holds at once."""
    return int(BASE_WORKER_BYTES + SAFETY_FACTOR * frame_bytes * frames_held)


@dataclass(frozen=True)
class Sizing:
    """The sizing decision, as recorded in the store and logged.

    Attributes
    ----------
    workers : int
        Worker processes.
    threads_per_worker : int
        Always 1.
    memory_limit : int
        Bytes each worker may use before Dask pauses or restarts it.
    footprint : int
        Estimated bytes one worker needs.
    limits : dict
        The worker count each constraint allows (cores, memory, tasks).
    reason : str
        One line: which constraint decided, in words.

    """

    workers: int
    threads_per_worker: int
    memory_limit: int
    footprint: int
    limits: dict
    reason: str

    def to_dict(self) -> dict:
        """Return the decision as JSON-serialisable data."""
        return asdict(self)


def size_cluster(
    n_tasks: int,
    frame_bytes: int,
    frames_held: int,
    resources: Resources | None = None,
    workers: int | None = None,
    memory_limit: int | None = None,
) -> Sizing:
    """Decide the number of workers and their memory limit.

    Parameters
    ----------
    n_tasks : int
        Tasks in the graph.
    frame_bytes : int
        Bytes of the largest decoded frame (width x height x 3).
    frames_held : int
        Frames a worker holds at once (the decode batch).
    resources : Resources, optional
        Cores and memory; detected when omitted (tests pass fakes).
    workers : int, optional
        Override the worker count (``--workers``).
    memory_limit : int, optional
        Override the bytes each worker may use.

    Returns
    -------
    Sizing
        The decision and why.

    """
    res = resources or detect_resources()
    footprint = estimate_footprint(frame_bytes, frames_held)
    budget = int(res.memory * MEMORY_FRACTION)
    limits = {
        "cores": res.cores,
        "memory": max(1, budget // footprint),
        "tasks": max(1, n_tasks),
    }
    if workers is not None:
        if workers < 1:
            raise ValueError(f"--workers must be at least 1, got {workers}")
        n = workers
        reason = f"{n} workers as asked (--workers or the cluster profile)"
    else:
        n = min(limits.values())
        binding = [k for k, v in limits.items() if v == n]
        why = {
            "cores": f"{res.cores} usable cores ({res.notes.get('cores', 'given')})",
            "memory": (
                f"memory: {budget / 2**30:.1f} GiB budget / {footprint / 2**20:.0f} MiB per worker"
            ),
            "tasks": f"only {n_tasks} tasks",
        }
        reason = f"{n} workers, limited by " + " and ".join(why[k] for k in binding)
    if memory_limit is None:
        memory_limit = max(footprint, budget // n)
    return Sizing(
        workers=n,
        threads_per_worker=1,
        memory_limit=int(memory_limit),
        footprint=footprint,
        limits=limits,
        reason=reason,
    )


class WorkerSetup(WorkerPlugin):
    """Prepare each worker, including replacements of dead ones.

    Pins OpenCV to one thread (the cluster already uses every core) and imports
    the task code, so its one-time start-up cost is not paid inside the first task.
    """

    def setup(self, worker) -> None:  # noqa: D102
        import cv2

        from . import tasks  # noqa: F401  (imports the reader, trackers, xarray and zarr)

        cv2.setNumThreads(1)
        # performance_report sizes the workers' deep profile trees, which overflows
        # dask's recursive sizeof and warns once per worker; the fallback is harmless.
        logging.getLogger("distributed.sizeof").setLevel(logging.ERROR)


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def start_cluster(sizing: Sizing, dashboard_address: str = "127.0.0.1:8787"):
    """Start a LocalCluster on loopback as sized, and a Client for it.

    The dashboard takes the asked port if it is free, else any free port on
    the same host.

    Parameters
    ----------
    sizing : Sizing
        The decision from :func:`size_cluster`.
    dashboard_address : str
        ``host:port`` for the dashboard.

    Returns
    -------
    tuple
        ``(cluster, client)``; close both when done.

    """
    host, _, port = dashboard_address.rpartition(":")
    host = host or "127.0.0.1"
    if port and port != "0" and not _port_free(host, int(port)):
        logger.info("port %s on %s is taken; the dashboard takes a free one", port, host)
        dashboard_address = f"{host}:0"
    # The nanny exports pre-spawn variables before starting each worker (and each
    # replacement), which is the only way to reach glibc, which reads them at start-up.
    pre_spawn = {**dask.config.get("distributed.nanny.pre-spawn-environ", {}), **MALLOC_ENV}
    with dask.config.set({"distributed.nanny.pre-spawn-environ": pre_spawn}):
        cluster = LocalCluster(
            n_workers=sizing.workers,
            threads_per_worker=1,
            processes=True,
            memory_limit=sizing.memory_limit,
            host="127.0.0.1",
            dashboard_address=dashboard_address,
            env=dict(WORKER_ENV),
        )
    client = Client(cluster)
    client.register_plugin(WorkerSetup(), name="mocapflow-worker-setup")
    logger.info("cluster: %s; dashboard %s", sizing.reason, client.dashboard_link)
    return cluster, client


def connect(profile: dict):
    """Open a client for an ``address``, ``slurm`` or ``pbs`` profile.

    Parameters
    ----------
    profile : dict
        A profile from :func:`mocapflow.config.load_profile`.

    Returns
    -------
    tuple
        ``(cluster or None, client, description)``; close the client, then the cluster.
    """
    from .config import SCALING, jobqueue_class

    if profile["type"] == "address":
        if "scheduler_file" in profile:
            client = Client(scheduler_file=str(profile["scheduler_file"]))
            where = f"the scheduler in {profile['scheduler_file']}"
        else:
            client = Client(profile["address"])
            where = f"the scheduler at {profile['address']}"
        client.register_plugin(WorkerSetup(), name="mocapflow-worker-setup")
        return None, client, where
    kwargs = {k: v for k, v in profile.items() if k not in SCALING | {"type", "name", "source"}}
    cluster = jobqueue_class(profile["type"])(**kwargs)
    if "adapt" in profile:
        cluster.adapt(**profile["adapt"])
        scale = f"adapting between {profile['adapt']} jobs"
    else:
        cluster.scale(jobs=profile.get("jobs", 1))
        scale = f"{profile.get('jobs', 1)} jobs"
    client = Client(cluster)
    client.register_plugin(WorkerSetup(), name="mocapflow-worker-setup")
    return cluster, client, f"{profile['type']} profile {profile['name']!r}, {scale}"


def open_cluster(
    profile: dict,
    n_tasks: int,
    frame_bytes: int,
    frames_held: int,
    workers: int | None = None,
    dashboard_address: str | None = None,
):
    """Open a client for any profile: a sized LocalCluster, or :func:`connect`.

    Parameters
    ----------
    profile : dict
        A profile from :func:`mocapflow.config.load_profile`.
    n_tasks, frame_bytes, frames_held
        The work, for sizing a local cluster (see :func:`size_cluster`).
    workers : int, optional
        Override the profile's worker count.
    dashboard_address : str, optional
        Override the profile's dashboard address.

    Returns
    -------
    tuple
        ``(cluster or None, client, sizing or None, description)``; close the
        client, then the cluster.
    """
    if profile.get("type", "local") != "local":
        cluster, client, where = connect(profile)
        return cluster, client, None, where
    sizing = size_cluster(
        n_tasks,
        frame_bytes,
        frames_held,
        workers=workers or profile.get("workers"),
        memory_limit=profile.get("memory_limit"),
    )
    address = dashboard_address or profile.get("dashboard_address", "127.0.0.1:8787")
    cluster, client = start_cluster(sizing, address)
    return cluster, client, sizing, sizing.reason
