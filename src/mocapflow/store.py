"""The Zarr store: create it from the schema's template, write regions and groups, read it.

Everything here goes through zarr's and xarray's own APIs: array dimensions
come from each array's metadata, and chunk files are located by the array's own
chunk-key encoding, never by building paths by hand. A task's region always
covers whole Zarr chunks of one view (or ends at the view's last frame), so no
two writers ever touch one chunk.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import shutil
import struct
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import zarr

from .errors import StoreError
from .schema import DECODED, FORMAT, Variable

if TYPE_CHECKING:  # xarray is imported where a dataset is read: workers never need it
    import xarray as xr

__all__ = [
    "array_chunk_files",
    "array_readable",
    "check_region",
    "check_target",
    "chunk_files",
    "chunk_path",
    "create",
    "delete_group",
    "digest",
    "group_arrays",
    "fsync_dir",
    "group_attrs",
    "has_group",
    "is_store",
    "open_arrays",
    "open_group",
    "open_tracks",
    "read_attrs",
    "remove",
    "require_group",
    "restore_arrays",
    "restore_root",
    "update_attrs",
    "write_group",
    "write_region",
]

logger = logging.getLogger(__name__)


def read_attrs(path: str | Path) -> dict:
    """Return a store's root attributes.

    Raises
    ------
    StoreError
        If ``path`` holds no readable Zarr v3 group.

    """
    if not Path(path).exists():
        raise StoreError(f"{path}: no such store; check the path")
    try:
        return dict(zarr.open_group(str(path), mode="r", zarr_format=3).attrs)
    except FileNotFoundError:
        raise StoreError(f"{path}: not a mocapflow store (no Zarr group there)") from None
    except Exception as exc:  # zarr raises several types for foreign or broken metadata
        raise StoreError(
            f"{path}: unreadable Zarr metadata ({type(exc).__name__}: {exc}); "
            "run mocapflow verify on it"
        ) from None


def is_store(path: str | Path) -> bool:
    """Whether ``path`` is a mocapflow store."""
    try:
        return read_attrs(path).get("mocapflow_format") == FORMAT
    except StoreError:
        return False


def check_target(path: str | Path) -> str:
    """Classify a path a store is to be written at: ``"new"`` or ``"ours"``.

    Raises
    ------
    StoreError
        If the path is a file, a non-empty folder, or a foreign Zarr store.

    """
    path = Path(path)
    if not path.exists():
        return "new"
    if not path.is_dir():
        raise StoreError(f"{path}: exists and is not a folder; choose another --out")
    if not any(path.iterdir()):
        return "new"
    if not is_store(path):
        raise StoreError(
            f"{path}: exists and is not a mocapflow store; choose another --out "
            "or remove it yourself"
        )
    return "ours"


def fsync_dir(path: Path) -> None:
    """Make a folder's entries (new or renamed files) durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def create(path: str | Path, layout: dict[str, Variable], attrs: dict) -> None:
    """Write a store's template: metadata, coordinates, fill-valued variables.

    The folder is claimed first (a group carrying the format marker), so a
    template write cut short is still recognised as ours, and rebuilt. The
    arrays are written straight through Zarr, with the metadata xarray's
    ``to_zarr`` gives the same dataset (tested file by file for the built-in
    trackers), so creating a store needs neither xarray nor Dask's arrays: a
    command that tracks does not import them. One difference, on purpose: an
    output's Zarr fill value is the fill it declares, where xarray stores 0 for
    integers and NaN for every float (floats keep xarray's NaN ``_FillValue``,
    so a declared fill such as 0.0 reads back as a value, not as missing).

    Parameters
    ----------
    path : str or pathlib.Path
        The store; must be new or one of ours (which is replaced).
    layout : dict of str to Variable
        From :func:`mocapflow.schema.tracks_layout`.
    attrs : dict
        Root attributes (JSON-serialisable).

    """
    path = Path(path)
    if check_target(path) == "ours":
        remove(path)
    elif path.exists():
        path.rmdir()
    attrs = {**attrs, "mocapflow_format": FORMAT, "completed": False, "template_complete": False}
    group = zarr.open_group(str(path), mode="w-", zarr_format=3, attributes=attrs)
    _write_layout(group, layout, list(layout))


def _write_layout(group: zarr.Group, layout: dict[str, Variable], names: list[str]) -> None:
    """Create arrays of a layout as xarray encodes them, and write the coordinates' values."""
    dims_of = {name: set(v.dims) for name, v in layout.items()}
    for name in names:
        v = layout[name]
        attrs = {k: _attr_value(a) for k, a in v.attrs.items()}
        if not v.is_coord:  # xarray names the coordinates that label a data variable
            labels = sorted(
                c
                for c, cv in layout.items()
                if cv.is_coord and c not in cv.dims and dims_of[c] <= dims_of[name]
            )
            if labels:
                attrs["coordinates"] = " ".join(labels)
        dtype = str if v.dtype == "object" else np.dtype(v.dtype)
        if v.dtype != "object" and np.dtype(v.dtype).kind == "f":
            attrs["_FillValue"] = _float_fill(np.nan)  # xarray's default for floats
        arr = group.create_array(
            name,
            shape=v.shape,
            chunks=v.chunks or "auto",  # xarray leaves a numpy coordinate's to zarr
            dtype=dtype,
            fill_value=v.fill,
            dimension_names=v.dims,
            attributes=attrs,
        )
        if v.is_coord and v.values.size:
            arr[...] = v.values


def _attr_value(value):
    """Make an attribute JSON-ready as xarray does (arrays to lists, numpy scalars to Python)."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def _float_fill(value: float) -> str:
    """Encode a float ``_FillValue`` attribute as xarray does for Zarr v3 (base64 of a double)."""
    return base64.standard_b64encode(struct.pack("<d", float(value))).decode()


def remove(path: str | Path) -> None:
    """Delete a store and everything in it."""
    shutil.rmtree(path)


def check_region(time_chunk: int, start: int, stop: int, view_end: int) -> None:
    """Refuse a region that does not own whole Zarr chunks (writers would race).

    A region must start on a chunk boundary and end on one, or at the end of
    its view (the rest of that last chunk then belongs to no other task).

    Raises
    ------
    ValueError
        If the region is misaligned (a planner bug, not a user error).

    """
    if start % time_chunk or not (stop % time_chunk == 0 or stop == view_end):
        raise ValueError(
            f"region {start}:{stop} does not own whole Zarr chunks of {time_chunk} frames"
        )


def _array(path: str | Path, name: str) -> zarr.Array:
    """Open one array of a store (not cached: a store may be rebuilt at the same path)."""
    return zarr.open_array(str(path), path=name, mode="r", zarr_format=3)


def chunk_files(path: str | Path, name: str, view_index: int, start: int, stop: int) -> list:
    """Return ``(key, file)`` of every chunk of one array that frames ``start:stop`` touch.

    Keys come from the array's own chunk-key encoding and its chunk grid; the
    file is where the store's local backend keeps that key.
    """
    return _region_chunk_files(_array(path, name), name, view_index, start, stop)


def _region_chunk_files(
    arr: zarr.Array, name: str, view_index: int, start: int, stop: int
) -> list[tuple[str, Path]]:
    store_path = arr.store_path
    root = Path(store_path.store.root)
    t_chunk = arr.metadata.chunk_grid.chunk_shape[1]
    rest = (0,) * (len(arr.shape) - 2)
    out = []
    for t in range(start // t_chunk, -(-stop // t_chunk)):
        key = arr.metadata.encode_chunk_key((view_index, t, *rest))
        out.append((f"{name}/{key}", root / store_path.path / key))
    return out


def chunk_path(path: str | Path, key: str) -> Path:
    """Return the file of a chunk key (``<array>/<zarr's chunk key>``) in a local store."""
    return Path(zarr.storage.LocalStore(str(path)).root) / key


def array_chunk_files(path: str | Path, name: str) -> list[tuple[str, Path]]:
    """Return ``(key, file)`` of every chunk of one array (of any group) that exists on disk."""
    import itertools

    arr = _array(path, name)
    grid = arr.metadata.chunk_grid.chunk_shape
    counts = [-(-n // c) for n, c in zip(arr.shape, grid, strict=True)]
    out = []
    for coords in itertools.product(*(range(n) for n in counts)):
        key = f"{name}/{arr.metadata.encode_chunk_key(coords)}"
        file = chunk_path(path, key)
        if file.is_file():
            out.append((key, file))
    return out


def group_arrays(path: str | Path, group: str) -> list[str]:
    """Return the paths (``group/name``) of a group's arrays."""
    g = zarr.open_group(str(path), path=group, mode="r", zarr_format=3)
    return [f"{group}/{name}" for name in g.array_keys()]


def digest(file: Path) -> str:
    """Return the BLAKE2b digest of a file's bytes, as the ledger records chunks."""
    return hashlib.blake2b(file.read_bytes(), digest_size=16).hexdigest()


def restore_root(path: str | Path, attrs: dict) -> None:
    """Rewrite a damaged root group's metadata with ``attrs``; its arrays are not touched."""
    chunk_path(path, "zarr.json").unlink(missing_ok=True)
    zarr.open_group(str(path), mode="a", zarr_format=3, attributes=attrs)


def restore_arrays(path: str | Path, layout: dict[str, Variable], names: list[str]) -> None:
    """Rewrite the metadata of arrays whose ``zarr.json`` is gone, from the layout.

    Their chunk files stay where they are; the ledger checks them afterwards
    (a coordinate's values are written again). A ``zarr.json`` that is there
    but does not parse as an array is replaced.
    """
    for name in names:
        chunk_path(path, f"{name}/zarr.json").unlink(missing_ok=True)
    _write_layout(zarr.open_group(str(path), mode="r+", zarr_format=3), layout, names)


def array_readable(path: str | Path, name: str) -> bool:
    """Whether an array's metadata is there and parses."""
    try:
        _array(path, name)
        return True
    except Exception:  # missing or garbled metadata: zarr raises several types
        return False


def write_region(
    path: str | Path,
    view_index: int,
    start: int,
    arrays: dict[str, np.ndarray],
    decoded: np.ndarray,
) -> dict[str, str]:
    """Write one task's results into its region, sync them to disk, and checksum them.

    Parameters
    ----------
    path : str or pathlib.Path
        The store.
    view_index : int
        Position of the view on the ``view`` axis.
    start : int
        First frame of the region (a multiple of the Zarr chunk length).
    arrays : dict of str to numpy.ndarray
        Each tracker output shaped ``(n, ...)`` for frames ``start..start+n-1``.
    decoded : numpy.ndarray
        ``(n,)`` bool: which frames were decoded.

    Returns
    -------
    dict of str to str
        ``"<array>/<chunk key>"`` to the BLAKE2b digest of that chunk's bytes
        on disk (absent when the chunk holds only fill values, which Zarr does
        not write).

    """
    n = len(decoded)
    # Straight through zarr: the arrays' dims are (view, time, ...) as the template
    # made them, and tracker outputs carry no CF encoding (values are stored as is).
    group = zarr.open_group(str(path), mode="r+", zarr_format=3)
    sums = {}
    for name, values in [*arrays.items(), (DECODED, decoded)]:
        arr = group[name]
        values = np.asarray(values)
        fits = (n, *arr.shape[2:])
        if arr.metadata.dimension_names[:2] != ("view", "time") or values.shape != fits:
            raise ValueError(  # a tracker or planner bug, not a user error
                f"{path}: {name} {values.shape} does not fit {n} frames of "
                f"{arr.metadata.dimension_names} {arr.shape}"
            )
        arr[view_index : view_index + 1, start : start + n] = values[None]
        for key, file in _region_chunk_files(arr, name, view_index, start, start + n):
            try:
                with open(file, "rb") as fh:
                    body = fh.read()
                    os.fsync(fh.fileno())
            except FileNotFoundError:
                continue  # all fill values: zarr writes no chunk
            sums[key] = hashlib.blake2b(body, digest_size=16).hexdigest()  # as digest() does
            fsync_dir(file.parent)
    return sums


def update_attrs(path: str | Path, group: str | None = None, **attrs) -> None:
    """Merge attributes into the root's (or a group's) attributes."""
    root = zarr.open_group(str(path), mode="r+", zarr_format=3)
    (root[group] if group else root).attrs.update(attrs)


def has_group(path: str | Path, group: str) -> bool:
    """Whether the store holds a group of that name."""
    try:
        return group in set(zarr.open_group(str(path), mode="r", zarr_format=3).group_keys())
    except Exception:  # unreadable root metadata: callers report it through read_attrs
        return False


def require_group(path: str | Path, group: str) -> None:
    """Create an empty group if the store has none of that name."""
    zarr.open_group(str(path), mode="r+", zarr_format=3).require_group(group)


def group_attrs(path: str | Path, group: str) -> dict:
    """Return one group's attributes (empty if there is no such group)."""
    if not has_group(path, group):
        return {}
    return dict(zarr.open_group(str(path), mode="r", zarr_format=3)[group].attrs)


def delete_group(path: str | Path, group: str) -> None:
    """Remove a group and everything in it."""
    if has_group(path, group):
        del zarr.open_group(str(path), mode="r+", zarr_format=3)[group]


def _require_store(path: str | Path) -> None:
    """Raise :class:`StoreError` unless the path is a mocapflow store."""
    if not is_store(path):
        read_attrs(path)  # raises with the reason when the metadata is unreadable
        raise StoreError(f"{path}: not a mocapflow store; give the store that process wrote")


def open_arrays(path: str | Path) -> zarr.Group:
    """Open a store's root straight through Zarr, for a few small reads without xarray.

    A summary or a report reads labels and a few rows; opening them through
    xarray would import it (and Dask's arrays, which xarray loads on its first
    indexing) at the end of every run. The values are the stored ones, as
    xarray decodes them: frames never written read as the output's declared
    fill (NaN for the built-in trackers' floats).

    Raises
    ------
    StoreError
        If the path is not a mocapflow store, or its metadata is damaged.

    """
    _require_store(path)
    return zarr.open_group(str(path), mode="r", zarr_format=3)


def open_tracks(path: str | Path, dask: bool = True) -> xr.Dataset:
    """Open a store's 2-D tracks lazily.

    Parameters
    ----------
    path : str or pathlib.Path
        The store.
    dask : bool
        Dask-backed variables (the default), or xarray's own lazy arrays, which
        read straight through zarr when indexed: quicker for a few small reads
        than building a Dask graph per variable (a summary or a report reads
        through :func:`open_arrays`, without xarray).

    Raises
    ------
    StoreError
        If the path is not a mocapflow store, or its metadata is damaged.

    """
    import xarray as xr

    _require_store(path)
    try:
        return xr.open_zarr(str(path), consolidated=False, chunks={} if dask else None)
    except Exception as exc:
        raise StoreError(
            f"{path}: damaged ({type(exc).__name__}: {exc}); run mocapflow verify {path}"
        ) from None


def open_group(path: str | Path, group: str) -> xr.Dataset:
    """Open a group of a store lazily.

    Raises
    ------
    StoreError
        If there is no such group, or it is damaged.

    """
    import xarray as xr

    if not has_group(path, group):
        raise StoreError(f"{path}: no {group} group")
    try:
        return xr.open_zarr(str(path), group=group, consolidated=False)
    except Exception as exc:
        raise StoreError(
            f"{path}/{group}: damaged ({type(exc).__name__}: {exc}); run mocapflow verify {path}"
        ) from None


def write_group(ds: xr.Dataset, path: str | Path, group: str):
    """Write a group's metadata now and return the Dask task that writes its data.

    The group is replaced if it exists. Compute the returned object (see
    :mod:`mocapflow.runner`) to write the values.
    """
    for var in ds.data_vars.values():
        var.encoding.clear()
    return ds.to_zarr(
        str(path), group=group, mode="w", compute=False, consolidated=False, zarr_format=3
    )
