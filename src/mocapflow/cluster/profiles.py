"""Cluster profiles: what ``cluster.yaml`` names, checked, and how a remote one is opened.

A profile names where the work runs: ``local`` (a LocalCluster sized to this
machine, the default; :mod:`mocapflow.cluster.session` sizes and starts it),
``address`` (a running scheduler), or ``slurm``/``pbs`` (dask-jobqueue). Each
type is a :class:`ProfileType` entry of :data:`PROFILE_TYPES`; packages add
their own under the entry points ``mocapflow.profiles``.
"""

from __future__ import annotations

import inspect
import json
import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import dask
import yaml
from dask.utils import parse_bytes
from distributed import Client

from ..errors import ConfigError, UsageError
from ..registry import table
from ..schema import DASHBOARD_ADDRESS
from .worker import WorkerSetup

__all__ = [
    "CONNECT_TIMEOUT",
    "DEFAULT_FILE",
    "HPC_INSTALL",
    "PROFILE_TYPES",
    "ProfileType",
    "check_listen",
    "is_loopback",
    "connect_address",
    "job_script",
    "jobqueue_class",
    "load_profile",
    "open_remote",
    "parse_address",
    "profile_types",
    "reach",
]

logger = logging.getLogger(__name__)

DEFAULT_FILE = "cluster.yaml"
SCALING = {"jobs", "adapt"}
#: Seconds to wait for a remote scheduler (an ``address`` profile's ``timeout``).
CONNECT_TIMEOUT = 10.0
HPC_INSTALL = "pip install 'mocapflow[hpc]' (or: pip install dask-jobqueue)"
BUILTIN = {"local": {"type": "local"}, "threads": {"type": "local", "processes": False}}
_META = {"type", "name", "source"}


@dataclass(frozen=True)
class ProfileType:
    """One kind of cluster a profile may name.

    Attributes
    ----------
    name : str
        The ``type`` a profile gives.
    keys : callable
        ``keys()``: the keys a profile of this type accepts, besides ``type``.
    check : callable
        ``check(where, profile)``: refuses a bad value with a :class:`ConfigError`
        that starts with ``where``; may normalise values in place.
    open : callable or None
        ``open(profile) -> (cluster or None, client, where in words)``; ``None``
        for ``local``, which :class:`~mocapflow.cluster.Session` sizes and starts.
    reach : callable or None
        ``reach(profile)``: checks a remote scheduler answers, before anything is
        written; ``None`` where there is nothing to reach yet.

    """

    name: str
    keys: Callable[[], set[str]]
    check: Callable[[str, dict], None]
    open: Callable[[dict], tuple] | None = None
    reach: Callable[[dict], object] | None = None


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
    types = profile_types()
    if kind not in types:
        raise ConfigError(
            f"{source}: profile {name!r} has type {kind!r}; supported types: "
            f"{', '.join(sorted(types))}"
        )
    valid = types[kind].keys()
    unknown = sorted(set(profile) - valid)
    if unknown:
        raise ConfigError(
            f"{source}: profile {name!r}: unknown key {unknown[0]!r}; valid keys: "
            f"{', '.join(sorted(valid))}"
        )
    profile = {k: v for k, v in profile.items() if v not in (None, "auto")}
    types[kind].check(f"{source}: profile {name!r}", profile)
    return {"type": kind, "name": name, "source": where_from, **profile}


def _check_address(where: str, profile: dict) -> None:
    if len({"address", "scheduler_file"} & set(profile)) != 1:
        raise ConfigError(
            f"{where}: give exactly one of address (tcp://host:port) or scheduler_file"
        )
    if "timeout" in profile:
        t = profile["timeout"]
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not t > 0:
            raise ConfigError(f"{where}: timeout {t!r} must be a number of seconds above 0")


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


def is_loopback(host: str) -> bool:
    """Whether ``host`` is this machine's loopback (other machines cannot reach it)."""
    return host in ("127.0.0.1", "localhost", "::1") or host.startswith("127.")


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


def _open_address(profile: dict) -> tuple:
    client, where = connect_address(profile)
    client.register_plugin(WorkerSetup(), name="mocapflow-worker-setup")
    return None, client, where


def _open_jobqueue(profile: dict) -> tuple:
    cluster = _jobqueue_cluster(profile)
    if "adapt" in profile:
        cluster.adapt(**profile["adapt"])
        scale = f"adapting between {profile['adapt']} jobs"
    else:
        cluster.scale(jobs=profile.get("jobs", 1))
        scale = f"{profile.get('jobs', 1)} jobs"
    client = Client(cluster)
    client.register_plugin(WorkerSetup(), name="mocapflow-worker-setup")
    return cluster, client, f"{profile['type']} profile {profile['name']!r}, {scale}"


def open_remote(profile: dict) -> tuple:
    """Open the cluster of a profile that is not ``local``.

    Returns
    -------
    tuple
        ``(cluster or None, client, where in words)``; close the client, then
        the cluster.

    """
    return profile_types()[profile["type"]].open(profile)


#: The built-in profile types, by name.
PROFILE_TYPES: dict[str, ProfileType] = {
    "local": ProfileType(
        "local",
        lambda: {"workers", "memory_limit", "dashboard_address", "processes"},
        _check_local,
    ),
    "address": ProfileType(
        "address",
        lambda: {"address", "scheduler_file", "timeout"},
        _check_address,
        _open_address,
        reach,
    ),
    # every keyword of dask-jobqueue's cluster classes, plus jobs / adapt
    "slurm": ProfileType(
        "slurm", lambda: _jobqueue_keys("slurm") | SCALING, _check_jobqueue, _open_jobqueue
    ),
    "pbs": ProfileType(
        "pbs", lambda: _jobqueue_keys("pbs") | SCALING, _check_jobqueue, _open_jobqueue
    ),
}


def profile_types() -> dict[str, ProfileType]:
    """Return every profile type: the built-in ones and those of ``mocapflow.profiles`` entries.

    Raises
    ------
    ConfigError
        If an entry point does not load to a :class:`ProfileType`.

    """
    return table("mocapflow.profiles", ProfileType, ConfigError, PROFILE_TYPES)
