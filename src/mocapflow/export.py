"""Exports of 3-D points for the tools of the field (pandas, numpy; movement for three of them).

==========  ========================================================================
``trc``     OpenSim marker file, as Pose2Sim writes it: metres, Y up (see below)
``csv``     anipose's triangulation table: ``<kp>_x _y _z _error _ncams _score``, ``fnum``
            and the identity alignment (``center_*``, ``M_*``); movement reads it
``npy``     ``(frames, keypoints, 3)`` float64, as FreeMoCap's ``skeleton_3d.npy``
``nwb``     NWB with ndx-pose, written by movement's ``to_nwb_file``
``dlc``     DeepLabCut ``.h5``, written by movement's ``to_dlc_file``
``sleap``   SLEAP analysis ``.h5``, written by movement's ``to_sleap_analysis_file``
``bvh``     BVH motion (Blender, Unity, Maya): metres, Y up, a file per person
            (:mod:`mocapflow.bvh`)
==========  ========================================================================

**Which way is up.** A 3-D group records its world's up axis (``up_axis``: ``+z``
for a Qualisys calibration, whatever a calibration TOML's metadata says, else
unknown). OpenSim's Y is up: the TRC maps the world's up axis to +Y with a
proper rotation, and its first line says which world axis became Y. With an
unknown up axis the world is written as it is, and a warning says so.

**Names and owners.** A store's exports are named after it
(:func:`export_path`): ``<store name>.<group>.<ext>``, where a store called
``mocapflow.zarr`` (the default, inside its recording) takes its recording
folder's name. Each export folder keeps a small record, :data:`OWNERS`, of
which store wrote each file, so that a second store exported into the same
folder is refused rather than allowed to overwrite the first one's files,
while a store's own exports are rewritten (:func:`check_owner`,
:func:`record_owner`).
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .errors import StoreError, UsageError
from .registry import table
from .schema import STORE_NAME

if TYPE_CHECKING:  # the datasets come in from the caller; importing xarray here would
    import xarray as xr  # slow down every command (and every spawned worker) that lists FORMATS

__all__ = [
    "BUILTIN",
    "ENTRY_POINT_GROUP",
    "ExportFormat",
    "FORMATS",
    "NATIVE_FORMATS",
    "formats",
    "get_format",
    "MOVEMENT_FORMATS",
    "OWNERS",
    "check_owner",
    "export",
    "export_path",
    "export_stem",
    "record_owner",
    "to_bvh",
    "to_csv",
    "to_movement",
    "to_npy",
    "to_trc",
]

logger = logging.getLogger(__name__)

#: Entry-point group under which packages register formats of their own (an ExportFormat).
ENTRY_POINT_GROUP = "mocapflow.exports"
MOVEMENT_INSTALL = "pip install 'mocapflow[movement]'" + (
    " (movement needs Python 3.12 or newer)" if sys.version_info < (3, 12) else ""
)

#: In each folder exports are written to: which store wrote each file there.
OWNERS = ".mocapflow-exports.json"

#: World up axis -> the rotation (rows: OpenSim X, Y, Z in world axes) that makes it +Y.
TO_Y_UP = {
    "+z": np.array([[0, 1, 0], [0, 0, 1], [1, 0, 0]]),  # Pose2Sim's (y, z, x)
    "-z": np.array([[0, 1, 0], [0, 0, -1], [-1, 0, 0]]),
    "+y": np.eye(3, dtype=int),
    "-y": np.array([[1, 0, 0], [0, -1, 0], [0, 0, -1]]),
    "+x": np.array([[0, 0, 1], [1, 0, 0], [0, 1, 0]]),
    "-x": np.array([[0, 0, -1], [-1, 0, 0], [0, 1, 0]]),
}
_METRES = {"mm": 1e-3, "cm": 1e-2, "m": 1.0}


def _frames(ds: xr.Dataset, var: str = "position", individual: str | None = None) -> np.ndarray:
    """``(time, keypoint[, space])`` of one individual."""
    da = ds[var]
    ind = individual if individual is not None else str(da.individual.values[0])
    dims = ("time", "keypoint", "space") if "space" in da.dims else ("time", "keypoint")
    return np.asarray(da.sel(individual=ind).transpose(*dims).values, np.float64)


def _names(ds: xr.Dataset) -> list[str]:
    return [str(k) for k in ds.keypoint.values]


def to_npy(ds: xr.Dataset, path: str | Path, individual: str | None = None) -> Path:
    """Write ``(frames, keypoints, 3)`` float64, as FreeMoCap's ``skeleton_3d.npy``."""
    np.save(path, _frames(ds, individual=individual))
    return Path(path)


def to_csv(ds: xr.Dataset, path: str | Path, individual: str | None = None) -> Path:
    """Write anipose's triangulation table (pandas), which movement's ``from_anipose_file`` reads.

    Per keypoint ``_x _y _z`` (the world unit), ``_error`` (mean reprojection
    error, px), ``_ncams`` (views used) and ``_score`` (mean 2-D confidence);
    then ``fnum`` and anipose's alignment columns, here the identity.
    """
    import pandas as pd

    pos = _frames(ds, individual=individual)
    columns: dict[str, np.ndarray] = {}
    extras = {
        "error": _frames(ds, "reprojection_error", individual),
        "ncams": _frames(ds, "n_views", individual).astype(np.int64),
        "score": _frames(ds, "confidence", individual),
    }
    for k, name in enumerate(_names(ds)):
        for a, axis in enumerate("xyz"):
            columns[f"{name}_{axis}"] = pos[:, k, a]
        for key, values in extras.items():
            columns[f"{name}_{key}"] = values[:, k]
    columns["fnum"] = np.arange(len(pos))
    for i in range(3):
        columns[f"center_{i}"] = np.zeros(len(pos))
    for i in range(3):
        for j in range(3):
            columns[f"M_{i}{j}"] = np.full(len(pos), float(i == j))
    pd.DataFrame(columns).to_csv(path, index=False, float_format="%.6f")
    return Path(path)


def to_trc(ds: xr.Dataset, path: str | Path, individual: str | None = None) -> Path:
    """Write an OpenSim ``.trc`` as Pose2Sim does: metres, Y up, tab separated.

    The world's ``up_axis`` becomes +Y (see the module's notes); missing
    values are left empty; marker names are the keypoint names.
    """
    import pandas as pd

    pos = _frames(ds, individual=individual)
    unit = str(ds.attrs.get("space_unit", ds.position.attrs.get("units", "mm")))
    up = ds.attrs.get("up_axis")
    if up in TO_Y_UP:
        note = f"Y up = world {up}"
    else:
        logger.warning(
            "%s: the world's up axis is not known, so the TRC keeps the calibration's axes "
            "(OpenSim takes Y as up); calibrate with --origin board on a level board, or use "
            "a Qualisys calibration",
            path,
        )
        up, note = "+y", "axes as in the calibration (up unknown)"
    yup = pos @ TO_Y_UP[up].T * _METRES.get(unit, 1e-3)
    fps = float(ds.attrs.get("fps") or 30.0)
    n, k = yup.shape[:2]
    names = _names(ds)
    header = [
        f"PathFileType\t4\t(X/Y/Z)\t{Path(path).name}\t{note}",
        "DataRate\tCameraRate\tNumFrames\tNumMarkers\tUnits\tOrigDataRate\t"
        "OrigDataStartFrame\tOrigNumFrames",
        f"{fps:g}\t{fps:g}\t{n}\t{k}\tm\t{fps:g}\t1\t{n}",
        "Frame#\tTime\t" + "\t\t\t".join(names) + "\t\t\t",
        "\t\t" + "\t".join(f"X{i}\tY{i}\tZ{i}" for i in range(1, k + 1)),
    ]
    table = pd.DataFrame(yup.reshape(n, 3 * k))
    table.insert(0, "time", np.arange(n) / fps)
    table.insert(0, "frame", np.arange(1, n + 1))
    body = table.to_csv(sep="\t", header=False, index=False, float_format="%.6f")
    Path(path).write_text("\n".join(header) + "\n" + body)
    return Path(path)


def to_bvh(ds: xr.Dataset, path: str | Path, individual: str | None = None) -> Path:
    """Write one person's motion as a BVH file, for Blender, Unity and Maya (:mod:`mocapflow.bvh`).

    Metres (Blender's importer takes a BVH unit as a metre at its default
    scale, 1.0), Y up (the world's ``up_axis`` becomes +Y, as in the TRC; an
    unknown one keeps the calibration's axes, with a warning), the frame rate
    of the group. The hierarchy is MediaPipe's body, else the tracker's
    skeleton (``skeleton`` attribute); a rotation that cannot be computed in a
    frame holds its last value.

    Raises
    ------
    UsageError
        If the keypoints are not MediaPipe's and the group records no skeleton.

    """
    from .bvh import fit_bvh, hierarchy, write_bvh

    skeleton = ds.attrs.get("skeleton")
    hierarchy(_names(ds), skeleton, str(path))  # a store it cannot be made of: refused first
    unit = str(ds.attrs.get("space_unit", ds.position.attrs.get("units", "mm")))
    up = ds.attrs.get("up_axis")
    if up not in TO_Y_UP:
        logger.warning(
            "%s: the world's up axis is not known, so the BVH keeps the calibration's axes "
            "(BVH takes Y as up); calibrate with --origin board on a level board, or use "
            "a Qualisys calibration",
            path,
        )
        up = "+y"
    yup = _frames(ds, individual=individual) @ TO_Y_UP[up].T * _METRES.get(unit, 1e-3)
    fps = float(ds.attrs.get("fps") or 30.0)
    bvh = fit_bvh(yup, _names(ds), skeleton, fps=fps, what=str(path))
    return write_bvh(path, bvh)


def _bvh_accepts(ds: xr.Dataset, where: str) -> None:
    from .bvh import hierarchy

    hierarchy(_names(ds), ds.attrs.get("skeleton"), where)


def to_movement(ds: xr.Dataset) -> xr.Dataset:
    """Return a 3-D group as movement's poses dataset: position, confidence and its attributes."""
    keep = ("source_software", "ds_type", "fps", "time_unit", "space_unit")
    out = ds[["position", "confidence"]].drop_vars("view", errors="ignore")
    out.attrs = {k: ds.attrs[k] for k in keep if k in ds.attrs}
    return out


def _movement_writer(fmt: str):
    """Return movement's writer for ``fmt`` (nwb, dlc, sleap).

    Raises
    ------
    UsageError
        If movement is not installed, saying how to install it.

    """
    try:
        from movement.io import save_poses
    except ImportError:
        raise UsageError(f"the {fmt} export is written by movement: {MOVEMENT_INSTALL}") from None
    if fmt == "nwb":

        def nwb(ds: xr.Dataset, path) -> None:
            from pynwb import NWBHDF5IO

            with NWBHDF5IO(str(path), "w") as io:
                io.write(save_poses.to_nwb_file(ds))

        return nwb
    if fmt == "dlc":
        return lambda ds, path: save_poses.to_dlc_file(ds, path, split_individuals=False)
    return save_poses.to_sleap_analysis_file


@dataclass(frozen=True)
class ExportFormat:
    """One export format: how its files are named and written.

    Attributes
    ----------
    name : str
        What ``-f`` calls it.
    suffix : str
        What ends its files' names (``.trc``, ``.dlc.h5``).
    write : callable
        ``write(ds, path, individual)``: writes a 3-D group to ``path``.
    default : bool
        Written by ``export`` when no format is asked for.
    needs : str, optional
        A module the writer imports; its absence is said before any file is written.
    install : str, optional
        How to install ``needs``.
    per_person : bool
        A file holds one individual: a group of several people is written to
        one file per person. False: one file holds them all.
    accepts : callable, optional
        ``accepts(ds, where)``: raises a one-line :class:`UsageError` for a group
        the format cannot hold, before any file of the export is written.

    """

    name: str
    suffix: str
    write: Callable[..., object]
    default: bool = False
    needs: str | None = None
    install: str | None = None
    per_person: bool = True
    accepts: Callable[[xr.Dataset, str], None] | None = None

    def check(self) -> None:
        """Refuse, in one line, a format whose writer's module is not installed.

        Raises
        ------
        UsageError
            Saying what to install.

        """
        if self.needs and importlib.util.find_spec(self.needs) is None:
            raise UsageError(
                f"the {self.name} export is written by {self.needs}: "
                f"{self.install or f'pip install {self.needs}'}"
            )


def _via_movement(fmt: str) -> Callable[..., None]:
    def write(ds: xr.Dataset, path, individual: str | None = None) -> None:
        _movement_writer(fmt)(to_movement(ds), path)

    return write


def _movement_format(name: str, suffix: str) -> ExportFormat:
    write = _via_movement(name)
    return ExportFormat(
        name, suffix, write, needs="movement", install=MOVEMENT_INSTALL, per_person=False
    )


#: The built-in formats, in the order ``export`` writes the default ones.
BUILTIN = {
    f.name: f
    for f in (
        ExportFormat("csv", ".csv", to_csv, default=True),
        ExportFormat("trc", ".trc", to_trc, default=True),
        ExportFormat("npy", ".npy", to_npy, default=True),
        _movement_format("nwb", ".nwb"),
        _movement_format("dlc", ".dlc.h5"),
        _movement_format("sleap", ".sleap.h5"),
        ExportFormat("bvh", ".bvh", to_bvh, accepts=_bvh_accepts),
    )
}
#: Formats written by mocapflow itself, in the order ``export`` writes them by default.
NATIVE_FORMATS = tuple(name for name, f in BUILTIN.items() if f.default)
#: Formats written through movement (``pip install 'mocapflow[movement]'``).
MOVEMENT_FORMATS = tuple(name for name, f in BUILTIN.items() if f.needs == "movement")
#: The built-in format names (:func:`formats` adds the registered ones).
FORMATS = tuple(BUILTIN)


def formats() -> dict[str, ExportFormat]:
    """Return every export format: the built-in ones, then those registered as entry points.

    Raises
    ------
    UsageError
        If a registered entry point does not load to an :class:`ExportFormat`.

    """
    return table(ENTRY_POINT_GROUP, ExportFormat, UsageError, BUILTIN)


def get_format(name: str) -> ExportFormat:
    """Return one export format by name.

    Raises
    ------
    UsageError
        If there is no such format; the message lists those there are.

    """
    known = formats()
    if name not in known:
        raise UsageError(f"unknown format {name!r}; choose from {', '.join(known)}")
    return known[name]


def export(ds: xr.Dataset, path: str | Path, fmt: str, individual: str | None = None) -> Path:
    """Write ``ds`` (a 3-D group) to ``path`` in ``fmt`` (see :func:`formats`)."""
    get_format(fmt).write(ds, path, individual)
    return Path(path)


def export_stem(store: str | Path) -> str:
    """Return the name a store's exports start with.

    The store's name less ``.zarr`` (``pose.zarr``: ``pose``); a store with the
    default name, ``mocapflow.zarr``, which lies in its recording folder, takes
    that folder's name instead (``session01/mocapflow.zarr``: ``session01``), so
    the exports of two recordings never share a name.
    """
    store = Path(store)
    stem = store.name.removesuffix(".zarr")
    if stem == STORE_NAME.removesuffix(".zarr"):
        stem = Path(os.path.abspath(store)).parent.name or stem
    return stem


def export_path(
    store: str | Path, group: str, fmt: str, folder: str | Path, person: str | None = None
) -> Path:
    """Return the file a format of a store's group is exported to: ``<stem>.<group>.<ext>``.

    One person of several goes to ``<stem>.<person>.<group>.<ext>``
    (``pose.person0.filtered.trc``). The two HDF5 formats keep the format in the
    name (``.dlc.h5``, ``.sleap.h5``).
    """
    who = f".{person}" if person else ""
    return Path(folder) / f"{export_stem(store)}{who}.{group}{get_format(fmt).suffix}"


def _owners(folder: Path) -> dict:
    try:
        owners = json.loads((folder / OWNERS).read_text())
    except (OSError, ValueError):
        return {}
    return owners if isinstance(owners, dict) else {}


def _store_id(store: str | Path) -> str:
    return str(Path(store).resolve())


def check_owner(path: str | Path, store: str | Path, known: set[str] = frozenset()) -> None:
    """Refuse to overwrite a file that another store's export wrote.

    Parameters
    ----------
    path : str or pathlib.Path
        The file about to be written.
    store : str or pathlib.Path
        The store being exported.
    known : set of str
        Files (resolved paths) the store's own ledger lists as its exports:
        exports written before the folder kept its :data:`OWNERS` record.

    Raises
    ------
    StoreError
        If the file exists and was written by another store, or by no store's
        export at all; the message names the file, its writer and the fix.

    """
    path = Path(path)
    fix = "export into another folder with --out-dir, or move the file away yourself"
    if path.is_symlink():
        raise StoreError(f"{path}: is a link (to {os.readlink(path)}), not followed; {fix}")
    if not path.exists():
        return
    owner = _owners(path.parent).get(path.name, {}).get("store")
    if owner == _store_id(store) or (owner is None and str(path.resolve()) in known):
        return
    if owner is not None:
        raise StoreError(
            f"{path}: written by the export of another store, {owner}, and not overwritten; {fix}"
        )
    raise StoreError(f"{path}: already there and not an export of {store}; {fix}")


def record_owner(path: str | Path, store: str | Path, group: str) -> None:
    """Record in the file's folder that ``store``'s ``group`` wrote it (atomically)."""
    path = Path(path)
    owners = _owners(path.parent)
    owners[path.name] = {
        "store": _store_id(store),
        "group": group,
        "written": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    target = path.parent / OWNERS
    tmp = target.with_name(f"{OWNERS}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(owners, indent=1, sort_keys=True))
    os.replace(tmp, target)
