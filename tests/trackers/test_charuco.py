from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from mocapflow.synthetic import synthesize
from mocapflow.trackers import Charuco, TrackerError, get_tracker
from mocapflow.video import read_frames


@pytest.fixture(scope="module")
def charuco_recording(tmp_path_factory):
    root = tmp_path_factory.mktemp("charuco") / "rec"
    synthesize(root, kind="charuco", cameras=4, frames=24, size=(960, 540), seed=5)
    return root


@pytest.mark.parametrize("pixel_format", ["bgr24", "gray"])
def test_charuco_corner_accuracy(charuco_recording, pixel_format):
    """On BGR frames and on the luma the tracker is fed in a run (its pixel_format)."""
    gt = xr.open_zarr(charuco_recording / "ground_truth.zarr", consolidated=False)
    tracker = get_tracker("charuco", square_length=gt.attrs["board"]["square_length"])
    errs, signed, visible = [], [], 0
    for c, view in enumerate(gt.view.values):
        path = charuco_recording / "synchronized_videos" / f"{view}.mp4"
        frames = read_frames(path, 0, 100, pixel_format=pixel_format)
        out = tracker(frames)
        pos = out["position"][..., 0]
        truth = gt.position_2d.values[c, ..., 0]
        e = np.hypot(*(pos - truth).transpose(1, 0, 2))
        vis = gt.visible.values[c, ..., 0]
        errs.append(e[np.isfinite(e)])
        d = (pos - truth).transpose(1, 0, 2)  # (x or y, time, corner)
        signed.append(d[:, np.isfinite(e)])
        visible += vis.sum()
        assert np.all(out["confidence"][np.isfinite(e)] == 1)
    e = np.concatenate(errs)
    assert len(e) > 0.5 * visible, "most visible corners must be detected"
    assert np.median(e) < 0.25
    assert np.percentile(e, 95) < 0.75
    # No bias: OpenCV 4.10-4.13 shift every corner by about +0.41 px (hence >=4.14).
    bias = np.concatenate(signed, axis=1).mean(axis=1)
    assert np.all(np.abs(bias) < 0.05), bias


def test_charuco_defaults_are_freemocaps_board():
    t = Charuco()
    board = t.board()
    assert board.getChessboardSize() == (7, 5)
    assert board.getMarkerLength() / board.getSquareLength() == pytest.approx(0.8)
    assert t.outputs()["position"].coords["keypoint"] == [str(i) for i in range(24)]


def test_charuco_bad_parameters():
    with pytest.raises(TrackerError, match="unknown dictionary"):
        get_tracker("charuco", dictionary="DICT_NOPE")
    with pytest.raises(TrackerError, match="no parameter 'squares'; its parameters: squares_x"):
        get_tracker("charuco", squares=3)
    with pytest.raises(TrackerError, match="squares_x takes a whole number"):
        get_tracker("charuco", squares_x=2.5)


def test_worker_threads_detect_what_one_thread_does(charuco_recording, tmp_path):
    """Two worker threads in one process (each with its own detector): the corners of one
    sequential read of the same luma frames."""
    import mocapflow

    result = mocapflow.process(
        charuco_recording, "charuco", tmp_path / "s.zarr", chunk_frames=8, report=False,
        cluster=mocapflow.ClusterOptions("threads", workers=2),
    )  # fmt: skip
    assert result.exit_code == 0 and result.sizing["threads_per_worker"] == 2
    ds = xr.open_zarr(result.store, consolidated=False)
    tracker = get_tracker("charuco")
    for c, view in enumerate(ds.view.values):
        path = charuco_recording / "synchronized_videos" / f"{view}.mp4"
        want = tracker(read_frames(path, 0, ds.sizes["time"], pixel_format="gray"))
        for name in ("position", "confidence"):
            np.testing.assert_array_equal(ds[name].values[c], want[name], err_msg=f"{view} {name}")
