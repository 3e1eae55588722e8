"""Template, aligned region writes with their checksums, groups, and reopening with xarray."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import xarray as xr

from mocapflow import graph, schema, store
from mocapflow.errors import StoreError
from mocapflow.plan import make_plan
from mocapflow.recording import open_recording
from mocapflow.trackers import get_tracker


@pytest.fixture()
def made(markers_recording, tmp_path):
    rec = open_recording(markers_recording)
    trk = get_tracker("markers")
    path = tmp_path / "s.zarr"
    store.create(path, schema.tracks_layout(rec, trk, 10), {"tracker": "markers"})
    return path, rec, trk


def test_template_schema(made):
    path, rec, trk = made
    ds = xr.open_zarr(path, consolidated=False)
    assert ds.position.dims == ("view", "time", "space", "keypoint", "individual")
    assert ds.confidence.dims == ("view", "time", "keypoint", "individual")
    assert ds.position.dtype == np.float32 and ds.position.encoding["chunks"] == (1, 10, 2, 6, 1)
    assert list(ds.view.values) == rec.names and list(ds.space.values) == ["x", "y"]
    assert list(ds.individual.values) == ["id_0"] and ds.sizes["time"] == 90
    assert list(ds.n_frames.values) == [90] * 4 and list(ds.codec.values) == ["h264"] * 4
    assert np.isnan(ds.position.values).all() and not ds.decoded.values.any()
    assert ds.attrs["mocapflow_format"] == schema.FORMAT
    assert store.is_store(path)


def _files(root):
    return {str(f.relative_to(root)): f for f in sorted(root.rglob("*")) if f.is_file()}


@pytest.mark.parametrize("name", ["markers", "charuco", "framestats", "mediapipe_holistic"])
def test_template_equals_xarrays_own_file_by_file(markers_recording, tmp_path, name):
    """The oracle: xarray's to_zarr of the lazy template, as the store was made before."""
    import json

    import zarr

    rec, trk = open_recording(markers_recording), get_tracker(name)
    ours, theirs = tmp_path / "ours.zarr", tmp_path / "xarray.zarr"
    store.create(ours, schema.tracks_layout(rec, trk, 10), {"tracker": name})
    ds = graph.tracks_template(make_plan(rec, trk, 10))
    ds.attrs.update(tracker=name, mocapflow_format=schema.FORMAT)
    ds.attrs.update(completed=False, template_complete=False)
    zarr.open_group(str(theirs), mode="w-", zarr_format=3, attributes=dict(ds.attrs))
    ds.to_zarr(theirs, mode="a", compute=False, consolidated=False, zarr_format=3)
    a, b = _files(ours), _files(theirs)
    assert list(a) == list(b) and len(a) > 10
    for key in a:
        if key.endswith("zarr.json"):  # the same metadata, whatever the key order
            assert json.loads(a[key].read_bytes()) == json.loads(b[key].read_bytes()), key
        else:  # the coordinates' chunks, byte for byte
            assert a[key].read_bytes() == b[key].read_bytes(), key
    opened = [xr.open_zarr(p, consolidated=False) for p in (ours, theirs)]
    assert opened[0].identical(opened[1])
    assert list(schema.tracks_layout(rec, trk, 10)) == list(ds.variables)


class _Declares:
    """A custom tracker that only declares its outputs."""

    name = "custom"

    def __init__(self, **outputs):
        self._outputs = outputs

    def outputs(self):
        return self._outputs


def test_unwritten_frames_read_as_the_declared_fill(markers_recording, tmp_path):
    """An output's fill is its Zarr fill value (xarray's template stored 0 for integers
    and NaN for every float); numpy attributes are stored as xarray stores them."""
    from mocapflow.trackers import Output

    trk = _Declares(
        blobs=Output((), dtype="int16", fill=-1, attrs={"scale": np.float32(0.5)}),
        area=Output((), dtype="float32", fill=0.0, attrs={"range": np.arange(2)}),
    )
    path = tmp_path / "s.zarr"
    store.create(path, schema.tracks_layout(open_recording(markers_recording), trk, 10), {})
    some = {"blobs": np.arange(10, dtype=np.int16), "area": np.full(10, 2.5, np.float32)}
    store.write_region(path, 0, 0, some, np.ones(10, bool))
    ds = xr.open_zarr(path, consolidated=False)
    blobs, area = ds.blobs.values, ds.area.values
    assert blobs.dtype == np.int16 and (blobs[0, :10] == np.arange(10)).all()
    assert (blobs[0, 10:] == -1).all() and (blobs[1:] == -1).all()
    assert (area[0, :10] == 2.5).all() and (area[0, 10:] == 0).all() and (area[1:] == 0).all()
    assert ds.blobs.attrs["scale"] == 0.5 and ds.area.attrs["range"] == [0, 1]


@pytest.mark.parametrize(
    ("outputs", "message"),
    [
        ({"blobs": ("int16", np.nan, ())}, "output 'blobs' is int16, but its fill nan"),
        ({"ok": ("bool", np.nan, ())}, "output 'ok' is bool, but its fill nan"),
        ({"width": ("float32", np.nan, ())}, "output 'width' uses 'width', a name"),
        ({"spots": ("float32", np.nan, ("codec",))}, "output 'spots' uses 'codec'"),
        ({"a": ("float32", np.nan, ("b",)), "b": ("float32", np.nan, ())}, "output 'b' uses 'b'"),
    ],
)
def test_outputs_the_store_cannot_hold_are_refused(markers_recording, outputs, message):
    from mocapflow.errors import TrackerError
    from mocapflow.trackers import Output

    declared = {
        name: Output(dims, {d: ["x"] for d in dims}, dtype=dtype, fill=fill)
        for name, (dtype, fill, dims) in outputs.items()
    }
    with pytest.raises(TrackerError, match=message):
        schema.tracks_layout(open_recording(markers_recording), _Declares(**declared), 10)


def test_region_write_round_trip_and_checksums(made):
    path, _, trk = made
    rng = np.random.default_rng(0)
    pos = rng.normal(size=(20, 2, 6, 1)).astype(np.float32)
    pos[3, :, 2] = np.nan  # nothing found there
    conf = rng.uniform(size=(20, 6, 1)).astype(np.float32)
    decoded = np.ones(20, bool)
    sums = store.write_region(path, 2, 30, {"position": pos, "confidence": conf}, decoded)
    ds = xr.open_zarr(path, consolidated=False)
    np.testing.assert_array_equal(ds.position.values[2, 30:50], pos)
    assert np.isnan(ds.position.values[2, 33, :, 2]).all()
    assert np.isnan(ds.position.values[2, :30]).all() and np.isnan(ds.position.values[:2]).all()
    assert ds.decoded.values[2].sum() == 20
    # one digest per chunk written, of the bytes on disk, keyed by zarr's own chunk keys
    assert len(sums) == 3 * 2  # position, confidence, decoded x two 10-frame chunks
    for name in ("position", "confidence", "decoded"):
        for key, file in store.chunk_files(path, name, 2, 30, 50):
            assert key.startswith(f"{name}/c") and file.is_file()
            assert sums[key] == hashlib.blake2b(file.read_bytes(), digest_size=16).hexdigest()


def test_regions_must_own_whole_chunks():
    store.check_region(10, 30, 50, view_end=90)
    store.check_region(10, 80, 87, view_end=87)  # the view's last, partial chunk
    for start, stop in [(35, 50), (30, 45)]:
        with pytest.raises(ValueError, match="whole Zarr chunks"):
            store.check_region(10, start, stop, view_end=90)


def test_groups(made):
    path, *_ = made
    assert not store.has_group(path, "points3d")
    xr.Dataset({"a": ("x", np.arange(3.0))}).to_zarr(
        path, group="points3d", zarr_format=3, consolidated=False
    )
    assert store.has_group(path, "points3d")
    np.testing.assert_array_equal(store.open_group(path, "points3d").a.values, [0, 1, 2])
    store.delete_group(path, "points3d")
    assert not store.has_group(path, "points3d")
    with pytest.raises(StoreError, match="no points3d group"):
        store.open_group(path, "points3d")


def test_target_checks(tmp_path, made):
    path, *_ = made
    assert store.check_target(tmp_path / "new.zarr") == "new"
    assert store.check_target(path) == "ours"
    f = tmp_path / "file.zarr"
    f.write_text("x")
    with pytest.raises(StoreError, match="is not a folder"):
        store.check_target(f)
    foreign = tmp_path / "foreign.zarr"
    xr.Dataset({"a": ("x", np.arange(3))}).to_zarr(foreign, zarr_format=3, consolidated=False)
    with pytest.raises(StoreError, match="not a mocapflow store"):
        store.check_target(foreign)
    other = tmp_path / "other"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    with pytest.raises(StoreError, match="not a mocapflow store"):
        store.check_target(other)
