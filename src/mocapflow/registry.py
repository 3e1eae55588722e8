"""Extension points: what packages register under mocapflow's entry-point groups.

Exports (``mocapflow.exports``), calibration formats (``mocapflow.calibrations``)
and cluster profile types (``mocapflow.profiles``) load their entries here, once
per process; trackers keep their own lookup by name (:mod:`mocapflow.trackers`),
since a run builds one tracker, not all of them.
"""

from __future__ import annotations

import functools
from importlib.metadata import entry_points

from .errors import MocapflowError

__all__ = ["registered", "table"]


@functools.cache
def registered(group: str, kind: type, error: type[MocapflowError]) -> dict[str, object]:
    """Load every entry point of ``group``; each must be an instance of ``kind``.

    Parameters
    ----------
    group : str
        The entry-point group.
    kind : type
        What each entry must load to.
    error : type
        The error raised for an entry that does not load, or loads to something else.

    Returns
    -------
    dict
        The entries by name, in the order the installed packages list them.

    Raises
    ------
    MocapflowError
        Of type ``error``, naming the entry, its package's object and the fix.

    """
    out: dict[str, object] = {}
    what = f"{kind.__module__}.{kind.__name__}"
    for ep in entry_points(group=group):
        try:
            value = ep.load()
        except Exception as exc:  # the package's code, not ours
            raise error(
                f"{group} entry {ep.name!r} ({ep.value}) failed to load: "
                f"{type(exc).__name__}: {exc}; fix or uninstall its package"
            ) from None
        if not isinstance(value, kind):
            raise error(
                f"{group} entry {ep.name!r} ({ep.value}) is a {type(value).__name__}, not a "
                f"{what}; fix its package"
            )
        out.setdefault(ep.name, value)
    return out


def table(
    group: str,
    kind: type,
    error: type[MocapflowError],
    builtin: dict[str, object],
    plugins_first: bool = False,
) -> dict[str, object]:
    """Return the built-in entries and the registered ones of ``group``, by name.

    Parameters
    ----------
    group, kind, error
        As :func:`registered` takes them.
    builtin : dict
        mocapflow's own entries.
    plugins_first : bool
        Whether a registered entry comes first and wins over a built-in one of
        the same name (calibration readers, tried in order); otherwise the
        built-in ones come first and keep their names.

    Returns
    -------
    dict
        The entries, in the order they are tried.

    """
    plugins = registered(group, kind, error)
    if plugins_first:
        return {**plugins, **{k: v for k, v in builtin.items() if k not in plugins}}
    return {**builtin, **{k: v for k, v in plugins.items() if k not in builtin}}
