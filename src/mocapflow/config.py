"""Cluster profiles from ``cluster.yaml``.

The file names profiles; ``mocapflow process --cluster NAME`` picks one and
``--cluster-config PATH`` reads another file. Without a file, the built-in
``local`` profile (everything sized automatically) applies. A profile's
``type`` says which keys it takes; a typo in a name or key is an error that
lists the valid ones.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from dask.utils import parse_bytes

__all__ = ["ConfigError", "PROFILE_TYPES", "load_profile"]

DEFAULT_FILE = "cluster.yaml"
#: Keys each profile type accepts, besides ``type``.
PROFILE_TYPES: dict[str, set[str]] = {
    "local": {"workers", "memory_limit", "dashboard_address"},
}
BUILTIN = {"local": {"type": "local"}}


class ConfigError(ValueError):
    """A cluster.yaml problem; the message names the file and the valid choices."""


def _read(path: Path) -> dict:
    try:
        doc = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read cluster profiles ({exc})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("profiles", {}), dict):
        raise ConfigError(f"{path}: expected a mapping with a 'profiles' mapping")
    return doc


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
        ``type`` plus the profile's settings (``memory_limit`` in bytes).

    Raises
    ------
    ConfigError
        If the file, the profile name, its type or a key is invalid.
    """
    source = Path(path) if path else Path(DEFAULT_FILE)
    if path and not source.is_file():
        raise ConfigError(f"{source}: no such cluster profiles file")
    doc = _read(source) if source.is_file() else {"profiles": BUILTIN}
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
    unknown = sorted(set(profile) - PROFILE_TYPES[kind])
    if unknown:
        raise ConfigError(
            f"{source}: profile {name!r}: unknown key {unknown[0]!r}; valid keys: "
            f"{', '.join(sorted(PROFILE_TYPES[kind]))}"
        )
    profile = {k: v for k, v in profile.items() if v not in (None, "auto")}
    if "workers" in profile and (not isinstance(profile["workers"], int) or profile["workers"] < 1):
        raise ConfigError(f"{source}: profile {name!r}: workers must be a positive integer or auto")
    if "memory_limit" in profile:
        try:
            profile["memory_limit"] = int(parse_bytes(profile["memory_limit"]))
        except (ValueError, TypeError):
            raise ConfigError(
                f"{source}: profile {name!r}: memory_limit {profile['memory_limit']!r} "
                "is not a size like 4GiB"
            ) from None
    return {"type": kind, "name": name, "source": str(source), **profile}
