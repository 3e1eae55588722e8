"""Clusters: profiles from ``cluster.yaml``, sizing to the machine, one owner from start to close.

Four modules, one concern each:

- :mod:`~mocapflow.cluster.profiles`: what a profile names (``local``,
  ``address``, ``slurm``, ``pbs``, or a type a package registers), checked,
  and how a remote one is opened;
- :mod:`~mocapflow.cluster.sizing`: how many local workers, and the memory of each;
- :mod:`~mocapflow.cluster.worker`: what runs inside a worker (Dask preloads it
  into every local worker process, so it imports neither of the above);
- :mod:`~mocapflow.cluster.session`: :class:`ClusterOptions`, the one handle
  every stage takes, and :class:`Session`, which opens the cluster it names and
  closes what it opened.

The names below are loaded from their module on first use, so that importing
:mod:`mocapflow.cluster.worker` in a worker loads nothing else of the package.
"""

from __future__ import annotations

import importlib

#: Where each public name lives.
_HOME = {
    **dict.fromkeys(
        (
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
        ),
        "profiles",
    ),
    **dict.fromkeys(
        (
            "BASE_WORKER_BYTES",
            "MEMORY_FRACTION",
            "SAFETY_FACTOR",
            "Resources",
            "Sizing",
            "detect_resources",
            "estimate_footprint",
            "size_cluster",
        ),
        "sizing",
    ),
    **dict.fromkeys(
        (
            "MALLOC_ENV",
            "WORKER_ENV",
            "ClosingRace",
            "WorkerSetup",
            "dask_setup",
            "malloc_like_workers",
        ),
        "worker",
    ),
    **dict.fromkeys(
        ("ClusterOptions", "Session", "Work", "bound_link", "progress_of", "start_cluster"),
        "session",
    ),
}

__all__ = sorted(_HOME)


def __getattr__(name: str):
    """Load a public name from its module on first use (PEP 562)."""
    if name not in _HOME:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_HOME[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_HOME})
