"""Clusters: profiles from ``cluster.yaml``, sizing to the machine, one owner from start to close.

A profile names where the work runs: ``local`` (a LocalCluster sized to this
machine, the default), ``address`` (a running scheduler), or ``slurm``/``pbs``
(dask-jobqueue). :class:`Session` opens the one a command asked for, and
closes what it opened; every command that computes goes through it.

A local cluster's workers are single-threaded processes. Their number is the
smallest of the usable cores (Dask's ``CPU_COUNT``: affinity and cgroup
quota), what the memory budget allows for one worker's estimated footprint, and
the number of tasks, so the number of processes never grows with the number of
videos. A local profile with ``processes: false`` runs the same number of
worker threads inside the command's own process instead: no worker processes
to start (a quicker start-up) and one copy of Python, Dask and the tracker's
libraries (less memory; docs/performance.md has the figures), at the cost of
isolation: a tracker that crashes the interpreter ends the run (rerun it to
resume), where a worker process would just be replaced. Decoding, OpenCV and
MediaPipe release the GIL, so the threads share the cores well; a tracker
written in pure Python would not.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import inspect
import json
import logging
import os
import signal
import socket
import threading
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import dask
import yaml
from dask.utils import parse_bytes
from distributed import Client, LocalCluster, WorkerPlugin

from .errors import ConfigError, UsageError
from .schema import BATCH_FRAMES, DASHBOARD_ADDRESS

__all__ = [
    "BASE_WORKER_BYTES",
    "HPC_INSTALL",
    "PROFILE_TYPES",
    "WORKER_ENV",
    "Resources",
    "bound_link",
    "Session",
    "Sizing",
    "ClosingRace",
    "Work",
    "WorkerSetup",
    "dask_setup",
    "detect_resources",
    "estimate_footprint",
    "jobqueue_class",
    "job_script",
    "load_profile",
    "malloc_like_workers",
    "parse_address",
    "size_cluster",
    "start_cluster",
]

logger = logging.getLogger(__name__)

# --- profiles ---------------------------------------------------------------------------

DEFAULT_FILE = "cluster.yaml"
#: Keys each profile type accepts, besides ``type``.
PROFILE_TYPES: dict[str, set[str] | None] = {
    "local": {"workers", "memory_limit", "dashboard_address", "processes"},
    "address": {"address", "scheduler_file", "timeout"},
    "slurm": None,  # every keyword of dask-jobqueue's SLURMCluster, plus jobs / adapt
    "pbs": None,  # every keyword of PBSCluster, plus jobs / adapt
}
SCALING = {"jobs", "adapt"}
#: Seconds to wait for a remote scheduler (an ``address`` profile's ``timeout``).
CONNECT_TIMEOUT = 10.0
HPC_INSTALL = "pip install 'mocapflow[hpc]' (or: pip install dask-jobqueue)"
BUILTIN = {"local": {"type": "local"}, "threads": {"type": "local", "processes": False}}
_META = {"type", "name", "source"}


def jobqueue_class(kind: str):
    """Return dask-jobqueue's cluster class for ``slurm`` or ``pbs``.

    Raises
    ------
    ConfigError
        If dask-jobqueue is not installed; the message says what to install.

    """
    try:
        import dask_jobqueue
    except ImportError:
        raise ConfigError(f"the {kind} profile needs dask-jobqueue: {HPC_INSTALL}") from None
    return {"slurm": dask_jobqueue.SLURMCluster, "pbs": dask_jobqueue.PBSCluster}[kind]


def _jobqueue_keys(kind: str) -> set[str]:
    from dask_jobqueue.core import Job, JobQueueCluster

    skip = {"self", "scheduler", "job_cls", "loop", "config_name", "base_class_kwargs"}
    skip |= {"job_kwargs", "asynchronous", "kwargs"}
    keys = set()
    for c in (jobqueue_class(kind).job_cls, Job, JobQueueCluster):
        keys |= set(inspect.signature(c.__init__).parameters)
    return keys - skip


def _read(path: Path) -> dict:
    try:
        doc = yaml.safe_load(path.read_text()) or {}
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read cluster profiles ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise ConfigError(
            f"{path}: not a text file in UTF-8; give a cluster profiles YAML file"
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(
            f"{path}: not valid YAML{at} ({problem}); fix the cluster profiles file"
        ) from None
    if not isinstance(doc, dict) or not isinstance(doc.get("profiles", {}), dict):
        raise ConfigError(f"{path}: expected a mapping with a 'profiles' mapping")
    return doc


def _check_jobqueue(where: str, profile: dict) -> None:
    if "jobs" in profile and "adapt" in profile:
        raise ConfigError(f"{where}: give jobs or adapt, not both")
    if "jobs" in profile and (not isinstance(profile["jobs"], int) or profile["jobs"] < 1):
        raise ConfigError(f"{where}: jobs must be a positive integer")
    adapt = profile.get("adapt")
    if adapt is not None and (
        not isinstance(adapt, dict) or set(adapt) - {"minimum_jobs", "maximum_jobs"}
    ):
        raise ConfigError(f"{where}: adapt takes minimum_jobs and maximum_jobs")


def _check_local(where: str, profile: dict) -> None:
    workers = profile.get("workers")
    if workers is not None and (not isinstance(workers, int) or workers < 1):
        raise ConfigError(f"{where}: workers must be a positive integer or auto")
    if "memory_limit" in profile:
        try:
            profile["memory_limit"] = int(parse_bytes(profile["memory_limit"]))
        except (ValueError, TypeError):
            raise ConfigError(
                f"{where}: memory_limit {profile['memory_limit']!r} is not a size like 4GiB"
            ) from None
    if "dashboard_address" in profile:
        parse_address(profile["dashboard_address"], f"{where}: dashboard_address")
    if not isinstance(profile.get("processes", True), bool):
        raise ConfigError(f"{where}: processes must be true or false")


def load_profile(name: str | None = None, path: str | Path | None = None) -> dict:
    """Return one profile, validated, with ``auto`` values removed.

    Parameters
    ----------
    name : str, optional
        Profile name; default the file's ``default``, else ``local``.
    path : str or pathlib.Path, optional
        The profiles file; default ``./cluster.yaml`` if it exists.

    Returns
    -------
    dict
        ``type``, ``name``, ``source`` (the file, or "built-in") and the
        profile's settings (``memory_limit`` in bytes).

    Raises
    ------
    ConfigError
        If the file, the profile name, its type or a key is invalid.

    """
    source = Path(path) if path else Path(DEFAULT_FILE)
    if path and not source.is_file():
        raise ConfigError(f"{source}: no such cluster profiles file")
    doc = _read(source) if source.is_file() else {"profiles": BUILTIN}
    where_from = str(source) if source.is_file() else "built-in"
    profiles = {**BUILTIN, **(doc.get("profiles") or {})}
    name = name or doc.get("default") or "local"
    if name not in profiles:
        raise ConfigError(
            f"{source}: no cluster profile {name!r}; valid names: {', '.join(sorted(profiles))}"
        )
    profile = dict(profiles[name] or {})
    kind = profile.pop("type", name)
    if kind not in PROFILE_TYPES:
        raise ConfigError(
            f"{source}: profile {name!r} has type {kind!r}; supported types: "
            f"{', '.join(sorted(PROFILE_TYPES))}"
        )
    valid = PROFILE_TYPES[kind] or (_jobqueue_keys(kind) | SCALING)
    unknown = sorted(set(profile) - valid)
    if unknown:
        raise ConfigError(
            f"{source}: profile {name!r}: unknown key {unknown[0]!r}; valid keys: "
            f"{', '.join(sorted(valid))}"
        )
    where = f"{source}: profile {name!r}"
    if kind == "address" and len({"address", "scheduler_file"} & set(profile)) != 1:
        raise ConfigError(
            f"{where}: give exactly one of address (tcp://host:port) or scheduler_file"
        )
    if kind == "address" and "timeout" in profile:
        t = profile["timeout"]
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not t > 0:
            raise ConfigError(f"{where}: timeout {t!r} must be a number of seconds above 0")
    if kind in ("slurm", "pbs"):
        _check_jobqueue(where, profile)
    profile = {k: v for k, v in profile.items() if v not in (None, "auto")}
    if kind == "local":
        _check_local(where, profile)
    return {"type": kind, "name": name, "source": where_from, **profile}


def _jobqueue_cluster(profile: dict):
    kwargs = {k: v for k, v in profile.items() if k not in SCALING | _META}
    return jobqueue_class(profile["type"])(**kwargs)


def job_script(profile: dict) -> str:
    """Return the job script a ``slurm`` or ``pbs`` profile would submit (nothing is submitted)."""
    cluster = _jobqueue_cluster(profile)
    try:
        return cluster.job_script()
    finally:
        cluster.close()


def parse_address(address: str, what: str = "--dashboard") -> tuple[str, int]:
    """Split ``host:port`` and check it; return ``(host, port)``.

    Raises
    ------
    UsageError
        If it is not ``host:port`` with a port from 0 to 65535.

    """
    host, sep, port = str(address).rpartition(":")
    try:
        number = int(port)
    except ValueError:
        number = -1
    if not sep or not 0 <= number <= 65535:
        raise UsageError(f"{what} {address!r}: write it as host:port, e.g. {DASHBOARD_ADDRESS}")
    if ":" in host:  # [::1]:8787: Dask's services split their address on every colon
        raise UsageError(
            f"{what} {address!r}: Dask's dashboard cannot listen on an IPv6 address; use "
            f"an IPv4 one, e.g. {DASHBOARD_ADDRESS}"
        )
    return host or "127.0.0.1", number


def check_listen(host: str, what: str = "--dashboard") -> None:
    """Refuse a host this machine cannot listen on (not one of its addresses).

    Raises
    ------
    UsageError
        Naming the host and the fix.

    """
    try:
        infos = socket.getaddrinfo(host, 0, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise UsageError(
            f"{what} {host}: unknown host ({exc.strerror}); use {DASHBOARD_ADDRESS}"
        ) from None
    error = None
    for family, kind, proto, _, addr in infos:
        try:
            with socket.socket(family, kind, proto) as sock:
                sock.bind(addr)
            return
        except OSError as exc:
            error = exc
    raise UsageError(
        f"{what} {host}: this machine cannot listen there ({error.strerror if error else ''}: "
        f"not one of its addresses); use {DASHBOARD_ADDRESS}, or an address of this machine"
    )


def _loopback(host: str) -> bool:
    return host in ("127.0.0.1", "localhost", "::1") or host.startswith("127.")


# --- sizing -----------------------------------------------------------------------------

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

        from . import tasks  # noqa: F401  (imports the reader, the trackers and zarr)

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


def bound_link(link: str, host: str, scheduler_address: str) -> str:
    """Return the dashboard link with the host it listens on.

    A cluster of worker threads names its scheduler by the machine's address
    (Dask's in-memory transport), which Dask also puts in the dashboard link,
    though the dashboard listens on ``host`` only. A link that does not name
    the scheduler's host (a ``distributed.dashboard.link`` template, a proxy)
    is returned as it is.
    """
    from urllib.parse import urlsplit

    from distributed.comm import get_address_host

    host = host.strip("[]")
    parts = urlsplit(link)
    named = get_address_host(scheduler_address).strip("[]")
    if host in ("", "0.0.0.0", "::") or parts.port is None or parts.hostname != named:
        return link
    name = f"[{host}]" if ":" in host else host
    return parts._replace(netloc=f"{name}:{parts.port}").geturl()


@contextlib.contextmanager
def _port_taken_quietly():
    """Drop distributed's four-line warning that the dashboard's port is taken.

    The dashboard then listens on a free port, and the address it bound is what
    the command prints.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Port .* is already in use", category=UserWarning)
        yield


def start_cluster(sizing: Sizing, dashboard_address: str = DASHBOARD_ADDRESS):
    """Start a LocalCluster on loopback as sized, and a Client for it.

    If the dashboard's port is taken, distributed serves it on a free one;
    ``client.dashboard_link`` is the address actually bound.

    Returns
    -------
    tuple
        ``(cluster, client)``; close the client, then the cluster.

    """
    host, port = parse_address(dashboard_address)
    if not _loopback(host):
        logger.warning(
            "the dashboard listens on %s, which other machines may reach; "
            "use 127.0.0.1 unless you mean it",
            host,
        )
    if not sizing.processes:
        # Worker threads in this process: no nanny, no spawned interpreters, and no
        # network listener (the scheduler talks to its worker in memory). They get
        # the worker processes' glibc settings, which those get from pre-spawn below.
        malloc_like_workers()
        with _port_taken_quietly():
            cluster = LocalCluster(
                n_workers=1,
                threads_per_worker=sizing.threads_per_worker,
                processes=False,
                memory_limit=sizing.memory_limit,
                dashboard_address=f"{host}:{port}",
                worker_dashboard_address=f"{host}:0",  # its metrics page, on the same host
            )
        client = Client(cluster)
        client.register_plugin(WorkerSetup(), name="mocapflow-worker-setup")
        link = bound_link(client.dashboard_link, host, cluster.scheduler_address)
        logger.info("cluster: %s; dashboard %s", sizing.reason, link)
        return cluster, client
    # The nanny exports pre-spawn variables before starting each worker (and each
    # replacement), which is the only way to reach glibc, which reads them at start-up.
    pre_spawn = {**dask.config.get("distributed.nanny.pre-spawn-environ", {}), **MALLOC_ENV}
    preload = [*dask.config.get("distributed.worker.preload", []), __name__]
    settings = {
        "distributed.nanny.pre-spawn-environ": pre_spawn,
        "distributed.worker.preload": preload,
    }
    with dask.config.set(settings), _port_taken_quietly():
        cluster = LocalCluster(
            n_workers=sizing.workers,
            threads_per_worker=1,
            processes=True,
            memory_limit=sizing.memory_limit,
            host="127.0.0.1",
            dashboard_address=f"{host}:{port}",
            env=dict(WORKER_ENV),
        )
    client = Client(cluster)
    client.register_plugin(WorkerSetup(freeze=True), name="mocapflow-worker-setup")
    logger.info("cluster: %s; dashboard %s", sizing.reason, client.dashboard_link)
    return cluster, client


def _identify(address: str, timeout: float) -> str | None:
    """Ask a Dask endpoint what it is, giving up after ``timeout`` seconds in all.

    ``Client`` waits without end for an endpoint that accepts the connection and
    never answers (an HTTP server, a stopped process); this handshake does not.

    Raises
    ------
    TimeoutError
        If the endpoint does not answer in time.

    """
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    from distributed.comm import connect

    async def ask():
        comm = await connect(address, timeout=timeout)
        try:
            await comm.write({"op": "identity", "reply": True})
            return await comm.read()
        finally:
            comm.abort()

    def run():
        try:
            return asyncio.run(asyncio.wait_for(ask(), timeout))
        except TimeoutError:
            raise TimeoutError(f"no answer in {timeout:g} s") from None

    with ThreadPoolExecutor(1) as pool:  # its own event loop, whatever the caller runs
        reply = pool.submit(run).result()
    return reply.get("type") if isinstance(reply, dict) else None


def reach(profile: dict) -> tuple[str, str]:
    """Check that an ``address`` profile's scheduler answers, within its ``timeout``.

    One handshake asks the endpoint what it is; nothing else is opened.

    Returns
    -------
    tuple
        ``(address, where)``: the scheduler's address, and where it is in words.

    Raises
    ------
    ConfigError
        One line naming the profile, the address and the fix: a scheduler file
        that does not exist or cannot be read, a refused or silent port, or an
        endpoint that is not a Dask scheduler.

    """
    timeout = float(profile.get("timeout", CONNECT_TIMEOUT))
    where_profile = f"{profile.get('source', 'cluster.yaml')}: profile {profile.get('name')!r}"
    if "scheduler_file" in profile:
        file = Path(profile["scheduler_file"]).expanduser()
        if not file.is_file():
            raise ConfigError(
                f"{where_profile}: scheduler_file {file} does not exist; start the scheduler "
                f"first (dask scheduler --scheduler-file {file}) or fix the path"
            )
        try:
            address = json.loads(file.read_text())["address"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ConfigError(
                f"{where_profile}: scheduler_file {file} is not a Dask scheduler file "
                f"({type(exc).__name__}); point it at the file dask scheduler --scheduler-file "
                "writes"
            ) from None
        where = f"the scheduler in {file} ({address})"
    else:
        address = str(profile["address"])
        where = f"the scheduler at {address}"
    fix = "start it (dask scheduler) or fix the profile's address"
    try:
        kind = _identify(address, timeout)
    except MemoryError:  # a non-Dask endpoint answered with bytes read as a huge frame size
        raise ConfigError(
            f"{where_profile}: {address} answered, but it is not a Dask scheduler; {fix}"
        ) from None
    except (OSError, TimeoutError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(
            f"{where_profile}: cannot reach {where} within {timeout:g} s ({reason[:160]}); {fix}"
        ) from None
    except Exception as exc:  # any other handshake failure is the endpoint's, not ours
        raise ConfigError(
            f"{where_profile}: {address} answered, but it is not a Dask scheduler "
            f"({type(exc).__name__}: {str(exc)[:160]}); {fix}"
        ) from None
    if kind != "Scheduler":
        raise ConfigError(
            f"{where_profile}: {address} answered as a Dask {kind or 'peer'}, not a "
            f"scheduler; {fix}"
        )
    return address, where


def connect_address(profile: dict) -> tuple[Client, str]:
    """Connect to an ``address`` profile's scheduler, once :func:`reach` says it answers.

    Returns
    -------
    tuple
        ``(client, where)``: the client and the scheduler in words.

    Raises
    ------
    ConfigError
        As :func:`reach` raises it.

    """
    address, where = reach(profile)
    timeout = float(profile.get("timeout", CONNECT_TIMEOUT))
    with dask.config.set({"distributed.comm.timeouts.connect": f"{timeout}s"}):
        return Client(address, timeout=timeout), where


def _connect(profile: dict):
    """Open a client for an ``address``, ``slurm`` or ``pbs`` profile."""
    if profile["type"] == "address":
        client, where = connect_address(profile)
        cluster = None
    else:
        cluster = _jobqueue_cluster(profile)
        if "adapt" in profile:
            cluster.adapt(**profile["adapt"])
            scale = f"adapting between {profile['adapt']} jobs"
        else:
            cluster.scale(jobs=profile.get("jobs", 1))
            scale = f"{profile.get('jobs', 1)} jobs"
        client = Client(cluster)
        where = f"{profile['type']} profile {profile['name']!r}, {scale}"
    client.register_plugin(WorkerSetup(), name="mocapflow-worker-setup")
    return cluster, client, where


# --- the session ------------------------------------------------------------------------


@dataclass(frozen=True)
class Work:
    """What a local cluster is sized for.

    Attributes
    ----------
    n_tasks : int
        Tasks that can run at once.
    frame_bytes : int
        Bytes of the largest frame a task holds.
    frames_held : int
        Frames a task holds at once.

    """

    n_tasks: int
    frame_bytes: int = 1920 * 1080 * 3
    frames_held: int = BATCH_FRAMES


class Session:
    """One owner of a cluster and its client, from start to close.

    The profile is loaded and the options checked when the session is made;
    the cluster starts on ``with`` and everything the session started is
    closed when the block ends, whatever happens in it. A client given to it
    is used as it is and left open.

    Parameters
    ----------
    work : Work
        What a local cluster is sized for.
    cluster : str, optional
        Profile name in ``cluster.yaml``.
    cluster_config : path, optional
        The profiles file; default ``./cluster.yaml`` when present.
    client : distributed.Client or Session, optional
        Use this client (or a running session's) instead; it is left open.
    workers : int, optional
        Override the profile's worker count.
    dashboard_address : str, optional
        Override the profile's dashboard address.

    Attributes
    ----------
    client : distributed.Client
        Inside the ``with`` block.
    sizing : Sizing or None
        The sizing decision of a local cluster.
    where : str
        Where the work runs, in words.
    profile : dict
        The profile (empty with a given client).

    """

    def __init__(
        self,
        work: Work,
        *,
        cluster: str | None = None,
        cluster_config: str | Path | None = None,
        client=None,
        workers: int | None = None,
        dashboard_address: str | None = None,
    ):
        self.work = work
        self._parent = client if isinstance(client, Session) else None
        if self._parent is not None:
            client = self._parent.client
        self._given = client
        self.profile = load_profile(cluster, cluster_config) if client is None else {}
        if workers is not None and workers < 1:
            raise UsageError(f"--workers must be at least 1, got {workers}")
        self.workers = workers
        self.dashboard_address = dashboard_address or self.profile.get(
            "dashboard_address", DASHBOARD_ADDRESS
        )
        host = parse_address(self.dashboard_address)[0]
        if client is None:
            check_listen(host)
        self.client = client
        self.sizing: Sizing | None = self._parent.sizing if self._parent else None
        self.where = "a client you gave" if client is not None else ""
        if self._parent is not None:
            self.where, self.profile = self._parent.where, self._parent.profile
            self.dashboard_address = self._parent.dashboard_address
        self._cluster = None
        self._cv2_threads: int | None = None

    def plan(self, work: Work) -> Sizing | None:
        """Set the work and size a local cluster for it, without starting anything.

        Raises
        ------
        UsageError
            If the worker count cannot work (see :func:`size_cluster`).

        """
        self.work = work
        if self._given is not None or self.profile["type"] != "local":
            return None
        self.sizing = size_cluster(
            work.n_tasks,
            work.frame_bytes,
            work.frames_held,
            workers=self.workers or self.profile.get("workers"),
            memory_limit=self.profile.get("memory_limit"),
            processes=self.profile.get("processes", True),
        )
        return self.sizing

    def check_reachable(self) -> None:
        """Check that a remote scheduler answers, before anything is written (see :func:`reach`).

        Raises
        ------
        ConfigError
            If an ``address`` profile's scheduler cannot be reached (see
            :func:`reach`).

        """
        if self._given is None and self.profile.get("type") == "address":
            reach(self.profile)

    def __enter__(self) -> Session:
        if self._given is not None:
            return self
        if self.profile["type"] == "local":
            self.plan(self.work)
            if not self.sizing.processes:  # the workers set this process's OpenCV threads
                import cv2

                self._cv2_threads = cv2.getNumThreads()
            self._cluster, self.client = start_cluster(self.sizing, self.dashboard_address)
            self.where = self.sizing.reason
        else:
            self._cluster, self.client, self.where = _connect(self.profile)
        return self

    def __exit__(self, *exc) -> None:
        if self._given is not None:
            return
        try:
            if self.client is not None:
                self.client.close()
        finally:
            if self._cluster is not None:
                self._cluster.close()  # worker threads finish their running tasks first
            self.client = self._cluster = None
            if self._cv2_threads is not None:
                import cv2

                cv2.setNumThreads(self._cv2_threads)
                self._cv2_threads = None

    @property
    def decode_threads(self) -> int | None:
        """Decoder threads per task: 1 for worker threads in this process, else the workers'."""
        if self.sizing is not None and not self.sizing.processes:
            return 1
        return None

    @property
    def dashboard(self) -> str | None:
        """The dashboard's address as bound, or None."""
        if self.client is None:
            return None
        link = self.client.dashboard_link
        if self.sizing is not None and not self.sizing.processes:
            host = parse_address(self.dashboard_address)[0]
            link = bound_link(link, host, self.client.scheduler.address)
        return link

    def describe(self) -> dict:
        """Return what the store records about the cluster: the sizing, or where it ran."""
        if self.sizing is not None:
            return {
                **self.sizing.to_dict(),
                "profile": self.profile.get("name"),
                "source": self.profile.get("source"),
            }
        return {"reason": self.where, "profile": self.profile.get("name")}
