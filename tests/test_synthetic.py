from __future__ import annotations

import numpy as np
import xarray as xr

from mocapflow.calib import read_toml, write_toml


def test_ground_truth_and_calibration_agree(markers_recording):
    gt = xr.open_zarr(markers_recording / "ground_truth.zarr", consolidated=False)
    assert gt.position.dims == ("time", "space", "keypoint", "individual")
    assert list(gt.space.values) == ["x", "y", "z"] and gt.position.shape == (90, 3, 6, 1)
    cams, _ = read_toml(markers_recording / "true_calibration.toml")
    assert list(cams) == ["cam1", "cam2", "cam3", "cam4"]
    pts = gt.position.values[:, :, :, 0].transpose(0, 2, 1)  # (time, K, 3)
    for c, name in enumerate(gt.view.values):
        uv = cams[name].project(pts).transpose(0, 2, 1)
        np.testing.assert_allclose(uv, gt.position_2d.values[c, ..., 0], atol=1e-6)
    # The scene spans about 2 m, and cameras stand about 3 m from its axis.
    extent = np.nanmax(pts, axis=(0, 1)) - np.nanmin(pts, axis=(0, 1))
    assert 500 < extent.max() < 2500
    assert all(2500 < np.hypot(*c.center[:2]) < 3500 for c in cams.values())


def test_same_seed_same_scene(tmp_path):
    from mocapflow.synthetic import synthesize

    a = synthesize(tmp_path / "a", frames=3, cameras=2, size=(64, 48), seed=9)
    b = synthesize(tmp_path / "b", frames=3, cameras=2, size=(64, 48), seed=9)
    np.testing.assert_array_equal(a.ground_truth.position, b.ground_truth.position)
    assert (tmp_path / "a/synchronized_videos/cam1.mp4").read_bytes() == (
        tmp_path / "b/synchronized_videos/cam1.mp4"
    ).read_bytes()


def test_toml_round_trip(markers_recording, tmp_path):
    cams, meta = read_toml(markers_recording / "true_calibration.toml")
    write_toml(tmp_path / "c.toml", list(cams.values()), meta)
    again, _ = read_toml(tmp_path / "c.toml")
    for name, cam in cams.items():
        for field in ("matrix", "distortions", "rotation", "translation"):
            np.testing.assert_array_equal(getattr(cam, field), getattr(again[name], field))


def test_cameras_that_stop_early(tmp_path):
    from mocapflow.recording import open_recording
    from mocapflow.synthetic import synthesize

    rec = synthesize(tmp_path / "r", cameras=3, frames=[6, 3, 6], size=(64, 48), seed=1)
    assert [v.n_frames for v in open_recording(rec.path).views] == [6, 3, 6]
    assert np.isnan(rec.ground_truth.position_2d.values[1, 3:]).all()
