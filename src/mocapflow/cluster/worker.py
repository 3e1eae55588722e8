"""What runs inside a worker: its environment, its set-up plugin, and Dask's preload hook.

Dask preloads this module into every local worker process, so it imports
nothing of mocapflow's profiles or sizing: only what a worker needs.
"""

from __future__ import annotations

import ctypes
import gc
import logging
import os
import signal
import threading

from distributed import WorkerPlugin

__all__ = [
    "MALLOC_ENV",
    "WORKER_ENV",
    "ClosingRace",
    "WorkerSetup",
    "dask_setup",
    "malloc_like_workers",
]

logger = logging.getLogger(__name__)

#: glibc settings for workers. Dask's nanny sets MALLOC_TRIM_THRESHOLD_=65536, and any
#: explicit trim threshold freezes glibc's adaptive mmap threshold, so every decoded frame
#: (about 1-6 MB) became a fresh mmap with page faults: measured 2x slower tasks, mostly
#: system time. Frames below 64 MiB now come from the heap, which keeps up to 128 MiB free.
MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": str(64 * 2**20), "MALLOC_TRIM_THRESHOLD_": str(128 * 2**20)}
#: glibc's ``mallopt`` parameter for each of MALLOC_ENV's names (malloc.h).
MALLOPT = {"MALLOC_TRIM_THRESHOLD_": -1, "MALLOC_MMAP_THRESHOLD_": -3}
#: Set in every worker before any capture opens, so workers do not oversubscribe cores.
WORKER_ENV = {
    "OPENCV_FFMPEG_THREADS": "1",
    "MOCAPFLOW_DECODE_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
}


def _user_set(name: str) -> bool:
    """Whether the user set a MALLOC_ENV name, or its glibc tunable, in the environment."""
    tunable = "glibc.malloc." + name.removeprefix("MALLOC_").removesuffix("_").lower()
    return name in os.environ or tunable in os.environ.get("GLIBC_TUNABLES", "")


def malloc_like_workers() -> list[str]:
    """Give this process the worker processes' glibc settings (:data:`MALLOC_ENV`).

    Worker processes get MALLOC_ENV in their environment, which glibc reads as a
    process starts; worker threads of this process (``processes: false``, as in
    ``--cluster threads``) get the same through ``mallopt``. Without it glibc
    gave the heap's free top back to the system after each frame and faulted it
    in again, page by page, for the next: about 0.6 CPU s of a 4-video ChArUco
    run. A setting the user made (``MALLOC_*_``, or ``GLIBC_TUNABLES``) stays.
    glibc cannot read these settings back, so the process keeps them after the
    cluster closes: a freed heap of up to 128 MiB is kept for reuse.

    Returns
    -------
    list of str
        The names set: none where the C library is not glibc.

    """
    try:
        glibc = (os.confstr("CS_GNU_LIBC_VERSION") or "").startswith("glibc")
        mallopt = ctypes.CDLL(None).mallopt if glibc else None
    except (ValueError, OSError, AttributeError):  # no such name, or no mallopt
        mallopt = None
    if mallopt is None:
        return []
    done = []
    for name, value in MALLOC_ENV.items():
        if _user_set(name):
            continue
        if mallopt(MALLOPT[name], int(value)) == 1:
            done.append(name)
        else:
            logger.debug("glibc refused %s=%s", name, value)
    return done


class WorkerSetup(WorkerPlugin):
    """Prepare each worker, including replacements of dead ones.

    Pins OpenCV to one thread (the cluster already uses every core) and imports
    the task code, so its one-time start-up cost is not paid inside the first
    task. In a worker process of this machine's cluster (``freeze``), it then
    freezes what is alive (``gc.freeze``): the imports' objects live as long as
    the worker, and a frozen heap is skipped by each full collection and by the
    collections of the interpreter's exit, which took most of the 0.2 s a
    cluster of two worker processes needed to close. Never in the command's own
    process (worker threads) nor on workers it does not own, where a frozen
    object would never be collected again. (Worker threads of the command's own
    process get one decoder thread through the tasks' arguments, and
    :class:`Session` gives OpenCV's thread count back once their cluster is
    closed.)
    """

    def __init__(self, freeze: bool = False) -> None:
        self.freeze = freeze

    def setup(self, worker) -> None:  # noqa: D102
        import cv2

        from .. import tasks  # noqa: F401  (imports the reader, the trackers and zarr)

        cv2.setNumThreads(1)
        # performance_report sizes the workers' deep profile trees, which overflows
        # dask's recursive sizeof and warns once per worker; the fallback is harmless.
        logging.getLogger("distributed.sizeof").setLevel(logging.ERROR)
        if self.freeze:
            gc.freeze()


class ClosingRace(logging.Filter):
    """Drop the worker's error log of a heartbeat that meets the scheduler closing its comms.

    When a cluster closes, the scheduler removes each worker while the worker may
    have a heartbeat in flight; the worker then logs "Failed to communicate with
    scheduler during heartbeat." with a traceback, after a run that went well
    (dask/distributed#7105). A scheduler that really went away mid-run shows
    otherwise: its tasks fail and the command says so.
    """

    def filter(self, record: logging.LogRecord) -> bool:  # noqa: D102
        return not str(record.msg).startswith("Failed to communicate with scheduler during heart")


def dask_setup(worker) -> None:
    """Prepare a local worker process as it starts (Dask's preload hook; see start_cluster).

    The worker ignores SIGINT: Ctrl-C (to the whole process group) reaches the
    command, which closes the cluster in order and prints one line, instead of
    every worker printing its traceback. The workers' own log is kept to errors,
    less the closing race's (:class:`ClosingRace`).
    """
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.getLogger("distributed").setLevel(logging.ERROR)
    logging.getLogger("distributed.worker").addFilter(ClosingRace())
