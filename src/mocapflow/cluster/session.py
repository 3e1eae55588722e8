"""The session: one owner of a cluster and its client, from start to close.

:class:`ClusterOptions` says where a stage computes (a profile, a client, a
worker count, the dashboard's address) and who hears of its progress; every
stage takes one. :class:`Session` opens the cluster those options name and
closes what it opened; every command that computes goes through it.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import dask
from distributed import Client, LocalCluster

from ..errors import UsageError
from ..schema import BATCH_FRAMES, DASHBOARD_ADDRESS
from .profiles import (
    check_listen,
    is_loopback,
    load_profile,
    open_remote,
    parse_address,
    profile_types,
)
from .sizing import Sizing, size_cluster
from .worker import MALLOC_ENV, WORKER_ENV, WorkerSetup, malloc_like_workers

#: The module Dask preloads into every local worker process (its ``dask_setup``).
WORKER_MODULE = "mocapflow.cluster.worker"

__all__ = [
    "ClusterOptions",
    "Session",
    "Work",
    "bound_link",
    "progress_of",
    "start_cluster",
]

logger = logging.getLogger(__name__)


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
    if not is_loopback(host):
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
    preload = [*dask.config.get("distributed.worker.preload", []), WORKER_MODULE]
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


@dataclass(frozen=True)
class ClusterOptions:
    """Where a stage computes, and who hears of its progress: the one handle every stage takes.

    Attributes
    ----------
    profile : str, optional
        Profile name in ``cluster.yaml`` (default: the file's default, ``local``).
    config : path, optional
        The profiles file; default ``./cluster.yaml`` when present.
    client : distributed.Client, optional
        Run on this client instead of the profile's cluster; it is left open.
    workers : int, optional
        Override the sized worker count (and the profile's).
    dashboard_address : str, optional
        Where the dashboard listens; default the profile's, else
        :data:`~mocapflow.schema.DASHBOARD_ADDRESS`.
    on_event : callable, optional
        Progress: ``on_event(kind, info)``; see :func:`mocapflow.process`.

    """

    profile: str | None = None
    config: str | Path | None = None
    client: Client | None = None
    workers: int | None = None
    dashboard_address: str | None = None
    on_event: Callable[[str, dict], None] | None = None

    @classmethod
    def of(cls, value: ClusterOptions | Session | Client | str | None) -> ClusterOptions:
        """Return options from what a caller gave: options, a profile name, a client, or nothing.

        A :class:`Session` is not options; pass it to :class:`Session` itself.
        """
        if value is None:
            return cls()
        if isinstance(value, ClusterOptions):
            return value
        if isinstance(value, str):
            return cls(profile=value)
        if isinstance(value, Client):
            return cls(client=value)
        raise UsageError(
            f"cluster: expected a profile name, ClusterOptions, a Session or a Client, "
            f"got {type(value).__name__}"
        )


class Session:
    """One owner of a cluster and its client, from start to close.

    The profile is loaded and the options checked when the session is made;
    the cluster starts on ``with`` and everything the session started is
    closed when the block ends, whatever happens in it. A client given to it,
    or a running session, is used as it is and left open.

    Parameters
    ----------
    work : Work
        What a local cluster is sized for.
    options : ClusterOptions, Session, distributed.Client or str, optional
        Where to compute (see :class:`ClusterOptions`): a running session's
        cluster is shared, as is its progress callback.

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
    on_event : callable or None
        The progress callback of the options.

    """

    def __init__(self, work: Work, options: ClusterOptions | Session | Client | str | None = None):
        self.work = work
        self._cluster = None
        self._cv2_threads: int | None = None
        if isinstance(options, Session):
            self._share(options)
            return
        opts = ClusterOptions.of(options)
        self.options = opts
        self.on_event = opts.on_event
        self._given = opts.client
        self.profile = load_profile(opts.profile, opts.config) if opts.client is None else {}
        if opts.workers is not None and opts.workers < 1:
            raise UsageError(f"--workers must be at least 1, got {opts.workers}")
        self.workers = opts.workers
        self.dashboard_address = opts.dashboard_address or self.profile.get(
            "dashboard_address", DASHBOARD_ADDRESS
        )
        host = parse_address(self.dashboard_address)[0]
        if opts.client is None:
            check_listen(host)
        self.client = opts.client
        self.sizing: Sizing | None = None
        self.where = "a client you gave" if opts.client is not None else ""

    def _share(self, parent: Session) -> None:
        """Use a running session's client, profile and progress callback."""
        self.options, self.on_event = parent.options, parent.on_event
        self._given = self.client = parent.client
        self.profile, self.workers = parent.profile, parent.workers
        self.dashboard_address = parent.dashboard_address
        self.sizing, self.where = parent.sizing, parent.where

    def event(self, kind: str, info: dict) -> None:
        """Tell the progress callback, if there is one."""
        if self.on_event is not None:
            self.on_event(kind, info)

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
        kind = self.profile.get("type")
        if self._given is None and (check := profile_types()[kind].reach) is not None:
            check(self.profile)

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
            self._cluster, self.client, self.where = open_remote(self.profile)
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


def progress_of(cluster: ClusterOptions | Session | Client | str | None) -> Callable | None:
    """Return the progress callback that options or a session carry (None for the rest)."""
    return cluster.on_event if isinstance(cluster, (ClusterOptions, Session)) else None
