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

Each module's public names (its ``__all__``) are loaded from it on first use,
so that importing :mod:`mocapflow.cluster.worker` in a worker loads nothing
else of the package.
"""

from __future__ import annotations

import importlib

#: The modules whose ``__all__`` this package re-exports, in the order they are searched.
_MODULES = ("profiles", "sizing", "worker", "session")


def _home(name: str) -> str | None:
    """Return the module that exports ``name`` (importing the modules searched before it)."""
    for module in _MODULES:
        if name in importlib.import_module(f"{__name__}.{module}").__all__:
            return module
    return None


def __getattr__(name: str):
    """Load a public name from its module on first use (PEP 562)."""
    if name.startswith("__") or (module := _home(name)) is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    names = (importlib.import_module(f"{__name__}.{m}").__all__ for m in _MODULES)
    return sorted({*globals(), *(n for group in names for n in group)})
