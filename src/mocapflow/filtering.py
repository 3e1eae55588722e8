"""Gap filling and zero-phase low-pass filtering of 3-D trajectories (numpy, scipy; no Dask).

Both work along time, one series (keypoint, axis) at a time, so a block that
holds whole time series gives exactly the result of the whole array: the graph
chunks by keypoint, never by time.
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from scipy.signal import butter, sosfiltfilt

from .schema import padlen_of

__all__ = ["fill_gaps", "lowpass", "smooth"]


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """Start and stop of each run of True in a 1-D mask."""
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True))


def fill_gaps(x: np.ndarray, max_gap: int) -> np.ndarray:
    """Linearly interpolate NaN gaps of at most ``max_gap`` frames along axis 0.

    Gaps at the start or end, or longer than ``max_gap``, stay NaN. This is
    xarray's ``interpolate_na`` over a frame axis (its ``max_gap`` counts the
    distance between the valid frames around a gap: ``max_gap + 1``).

    Parameters
    ----------
    x : numpy.ndarray
        ``(time, ...)``.
    max_gap : int
        Longest gap to fill, in frames.

    Returns
    -------
    numpy.ndarray
        A filled copy (float64).

    """
    x = np.asarray(x, np.float64)
    if max_gap < 1 or len(x) < 3:
        return x.copy()
    da = xr.DataArray(x.reshape(len(x), -1), dims=("t", "series"), coords={"t": np.arange(len(x))})
    filled = da.interpolate_na("t", method="linear", max_gap=max_gap + 1)
    return filled.values.reshape(x.shape)


def lowpass(x: np.ndarray, fps: float, cutoff: float = 7.0, order: int = 4) -> np.ndarray:
    """Zero-phase Butterworth low-pass along axis 0, on each finite run of each series.

    A forward-backward pass (``scipy.signal.sosfiltfilt``, second-order sections)
    of a Butterworth filter of ``order`` (FreeMoCap's defaults: 4th order, 7 Hz).
    Each end of a run is padded by scipy's default, ``3 * (2 * sections + 1)``
    frames (less 3 for an odd order; see
    :attr:`mocapflow.schema.FilterSettings.padlen`); a run no longer than that
    (between gaps too long to fill) is padded by what it holds, one frame less
    than its length, so every run is filtered and none passes through as it
    was. NaN stays NaN.

    Parameters
    ----------
    x : numpy.ndarray
        ``(time, ...)``.
    fps : float
        Frame rate, Hz.
    cutoff : float
        Cut-off frequency, Hz (below Nyquist).
    order : int
        Filter order.

    Returns
    -------
    numpy.ndarray
        The filtered copy (float64).

    """
    if not 0 < cutoff < fps / 2:
        raise ValueError(f"cutoff {cutoff} Hz must be between 0 and half of {fps} fps")
    sos = butter(order, cutoff, btype="low", fs=fps, output="sos")
    padlen = padlen_of(order)
    out = np.array(x, np.float64, copy=True)
    flat = out.reshape(len(out), -1)
    for j in range(flat.shape[1]):
        col = flat[:, j]
        for a, b in _runs(np.isfinite(col)):
            col[a:b] = sosfiltfilt(sos, col[a:b], padlen=min(padlen, b - a - 1))
    return out


def smooth(
    x: np.ndarray, fps: float, max_gap: int = 10, cutoff: float = 7.0, order: int = 4
) -> np.ndarray:
    """Fill gaps of up to ``max_gap`` frames, then low-pass (see :func:`lowpass`)."""
    return lowpass(fill_gaps(x, max_gap), fps, cutoff, order)
