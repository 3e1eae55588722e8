"""Sizing a local cluster to the machine: how many workers, and how much memory each.

A local cluster's workers are single-threaded processes. Their number is the
smallest of the usable cores (Dask's ``CPU_COUNT``: affinity and cgroup
quota), what the memory budget allows for one worker's estimated footprint, and
the number of tasks, so the number of processes never grows with the number of
videos. A local profile with ``processes: false`` runs the same number of
worker threads inside the command's own process instead: no worker processes
to start and one copy of Python, Dask and the tracker's libraries, at the cost
of isolation: a tracker that crashes the interpreter ends the run (rerun it to
resume), where a worker process would just be replaced.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field

from ..errors import UsageError

__all__ = [
    "BASE_WORKER_BYTES",
    "MEMORY_FRACTION",
    "SAFETY_FACTOR",
    "Resources",
    "Sizing",
    "detect_resources",
    "estimate_footprint",
    "size_cluster",
]

logger = logging.getLogger(__name__)

#: Resident memory of an idle worker (numpy, OpenCV, PyAV, Dask) plus the free heap it keeps.
BASE_WORKER_BYTES = 480 * 2**20
#: Copies of the frame batch alive at once (decoded frames, the stack, tracker temporaries).
SAFETY_FACTOR = 3.0
#: Share of the available memory the workers may use together.
MEMORY_FRACTION = 0.8


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


def detect_resources() -> Resources:
    """Return the cores and memory this process may use (affinity, cgroup quota and limit).

    Cores are Dask's ``CPU_COUNT``; memory is the least of what the system has
    available now and distributed's ``MEMORY_LIMIT`` (RAM, cgroup and rlimit).
    """
    import psutil
    from dask.system import CPU_COUNT
    from distributed.system import MEMORY_LIMIT

    available = int(psutil.virtual_memory().available)
    memory = min(available, int(MEMORY_LIMIT))
    notes = {
        "cores": "CPU affinity and cgroup quota",
        "memory": "available now"
        + (", under the cgroup or rlimit" if MEMORY_LIMIT < available else ""),
    }
    return Resources(cores=max(1, int(CPU_COUNT)), memory=memory, notes=notes)


def estimate_footprint(frame_bytes: int, frames_held: int) -> int:
    """Estimate one worker's peak memory: base process plus the frames it holds at once."""
    return int(BASE_WORKER_BYTES + SAFETY_FACTOR * frame_bytes * frames_held)


@dataclass(frozen=True)
class Sizing:
    """The sizing decision, as recorded in the store and logged.

    Attributes
    ----------
    workers : int
        Worker processes (1 when ``processes`` is false).
    threads_per_worker : int
        1, or the worker threads when ``processes`` is false.
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
    processes: bool = True

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
    processes: bool = True,
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
        Ask for this many workers (``--workers``): never more than the tasks,
        a warning beyond the cores, refused beyond what memory holds.
    memory_limit : int, optional
        Override the bytes each worker may use.
    processes : bool
        Worker processes (the default), or as many worker threads in this
        process (one worker; its memory limit is the whole budget).

    Returns
    -------
    Sizing
        The decision and why.

    Raises
    ------
    UsageError
        If ``workers`` is below 1 or more than the memory can hold.

    """
    res = resources or detect_resources()
    footprint = estimate_footprint(frame_bytes, frames_held)
    budget = int(res.memory * MEMORY_FRACTION)
    # Worker processes each hold the base footprint; worker threads share one.
    base = 0 if processes else BASE_WORKER_BYTES
    each = max(1, footprint - base)  # stages that hold no frames (3-D) take almost nothing
    limits = {
        "cores": res.cores,
        "memory": max(1, (budget - base) // each),
        "tasks": max(1, n_tasks),
    }
    if workers is not None:
        if workers < 1:
            raise UsageError(f"--workers must be at least 1, got {workers}")
        if workers > limits["memory"]:
            raise UsageError(
                f"--workers {workers}: that many workers need about "
                f"{(base + workers * each) / 2**30:.1f} GiB, and {budget / 2**30:.1f} GiB are "
                f"free for them; ask for {limits['memory']} or fewer"
            )
        n = min(workers, limits["tasks"])
        reason = f"{n} workers as asked (--workers or the cluster profile)"
        if n < workers:
            reason = f"{n} workers: {workers} asked, but there are only {n_tasks} tasks"
        if n > res.cores:
            logger.warning("%d workers on %d usable cores: they will share the cores", n, res.cores)
    else:
        n = min(limits.values())
        binding = [k for k, v in limits.items() if v == n]
        why = {
            "cores": f"{res.cores} usable cores ({res.notes.get('cores', 'given')})",
            "memory": (
                f"memory: {budget / 2**30:.1f} GiB budget / {each / 2**20:.0f} MiB per "
                f"{'worker' if processes else 'thread'}"
            ),
            "tasks": f"only {n_tasks} tasks",
        }
        reason = f"{n} workers, limited by " + " and ".join(why[k] for k in binding)
    if not processes:
        reason = reason.replace(f"{n} workers", f"{n} worker threads in this process", 1)
        limit = memory_limit if memory_limit is not None else max(footprint, budget)
        return Sizing(1, n, int(limit), footprint, limits, reason, processes=False)
    if memory_limit is None:
        memory_limit = max(footprint, budget // n)
    return Sizing(n, 1, int(memory_limit), footprint, limits, reason)
