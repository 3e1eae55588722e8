from __future__ import annotations

import cv2
import numpy as np

from mocapflow.trackers import get_tracker


def test_framestats_matches_numpy():
    rng = np.random.default_rng(1)
    frames = rng.integers(0, 255, (5, 48, 64, 3), dtype=np.uint8)
    out = get_tracker("framestats")(frames)
    flat = frames.reshape(5, -1, 3).astype(np.float64)
    np.testing.assert_allclose(out["frame_mean"], flat.mean(1), rtol=1e-5)
    np.testing.assert_allclose(out["frame_std"], flat.std(1), rtol=1e-4)
    assert out["frame_mean"].dtype == np.float32


def test_framestats_spots_a_black_frame():
    frames = np.full((3, 20, 20, 3), 120, np.uint8)
    frames[1] = 0
    out = get_tracker("framestats")(frames)
    assert out["frame_mean"][1].max() == 0 and out["frame_mean"][0].min() == 120
    assert cv2.meanStdDev(frames[0])[1].max() == 0
