"""movement (the PyData pose toolbox) on mocapflow's real output: every group is a movement
dataset, its tools work on it in seconds, and the exports load back.

Uses the real sample: MediaPipe tracks, triangulated with the Qualisys calibration.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xarray as xr

movement = pytest.importorskip("movement", reason="movement needs Python 3.12")
from movement import filtering  # noqa: E402
from movement.io import load_poses, save_poses  # noqa: E402
from movement.kinematics import compute_velocity  # noqa: E402
from movement.validators.datasets import ValidPosesInputs  # noqa: E402


@pytest.fixture(scope="module")
def store(sample_run) -> Path:
    return sample_run[0]


def _velocity_per_second_matches(ds: xr.Dataset) -> None:
    """movement's velocity is in space units per second: a finite difference times fps."""
    assert ds.attrs["time_unit"] == "seconds" and ds.attrs["fps"] == 60.0
    np.testing.assert_allclose(np.diff(ds.time.values), 1 / 60)
    v = compute_velocity(ds.position)
    manual = (
        ds.position.isel(time=slice(2, None)).values - ds.position.isel(time=slice(0, -2)).values
    ) * 30.0  # noqa: E501
    np.testing.assert_allclose(v.isel(time=slice(1, -1)).values, manual, rtol=1e-5, atol=1e-6)


def test_the_2d_store_view_by_view(store, tmp_path):
    ds = xr.open_zarr(store, consolidated=False).load()
    for view in ds.view.values:
        one = ds.sel(view=view)
        ValidPosesInputs.validate(one)
        _velocity_per_second_matches(one)
        clean = filtering.filter_by_confidence(one.position, one.confidence, threshold=0.5)
        filled = filtering.interpolate_over_time(clean, max_gap=5)
        smooth = filtering.rolling_filter(filled, window=5, statistic="median")
        assert smooth.shape == one.position.shape
    one = ds.sel(view="cam02")
    save_poses.to_dlc_file(one, tmp_path / "v.h5", split_individuals=False)
    save_poses.to_sleap_analysis_file(one, tmp_path / "s.h5")
    for loaded in (
        load_poses.from_dlc_file(tmp_path / "v.h5", fps=60),
        load_poses.from_sleap_file(tmp_path / "s.h5", fps=60),
    ):
        got = loaded.position.sel(keypoint=one.keypoint.values).values
        np.testing.assert_allclose(got, one.position.values, atol=1e-3)


@pytest.mark.parametrize("group", ["points3d", "filtered"])
def test_the_3d_groups(store, group):
    ds = xr.open_zarr(store, group=group, consolidated=False).load()
    ValidPosesInputs.validate(ds)
    assert ds.attrs["space_unit"] == "mm" and ds.confidence.dims == (
        "time",
        "keypoint",
        "individual",
    )
    assert float(ds.confidence.min()) >= 0.5  # views under 0.5 were never used
    _velocity_per_second_matches(ds)
    filled = filtering.interpolate_over_time(ds.position, max_gap=5)
    assert int(np.isnan(filled).sum()) <= int(np.isnan(ds.position).sum())


def test_every_export_loads_back(store):
    ds = xr.open_zarr(store, group="filtered", consolidated=False).load()
    names = list(ds.keypoint.values)
    stem = store.parent / "pose.filtered"
    loaded = {
        "csv (anipose)": load_poses.from_anipose_file(f"{stem}.csv", fps=60),
        "nwb": load_poses.from_nwb_file(f"{stem}.nwb"),
        "dlc": load_poses.from_dlc_file(f"{stem}.dlc.h5", fps=60),
        "sleap": load_poses.from_sleap_file(f"{stem}.sleap.h5", fps=60),
    }
    for fmt, back in loaded.items():
        got = back.position.sel(keypoint=names).values
        np.testing.assert_allclose(got, ds.position.values, atol=1e-3, err_msg=fmt)
    np.testing.assert_allclose(
        np.load(f"{stem}.npy"), ds.position.values[..., 0].transpose(0, 2, 1)
    )
