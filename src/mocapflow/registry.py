"""Extension points: what packages register under mocapflow's entry-point groups.

Exports (``mocapflow.exports``) and calibration formats (``mocapflow.calibrations``)
load their entries here, once per process; trackers keep their own lookup by
name (:mod:`mocapflow.trackers`), since a run builds one tracker, not all of them.
"""

from __future__ import annotations

import functools
from importlib.metadata import entry_points

from .errors import MocapflowError

__all__ = ["registered"]


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
