"""Gap filling and zero-phase low-pass: exact behaviour, and chunked == unchunked."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from mocapflow.filtering import fill_gaps, lowpass, smooth
from mocapflow.graph import smoothed
from mocapflow.schema import FilterSettings


def _points(rng, n_time=400, n_kp=5):
    t = np.arange(n_time) / 60.0
    slow = np.sin(2 * np.pi * 1.0 * t)[:, None, None, None] * 100
    pos = slow + rng.normal(0, 2, (n_time, 3, n_kp, 1))
    pos[50:55, :, 0] = np.nan  # short gap: filled
    pos[100:140, :, 1] = np.nan  # long gap: kept
    pos[:3, :, 2] = np.nan  # leading gap: kept
    return xr.Dataset(
        {"position": (("time", "space", "keypoint", "individual"), pos)},
        coords={
            "time": np.arange(n_time),
            "space": ["x", "y", "z"],
            "keypoint": [f"k{i}" for i in range(n_kp)],
            "individual": ["id_0"],
        },
        attrs={"fps": 60.0},
    )


def test_fill_gaps_only_short_interior_gaps():
    x = np.array([np.nan, 1.0, np.nan, np.nan, 4.0, np.nan, np.nan, np.nan, np.nan, 9.0, np.nan])
    out = fill_gaps(x[:, None], max_gap=3)[:, 0]
    np.testing.assert_allclose(out[:5], [np.nan, 1, 2, 3, 4])
    assert np.isnan(out[5:9]).all() and out[9] == 9 and np.isnan(out[10])


def test_lowpass_is_zero_phase_and_cuts_high_frequencies():
    fps = 100.0
    t = np.arange(1000) / fps
    slow, fast = np.sin(2 * np.pi * 1.0 * t), 0.5 * np.sin(2 * np.pi * 25.0 * t)
    out = lowpass((slow + fast)[:, None], fps, cutoff=7.0)[:, 0]
    mid = slice(200, 800)
    assert np.abs(out[mid] - slow[mid]).max() < 0.01  # no lag, fast part gone
    with pytest.raises(ValueError, match="between 0 and half"):
        lowpass(slow[:, None], fps, cutoff=60.0)


def test_chunked_equals_unchunked():
    ds = _points(np.random.default_rng(2))
    whole = smooth(ds.position.values, 60.0, max_gap=10, cutoff=7.0, order=4)
    # Stored in time chunks of 64, as triangulation writes it; filtered per keypoint.
    chunked = ds.chunk({"time": 64, "keypoint": 2})
    lazy = smoothed(chunked, FilterSettings(max_gap=10, cutoff=7.0, order=4))
    assert lazy.position.data.npartitions == 5  # one task per keypoint, whole series
    np.testing.assert_array_equal(lazy.position.values, whole)
    assert np.isfinite(whole[50:55, :, 0]).all() and np.isnan(whole[100:140, :, 1]).all()
    assert np.isnan(whole[:3, :, 2]).all()
    # The noise is cut: the filtered series is far closer to the clean 1 Hz signal.
    clean = np.sin(2 * np.pi * np.arange(400) / 60.0)[:, None, None] * 100
    raw_err = (ds.position.values[:, :, 3] - clean)[20:-20].std()
    assert (whole[:, :, 3] - clean)[20:-20].std() < 0.5 * raw_err


def test_every_run_is_filtered_and_impossible_settings_are_refused():
    from scipy.signal import butter

    from mocapflow.errors import UsageError
    from mocapflow.schema import padlen_of

    for order in range(1, 12):  # the padding scipy's sosfiltfilt uses by default
        sos = butter(order, 7.0, fs=30.0, output="sos")
        zeros = min((sos[:, 2] == 0).sum(), (sos[:, 5] == 0).sum())
        assert padlen_of(order) == 3 * (2 * len(sos) + 1 - zeros)
    # A run between two long gaps, shorter than the padding, is filtered all the same.
    rng = np.random.default_rng(1)
    x = rng.normal(0, 1, (60, 1))
    x[10:40] = np.nan
    out = lowpass(x, 30.0, cutoff=3.0)
    for run in (slice(0, 10), slice(40, 60)):  # 10 and 20 frames; the padding is 15
        assert np.isfinite(out[run]).all() and not np.allclose(out[run], x[run])
        assert out[run].std() < x[run].std()
    # Series no longer than the padding (15 frames at the default order), or a
    # cut-off at Nyquist: refused before anything is computed.
    with pytest.raises(UsageError, match=r"--order 4: .* longer than 15 frames.*at most 3"):
        FilterSettings().check(30.0, 15)
    FilterSettings().check(30.0, 16)
    with pytest.raises(UsageError, match="too few to low-pass"):
        FilterSettings(order=1).check(30.0, 6)
    with pytest.raises(UsageError, match="--cutoff 15 Hz: must be below half the frame rate"):
        FilterSettings(cutoff=15).check(30.0, 100)
    with pytest.raises(UsageError, match="--cutoff must be a positive frequency"):
        FilterSettings(cutoff=0)
    with pytest.raises(UsageError, match="--order 50: .* longer than 153 frames"):
        smoothed(_points(rng, n_time=60), FilterSettings(order=50))
