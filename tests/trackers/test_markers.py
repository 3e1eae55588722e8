"""The markers tracker against projected ground truth of a noise-free render."""

from __future__ import annotations

import numpy as np
import xarray as xr

from mocapflow.trackers import Markers, get_tracker
from mocapflow.video import read_frames


def errors(root, tracker) -> tuple[np.ndarray, int, int]:
    gt = xr.open_zarr(root / "ground_truth.zarr", consolidated=False)
    errs, false_pos, visible = [], 0, 0
    for c, view in enumerate(gt.view.values):
        frames = read_frames(root / "synchronized_videos" / f"{view}.mp4", 0, 10_000)
        pos = tracker(frames)["position"][..., 0]
        truth = gt.position_2d.values[c, ..., 0]
        vis = gt.visible.values[c, ..., 0]
        e = np.hypot(*(pos - truth).transpose(1, 0, 2))
        errs.append(e[vis])
        visible += vis.sum()
        false_pos += int((np.isfinite(e) & ~vis).sum())
    return np.concatenate(errs), false_pos, visible


def test_markers_subpixel_accuracy(markers_recording):
    e, _, visible = errors(markers_recording, get_tracker("markers"))
    found = e[np.isfinite(e)]
    assert len(found) >= 0.98 * visible, "fully visible markers must be found"
    assert np.median(found) < 0.2
    assert np.percentile(found, 95) < 0.5


def test_markers_output_schema():
    t = Markers(n_markers=3)
    frames = np.full((2, 40, 40, 3), 100, np.uint8)
    out = t(frames)
    assert out["position"].shape == (2, 2, 3, 1) and np.isnan(out["position"]).all()
    assert out["confidence"].shape == (2, 3, 1)
    assert t.outputs()["position"].dims == ("space", "keypoint", "individual")


def test_touching_markers_of_other_hues_are_not_mistaken_for_a_third():
    import cv2

    from mocapflow.trackers import palette

    _, colours = palette(6)
    img = np.full((60, 80, 3), 90, np.uint8)
    # Markers 1 and 3 overlap; their blend's mean hue is marker 2's, which is absent.
    cv2.circle(img, (30, 30), 8, colours[1].tolist(), -1)
    cv2.circle(img, (42, 30), 8, colours[3].tolist(), -1)
    found = Markers().detect(img)
    assert 2 not in found and {1, 3} <= set(found)
