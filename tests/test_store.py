"""Template, aligned region writes, completion records, and reopening with xarray."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from mocapflow import store
from mocapflow.recording import open_recording
from mocapflow.trackers import get_tracker


@pytest.fixture()
def made(markers_recording, tmp_path):
    rec = open_recording(markers_recording)
    trk = get_tracker("markers")
    path = tmp_path / "s.zarr"
    store.create(path, rec, trk, time_chunk=10, attrs={"tracker": "markers"})
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
    assert ds.attrs["mocapflow_format"] == store.FORMAT and ds.attrs["template_complete"]
    assert store.done_chunks(path) == {}


def test_region_write_round_trip(made):
    path, _, trk = made
    rng = np.random.default_rng(0)
    pos = rng.normal(size=(20, 2, 6, 1)).astype(np.float32)
    pos[3, :, 2] = np.nan  # nothing found there
    conf = rng.uniform(size=(20, 6, 1)).astype(np.float32)
    decoded = np.ones(20, bool)
    store.write_region(path, 2, 30, {"position": pos, "confidence": conf}, decoded)
    store.mark_done(path, 2, 30, 50, {"status": "ok"})
    ds = xr.open_zarr(path, consolidated=False)
    np.testing.assert_array_equal(ds.position.values[2, 30:50], pos)
    assert np.isnan(ds.position.values[2, 33, :, 2]).all()
    assert np.isnan(ds.position.values[2, :30]).all() and np.isnan(ds.position.values[:2]).all()
    assert ds.decoded.values[2].sum() == 20
    assert store.done_chunks(path) == {(2, 30, 50): {"status": "ok"}}


def test_regions_must_own_whole_chunks():
    store.check_region(10, 30, 50, view_end=90)
    store.check_region(10, 80, 87, view_end=87)  # the view's last, partial chunk
    for start, stop in [(35, 50), (30, 45)]:
        with pytest.raises(ValueError, match="whole Zarr chunks"):
            store.check_region(10, start, stop, view_end=90)


def test_a_half_written_record_is_not_done(made):
    path, *_ = made
    folder = path / store.PROGRESS_GROUP / "chunks"
    (folder / "00001_000000000_000000010.json").write_text('{"status": "o')
    (folder / "00001_000000010_000000020.json.tmp123").write_text("{}")
    assert store.done_chunks(path) == {}


def test_target_checks(tmp_path, made):
    path, *_ = made
    assert store.check_target(tmp_path / "new.zarr") == "new"
    assert store.check_target(path) == "ours"
    f = tmp_path / "file.zarr"
    f.write_text("x")
    with pytest.raises(store.StoreError, match="is not a folder"):
        store.check_target(f)
    foreign = tmp_path / "foreign.zarr"
    xr.Dataset({"a": ("x", np.arange(3))}).to_zarr(foreign, zarr_format=3, consolidated=False)
    with pytest.raises(store.StoreError, match="not a mocapflow store"):
        store.check_target(foreign)
    other = tmp_path / "other"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    with pytest.raises(store.StoreError, match="not a mocapflow store"):
        store.check_target(other)
