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

__all__ = ["ConfigError", "HPC_INSTALL", "PROFILE_TYPES", "jobqueue_class", "load_profile"]

DEFAULT_FILE = "cluster.yaml"
#: Keys each profile type accepts, besides ``type``.
PROFILE_TYPES: dict[str, set[str] | None] = {
    "local": {"workers", "memory_limit", "dashboard_address"},
    "address": {"address", "scheduler_file"},
    "slurm": None,  # every keyword of dask-jobqueue's SLURMCluster, plus jobs / adapt
    "pbs": None,  # every keyword of PBSCluster, plus jobs / adapt
}
SCALING = {"jobs", "adapt"}
HPC_INSTALL = "pip install 'mocapflow[hpc]' (or: pip install dask-jobqueue)"


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
    import inspect

    from dask_jobqueue.core import Job, JobQueueCluster

    job_cls = jobqueue_class(kind).job_cls
    skip = {
        "self",
        "scheduler",
        "job_cls",
        "loop",
        "config_name",
        "base_class_kwargs",
        "job_kwargs",
        "asynchronous",
        "kwargs",
    }
    keys = set()
    for c in (job_cls, Job, JobQueueCluster):
        keys |= set(inspect.signature(c.__init__).parameters)
    return keys - skip


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
    if kind in ("slurm", "pbs"):
        if "jobs" in profile and "adapt" in profile:
            raise ConfigError(f"{where}: give jobs or adapt, not both")
        if "jobs" in profile and (not isinstance(profile["jobs"], int) or profile["jobs"] < 1):
            raise ConfigError(f"{where}: jobs must be a positive integer")
        adapt = profile.get("adapt")
        if adapt is not None and (
            not isinstance(adapt, dict) or set(adapt) - {"minimum_jobs", "maximum_jobs"}
        ):
            raise ConfigError(f"{where}: adapt takes minimum_jobs and maximum_jobs")
    profile = {k: v for k, v in profile.items() if v not in (None, "auto")}
    if kind != "local":
        return {"type": kind, "name": name, "source": str(source), **profile}
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
