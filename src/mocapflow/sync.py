"""Cameras not started together: each view's time offset, and the views aligned by it.

The convention, exactly: a view's ``sync_offset`` is in frames of the reference
view, and frame ``i`` of view ``v`` shows the instant that the reference shows
at frame ``i + sync_offset[v]``. A view that started recording ``k`` frames
after the reference has ``sync_offset = +k``. In seconds, a moment at time
``t`` on a view's own clock (its frames' timestamps, from its first frame) is
at ``t + sync_offset / fps_ref`` on the reference's clock.

Offsets are found from the store's 2-D tracks (``motion``: the normalised
cross-correlation of keypoint speeds, as Pose2Sim's ``synchronization.py``
does), from the videos' audio tracks (``audio``) or from a brightness step that
every camera sees (``flash``); see :mod:`mocapflow.sync_media` for the last two.

:func:`align` then puts every view on the reference's time axis, lazily: frame
``t`` of the aligned tracks is the view's frame at the reference's time of
frame ``t`` less the offset, found by the frames' own timestamps, so views at
other frame rates and variable-rate videos are aligned by time, not by index.
Fractional positions interpolate the 2-D tracks linearly, only where both
neighbouring frames were found. Triangulation, filtering, the exports and the
run report all read aligned tracks; the 3-D time axis is the reference's.

The per-signal functions take numpy arrays and return numpy arrays; only
:func:`align` builds a (lazy) dataset and :func:`sync_store` touches the store.
"""

from __future__ import annotations

import logging
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .errors import MocapflowError, UsageError
from .schema import CONFIDENCE, FRAME_TIME, POSITION, SYNC_OFFSET

if TYPE_CHECKING:
    import xarray as xr

__all__ = [
    "METHODS",
    "MIN_CONFIDENCE",
    "Estimate",
    "SyncError",
    "SyncResult",
    "align",
    "alignment",
    "check_offsets",
    "cross_offset",
    "frame_times",
    "motion_offsets",
    "motion_signal",
    "parse_offsets",
    "read_sync",
    "said",
    "source_index",
    "sync_store",
]

logger = logging.getLogger(__name__)

#: The ways an offset is found, the default first.
METHODS = ("motion", "audio", "flash")
#: Below this confidence (peak against runner-up, see :func:`cross_offset`) an
#: estimate is refused: the correlation has no single clear peak.
MIN_CONFIDENCE = 0.05
#: An estimate is said to look unsynchronised (without ``--sync``) at this
#: confidence or more, and one whole frame or more away from zero.
UNSYNC_CONFIDENCE = 0.2
#: Keypoints whose speeds carry people's timing (as Pose2Sim picks them):
#: wrists and ankles move fast and are seen well.
PERSON_KEYPOINTS = ("left_wrist", "right_wrist", "left_ankle", "right_ankle")
#: Positions within this fraction of a frame of a whole frame are that frame.
SNAP = 1e-3
#: Fewest frames two views must share for a correlation to count.
MIN_OVERLAP = 20
#: Methods' estimates that differ by more than this (frames) are said to disagree.
DISAGREE_FRAMES = 1.0


class SyncError(MocapflowError):
    """A view's offset cannot be estimated, or an offset given cannot work."""


@dataclass(frozen=True)
class Estimate:
    """One view's offset against the reference.

    Attributes
    ----------
    view : str
        The view.
    offset : float
        ``sync_offset`` in frames of the reference (NaN when none was found).
    seconds : float
        The same in seconds.
    method : str
        ``motion``, ``audio``, ``flash``, ``given`` (``--offset``) or ``reference``.
    confidence : float
        0 to 1: how far the correlation's peak stands above its runner-up
        (see :func:`cross_offset`); 1 for the reference and offsets given.
    reason : str or None
        Why no offset was found.
    gain : float
        How much better the views agree at this offset than at none (the
        epipolar cost at 0 over the cost at the offset; NaN where not measured).

    """

    view: str
    offset: float
    seconds: float
    method: str
    confidence: float
    reason: str | None = None
    gain: float = math.nan

    def to_dict(self) -> dict:
        """Return the estimate as recorded in the store."""
        return {
            "offset": _num(self.offset),
            "seconds": _num(self.seconds),
            "method": self.method,
            "confidence": _num(self.confidence),
            **({"gain": _num(self.gain)} if np.isfinite(self.gain) else {}),
            **({"reason": self.reason} if self.reason else {}),
        }


def said(frames: float) -> str:
    """Return an offset as said to users: ``+7`` for whole frames, else ``+2.49``."""
    if not np.isfinite(frames):
        return "-"
    return f"{frames:+.0f}" if float(frames).is_integer() else f"{frames:+.2f}"


def _num(x: float) -> float | None:
    return round(float(x), 4) if np.isfinite(x) else None


# -- signals ---------------------------------------------------------------------


def frame_times(tracks: xr.Dataset) -> list[np.ndarray]:
    """Return each view's frames' own times (seconds from its first frame), its frames only.

    Stores made before timestamps were recorded give ``i / video_fps``.
    """
    fps = tracks.video_fps.values
    counts = tracks.n_frames.values
    if FRAME_TIME in tracks.coords or FRAME_TIME in tracks:
        rows = np.asarray(tracks[FRAME_TIME].values, np.float64)
        return [row[: int(n)] for row, n in zip(rows, counts, strict=True)]
    return [np.arange(int(n)) / float(f or 1.0) for n, f in zip(counts, fps, strict=True)]


def motion_signal(
    position: np.ndarray,
    confidence: np.ndarray,
    times: np.ndarray,
    min_confidence: float = 0.5,
) -> np.ndarray:
    """Return one view's motion over time: the mean speed of its confident keypoints.

    Parameters
    ----------
    position : numpy.ndarray
        ``(time, 2, keypoint, individual)`` pixels.
    confidence : numpy.ndarray
        ``(time, keypoint, individual)``.
    times : numpy.ndarray
        ``(time,)`` each frame's own time, seconds.
    min_confidence : float
        Points under it are not used.

    Returns
    -------
    numpy.ndarray
        ``(time,)`` pixels per second, by central differences over the frames'
        own times; NaN where no keypoint was found in both neighbouring frames.

    """
    pos = np.asarray(position, np.float64)
    ok = np.asarray(confidence) >= min_confidence
    pos = np.where(ok[:, None], pos, np.nan)
    n = len(pos)
    out = np.full(n, np.nan)
    if n < 3:
        return out
    dt = (times[2:] - times[:-2])[:, None, None]
    vel = (pos[2:] - pos[:-2]) / dt[:, None]
    speed = np.hypot(vel[:, 0], vel[:, 1]).reshape(n - 2, -1)
    found = np.isfinite(speed)
    with np.errstate(invalid="ignore"):
        mean = np.where(found, speed, 0.0).sum(1) / found.sum(1)
    out[1:-1] = np.where(found.any(1), mean, np.nan)
    return out


def _resample(signal: np.ndarray, times: np.ndarray, step: float) -> np.ndarray:
    """Put a signal sampled at ``times`` on a regular grid of ``step`` seconds (NaN kept)."""
    good = np.isfinite(signal) & np.isfinite(times)
    if good.sum() < 2:
        return np.full(max(int(np.nanmax(times, initial=0) / step) + 1, 1), np.nan)
    grid = np.arange(0.0, times[np.isfinite(times)][-1] + step / 2, step)
    values = np.interp(grid, times[good], signal[good])
    # a grid point is valid only where the signal was found at the frames around it
    at = np.clip(np.searchsorted(times, grid), 1, len(times) - 1)
    near = good[at - 1] & good[at]
    exact = np.isclose(times[np.clip(at, 0, len(times) - 1)], grid, atol=step * SNAP)
    return np.where(near | (exact & good[at]), values, np.nan)


def cross_offset(
    reference: np.ndarray,
    other: np.ndarray,
    max_lag: int | None = None,
    min_overlap: int = MIN_OVERLAP,
) -> tuple[float, float, str | None]:
    """Return the lag of ``other`` against ``reference``, its confidence, and why none.

    The lag ``k`` maximises the Pearson correlation of ``reference[i + k]``
    with ``other[i]`` over the samples both have (NaN skipped), so ``k`` is the
    convention's ``sync_offset``. It is refined to a fraction of a sample by a
    parabola through the peak and its neighbours.

    Parameters
    ----------
    reference, other : numpy.ndarray
        Signals on the same regular grid, NaN where unknown.
    max_lag : int, optional
        Largest ``|k|`` tried; default half the shorter signal.
    min_overlap : int
        Fewest samples shared at a lag for it to count.

    Returns
    -------
    lag : float
        NaN when none.
    confidence : float
        ``1 - max(runner_up, 0) / peak``: ``runner_up`` is the highest local
        maximum of the correlation other than the peak (0 when it has none), so
        1 is one clear peak and 0 a tie.
    reason : str or None
        Why no lag was found.

    """
    from scipy.signal import correlate, correlation_lags, find_peaks

    a, b = np.asarray(reference, np.float64), np.asarray(other, np.float64)
    ma, mb = np.isfinite(a), np.isfinite(b)
    if ma.sum() < min_overlap or mb.sum() < min_overlap:
        return math.nan, 0.0, "too few frames with tracked points"
    a0 = np.where(ma, a - a[ma].mean(), 0.0)
    b0 = np.where(mb, b - b[mb].mean(), 0.0)
    fa, fb = ma.astype(float), mb.astype(float)

    def xc(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return correlate(x, y, mode="full", method="fft")

    n = xc(fa, fb)
    sab, sa, sb = xc(a0, b0), xc(a0, fb), xc(fa, b0)
    saa, sbb = xc(a0 * a0, fb), xc(fa, b0 * b0)
    lags = correlation_lags(len(a), len(b), mode="full")
    n = np.round(n)
    with np.errstate(invalid="ignore", divide="ignore"):
        cov = sab - sa * sb / n
        var = (saa - sa**2 / n) * (sbb - sb**2 / n)
        r = cov / np.sqrt(var)
    if max_lag is None:
        max_lag = min(len(a), len(b)) // 2
    usable = (n >= min_overlap) & (np.abs(lags) <= max_lag) & np.isfinite(r) & (var > 1e-12)
    if not usable.any():
        return math.nan, 0.0, "the views share too few frames with tracked points"
    scan = np.where(usable, r, -np.inf)
    best = int(np.argmax(scan))
    peak = float(scan[best])
    if not peak > 0:
        return math.nan, 0.0, "no motion in common with the reference"
    maxima, _ = find_peaks(np.where(usable, r, -1.0))
    others = [float(r[m]) for m in maxima if m != best and usable[m]]
    runner = max(others, default=0.0)
    confidence = float(np.clip(1.0 - max(runner, 0.0) / peak, 0.0, 1.0))
    lag = float(lags[best])
    if 0 < best < len(r) - 1 and usable[best - 1] and usable[best + 1]:
        y0, y1, y2 = r[best - 1], r[best], r[best + 1]
        denom = y0 - 2 * y1 + y2
        if denom < 0:
            lag += float(np.clip(0.5 * (y0 - y2) / denom, -0.5, 0.5))
    return lag, confidence, None


def _person_keypoints(keypoints: list[str]) -> list[int]:
    """Return the keypoints that carry timing: a person's wrists and ankles, else all of them."""
    picked = [i for i, k in enumerate(keypoints) if k in PERSON_KEYPOINTS]
    return picked if len(picked) >= 2 else list(range(len(keypoints)))


def motion_offsets(
    position: np.ndarray,
    confidence: np.ndarray,
    times: list[np.ndarray],
    views: list[str],
    keypoints: list[str],
    fps_ref: float,
    reference: int = 0,
    max_lag: int | None = None,
    subframe: bool = False,
    min_confidence: float = 0.5,
) -> list[Estimate]:
    """Estimate every view's offset from keypoint speeds (numpy in, estimates out).

    Parameters
    ----------
    position : numpy.ndarray
        ``(view, time, 2, keypoint, individual)`` pixels.
    confidence : numpy.ndarray
        ``(view, time, keypoint, individual)``.
    times : list of numpy.ndarray
        Each view's frames' own times, seconds (see :func:`frame_times`).
    views, keypoints : list of str
        Their names.
    fps_ref : float
        The reference's frame rate: the grid every signal is put on.
    reference : int
        The reference view's index.
    max_lag : int, optional
        Largest offset tried, reference frames.
    subframe : bool
        Keep the fraction of a frame the correlation's peak gives; by default
        offsets are whole frames (the 2-D tracks are then not interpolated).
    min_confidence : float
        2-D points under it are not used.

    Returns
    -------
    list of Estimate
        In view order; the reference's is 0.

    """
    keep = _person_keypoints(keypoints)
    step = 1.0 / fps_ref
    signals = []
    for v in range(len(views)):
        n = len(times[v])
        s = motion_signal(
            position[v, :n][:, :, keep], confidence[v, :n][:, keep], times[v], min_confidence
        )
        signals.append(_resample(s, times[v], step))
    out = []
    for v, name in enumerate(views):
        if v == reference:
            out.append(Estimate(name, 0.0, 0.0, "reference", 1.0))
            continue
        lag, conf, reason = cross_offset(signals[reference], signals[v], max_lag)
        if reason is None and conf < MIN_CONFIDENCE:
            reason = f"no single clear peak in the motion correlation (confidence {conf:.2f})"
        if reason is None and not subframe:
            lag = float(round(lag))
        if reason is not None:
            lag = math.nan
        out.append(Estimate(name, lag, lag * step, "motion", conf, reason))
    return out


def _take(values: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Numpy :func:`_shift`: rows of ``values`` at fractional ``index`` (NaN outside, linear)."""
    n = len(values)
    valid = np.isfinite(index)
    i0 = np.floor(np.where(valid, index, 0)).astype(np.int64)
    w = np.where(valid, index - i0, 0.0).reshape((-1,) + (1,) * (values.ndim - 1))
    a = values[np.clip(i0, 0, n - 1)].astype(np.float64)
    b = values[np.clip(i0 + 1, 0, n - 1)].astype(np.float64)
    out = np.where(w > 0, a * (1 - w) + b * w, a)
    return np.where(valid.reshape(w.shape), out, np.nan)


def _skew(t: np.ndarray) -> np.ndarray:
    return np.array([[0, -t[2], t[1]], [t[2], 0, -t[0]], [-t[1], t[0], 0]])


def _essential(a, b) -> np.ndarray:
    """Return the essential matrix taking camera ``a``'s normalised points to camera ``b``'s."""
    ra, rb = a.rotation_matrix, b.rotation_matrix
    rot = rb @ ra.T
    t = np.asarray(b.translation, np.float64) - rot @ np.asarray(a.translation, np.float64)
    return _skew(t) @ rot


def _sampson(xa: np.ndarray, xb: np.ndarray, e: np.ndarray) -> np.ndarray:
    """Sampson distance of normalised point pairs ``(..., 2)`` to the epipolar geometry ``e``."""
    ha = np.concatenate([xa, np.ones(xa.shape[:-1] + (1,))], -1)
    hb = np.concatenate([xb, np.ones(xb.shape[:-1] + (1,))], -1)
    ex, etx = ha @ e.T, hb @ e
    num = np.einsum("...i,...i", hb, ex) ** 2
    den = ex[..., 0] ** 2 + ex[..., 1] ** 2 + etx[..., 0] ** 2 + etx[..., 1] ** 2
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.sqrt(num / den)


#: Frames sampled per lag when scoring a pair of views (evenly spread): the
#: cost of a lag is a mean, steady long before every frame is read.
EPIPOLAR_FRAMES = 400
#: Lags each side of a pair's best (on a quarter of the frames) scored again on all of them.
FINE_LAGS = 6
#: Epipolar distances are truncated at this fraction of the focal length (2 %,
#: about 30 px at HD) before they are averaged: a robust (truncated L1) cost that
#: misdetections cannot dominate.
EPIPOLAR_CAP = 0.02
#: Largest offset tried by default, seconds (and at most half the shorter view).
MAX_OFFSET_S = 10.0


def _pair_curve(
    xa: np.ndarray,
    xb: np.ndarray,
    e: np.ndarray,
    focal: float,
    lags: np.ndarray,
    n_frames: int = EPIPOLAR_FRAMES,
) -> np.ndarray:
    """Mean truncated epipolar distance (px) of two views' points, per lag ``k`` (a[i + k], b[i]).

    ``xa``, ``xb`` are ``(time, keypoint, individual, 2)`` normalised points; with
    several individuals each of ``a``'s is paired with the ``b`` individual
    that agrees best, so the slots need not correspond. Up to
    :data:`EPIPOLAR_FRAMES` of ``b``'s frames, evenly spread, are paired with
    ``a``'s at every lag at once (blocks of lags, array arithmetic).
    """
    ta = len(xa)
    out = np.full(len(lags), np.nan)
    seen = np.flatnonzero(np.isfinite(xb).any(axis=(1, 2, 3)))
    if len(seen) < MIN_OVERLAP or ta == 0:
        return out
    frames = seen[np.unique(np.linspace(0, len(seen) - 1, n_frames).astype(int))]
    ha = np.concatenate([xa, np.ones(xa.shape[:-1] + (1,))], -1)
    hb = np.concatenate([xb[frames], np.ones(xb[frames].shape[:-1] + (1,))], -1)
    ex = ha @ e.T  # (ta, kp, ia, 3): a's epipolar lines in b
    etx = hb @ e  # (f, kp, ib, 3): b's epipolar lines in a
    den_b = (etx[..., 0] ** 2 + etx[..., 1] ** 2)[:, :, None]  # (f, kp, 1, ib)
    per_lag = max(1, 2_000_000 // max(ex[0].size * len(frames) * xb.shape[2], 1))
    for s in range(0, len(lags), per_lag):
        block = lags[s : s + per_lag]
        idx = frames[None, :] + block[:, None]  # (l, f) a's frames
        inside = (idx >= 0) & (idx < ta)
        a = ex[np.clip(idx, 0, ta - 1)]  # (l, f, kp, ia, 3)
        a = np.where(inside[:, :, None, None, None], a, np.nan)
        num = np.einsum("lfkac,fkbc->lfkab", a, hb) ** 2
        den = (a[..., 0] ** 2 + a[..., 1] ** 2)[..., None] + den_b[None]
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices
            d = np.minimum(np.sqrt(num / den), EPIPOLAR_CAP) * focal  # (l, f, kp, ia, ib)
            per = np.nanmean(d, axis=2)  # (l, f, ia, ib)
            best = np.nanmin(per, axis=-1)  # (l, f, ia)
            enough = np.isfinite(best).any(-1).sum(1) >= MIN_OVERLAP
            cost = np.nanmean(best.reshape(len(block), -1), axis=1)
        out[s : s + len(block)] = np.where(enough, cost, np.nan)
    return out


def _confidence(curve: np.ndarray, best: int) -> float:
    """``1 - min / runner_up`` of a cost curve: ``runner_up`` is its lowest other local minimum."""
    from scipy.signal import find_peaks

    finite = np.isfinite(curve)
    if not finite[best]:
        return 0.0
    filled = np.where(finite, curve, np.nanmax(curve[finite]))
    minima, _ = find_peaks(-filled)
    others = [filled[m] for m in minima if abs(m - best) > 1]
    if not others:
        return 1.0 if finite.sum() > 3 else 0.0
    low = min(others)
    return float(np.clip(1.0 - filled[best] / low, 0.0, 1.0)) if low > 0 else 0.0


def _refine(curves: dict, offsets: np.ndarray, max_lag: int, reference: int) -> np.ndarray:
    """Return offsets to a fraction of a frame, from every pair's own cost curve.

    Each pair's lag at the whole-frame solution is refined by a parabola through
    its curve there (weighted by the parabola's curvature: a sharp minimum
    counts more), and the offsets are the weighted least-squares solution of
    ``o_b - o_a = lag_ab`` with the reference at 0. Refining one view at a time
    on a summed curve, the others held at whole frames, pulls every estimate
    towards their rounding instead.
    """
    n = len(offsets)
    rows, rhs, weights = [], [], []
    for (a, b), c in curves.items():
        d = offsets[b] - offsets[a]
        j = int(round(d)) + max_lag
        if not 0 < j < len(c) - 1 or not np.isfinite(c[j - 1 : j + 2]).all():
            continue
        y0, y1, y2 = c[j - 1 : j + 2]
        denom = y0 - 2 * y1 + y2
        if denom <= 0:
            continue
        row = np.zeros(n)
        row[a], row[b] = -1.0, 1.0
        rows.append(row)
        rhs.append(d + float(np.clip(0.5 * (y0 - y2) / denom, -0.5, 0.5)))
        weights.append(np.sqrt(denom))
    keep = [v for v in range(n) if v != reference]
    if not rows:
        return offsets.astype(float)
    a = np.array(rows)[:, keep] * np.array(weights)[:, None]
    b = np.array(rhs) * np.array(weights)
    solved = offsets.astype(float).copy()
    seen = np.abs(a).sum(0) > 0
    if seen.any():
        x = np.linalg.lstsq(a[:, seen], b, rcond=None)[0]
        solved[np.array(keep)[seen]] = x
    return solved


def epipolar_offsets(
    position: np.ndarray,
    confidence: np.ndarray,
    times: list[np.ndarray],
    views: list[str],
    cameras: list,
    fps_ref: float,
    reference: int = 0,
    max_lag: int | None = None,
    subframe: bool = False,
    min_confidence: float = 0.5,
) -> list[Estimate]:
    """Estimate every view's offset from where its moving keypoints agree with the other views.

    With calibrated cameras, a keypoint seen by two views at the same instant
    lies on its epipolar line; at the wrong lag it moves off it by as much as
    it moved. Each pair of views is scored per lag by the median Sampson
    distance (px) of their confident keypoints, and the offsets are those that
    minimise the sum over every pair, by coordinate descent from each view's
    best lag against the reference. Speed correlation (:func:`motion_offsets`)
    needs long, distinctive motion; this needs only motion, and uses every
    keypoint in both image directions.

    Parameters
    ----------
    position, confidence, times, views, fps_ref, reference, max_lag, subframe, min_confidence
        As for :func:`motion_offsets`.
    cameras : list of Camera
        In view order.

    Returns
    -------
    list of Estimate
        In view order; ``confidence`` is ``1 - cost / runner_up`` of the view's
        summed cost curve (its lowest other local minimum).

    """
    from .triangulate import CameraSet

    n_views = len(views)
    step = 1.0 / fps_ref
    ref_len = len(times[reference])
    points = []
    for v in range(n_views):
        n = len(times[v])
        pos = np.asarray(position[v, :n], np.float64)
        ok = np.asarray(confidence[v, :n]) >= min_confidence
        pos = np.where(ok[:, None], pos, np.nan)  # (t, 2, kp, ind)
        grid = np.arange(int(round(times[v][-1] * fps_ref)) + 1) * step if n else np.zeros(0)
        index = source_index(grid, times[v], 0.0)
        pos = _take(pos, index) if not np.array_equal(index, np.arange(n)) else pos
        uv = np.moveaxis(pos, 1, -1)  # (t, kp, ind, 2)
        shape = uv.shape
        one = CameraSet.from_cameras([cameras[v]])
        points.append(one.undistort(uv.reshape(1, -1, 2))[0].reshape(shape))
    if max_lag is None:
        max_lag = max(min(min(len(p) for p in points) // 2, int(MAX_OFFSET_S * fps_ref)), 1)
    lags = np.arange(-max_lag, max_lag + 1)
    focal = [float(np.mean(np.diag(c.matrix)[:2])) for c in cameras]
    curves = {}
    for a in range(n_views):
        for b in range(a + 1, n_views):
            e = _essential(cameras[a], cameras[b])
            f = (focal[a] + focal[b]) / 2
            # every lag on a quarter of the frames, then the lags about the best on all
            coarse = _pair_curve(points[a], points[b], e, f, lags, EPIPOLAR_FRAMES // 4)
            if np.isfinite(coarse).any():
                near = np.abs(lags - lags[np.nanargmin(coarse)]) <= FINE_LAGS
                coarse[near] = _pair_curve(points[a], points[b], e, f, lags[near])
            curves[a, b] = coarse

    def relative(a: int, b: int, d: np.ndarray) -> np.ndarray:
        """Cost of views ``a`` and ``b`` at offsets differing by ``d = o_b - o_a``."""
        # a[i + k] and b[i] show one instant when k = o_b - o_a
        if a < b:
            c, dd = curves[a, b], d
        else:
            c, dd = curves[b, a], -d
        at = np.round(dd).astype(int) + max_lag
        inside = (at >= 0) & (at < len(lags))
        return np.where(inside, c[np.clip(at, 0, len(lags) - 1)], np.nan)

    offsets = np.zeros(n_views)
    for v in range(n_views):
        if v != reference:
            c = relative(reference, v, lags.astype(float))
            offsets[v] = lags[np.nanargmin(c)] if np.isfinite(c).any() else 0.0

    def own(v: int) -> np.ndarray:
        """Return the summed cost of view ``v``'s pairs, per candidate offset ``lags``."""
        total = np.zeros(len(lags))
        for u in range(n_views):
            if u != v:
                c = relative(u, v, lags - offsets[u])
                total = total + np.where(np.isfinite(c), c, np.nan)
        return total

    for _ in range(10):
        moved = False
        for v in range(n_views):
            if v == reference:
                continue
            c = own(v)
            if np.isfinite(c).any():
                best = float(lags[np.nanargmin(c)])
                moved |= best != offsets[v]
                offsets[v] = best
        if not moved:
            break
    refined = _refine(curves, offsets, max_lag, reference)
    out = []
    for v, name in enumerate(views):
        if v == reference:
            out.append(Estimate(name, 0.0, 0.0, "reference", 1.0))
            continue
        c = own(v)
        if not np.isfinite(c).any():
            reason = "too few frames where it and another view both found keypoints"
            out.append(Estimate(name, math.nan, math.nan, "motion", 0.0, reason))
            continue
        best = int(np.nanargmin(c))
        conf = _confidence(c, best)
        lag = float(lags[best])
        if abs(refined[v] - lag) <= 1:  # the pairs' own peaks, solved together
            lag = float(refined[v]) if subframe else float(np.round(refined[v])) + 0.0
        reason = None
        if conf < MIN_CONFIDENCE:
            reason = f"no single clear lag where the views agree (confidence {conf:.2f})"
            lag = math.nan
        if np.isfinite(lag):
            n_v = len(times[v])
            if min(ref_len, lag + n_v) - max(0.0, lag) < 1:
                lag, reason = math.nan, "no lag leaves frames in common with the reference"
        at_zero = c[max_lag] if np.isfinite(c[max_lag]) else math.nan
        gain = float(at_zero / c[best]) if c[best] > 0 else math.nan
        out.append(Estimate(name, lag, lag * step, "motion", conf, reason, gain))
    return out


# -- alignment -------------------------------------------------------------------


def source_index(ref_times: np.ndarray, view_times: np.ndarray, offset_s: float) -> np.ndarray:
    """Return, per reference frame, the (fractional) frame of a view showing that instant.

    Parameters
    ----------
    ref_times : numpy.ndarray
        The reference's frames' own times, seconds.
    view_times : numpy.ndarray
        The view's, seconds from its first frame (strictly increasing).
    offset_s : float
        The view's offset, seconds (see the module's convention).

    Returns
    -------
    numpy.ndarray
        ``(len(ref_times),)`` float: the view's frame index, NaN outside its
        frames. Within :data:`SNAP` of a whole frame it is that frame.

    """
    good = np.isfinite(view_times)
    vt = view_times[good]
    target = np.asarray(ref_times, np.float64) - offset_s
    if len(vt) == 0:
        return np.full(len(target), np.nan)
    if len(vt) == 1:
        return np.where(np.isclose(target, vt[0]), 0.0, np.nan)
    span = np.median(np.diff(vt))
    idx = np.interp(target, vt, np.arange(len(vt), dtype=np.float64))
    outside = (target < vt[0] - SNAP * span) | (target > vt[-1] + SNAP * span)
    idx = np.where(outside | ~np.isfinite(target), np.nan, idx)
    whole = np.round(idx)
    return np.where(np.abs(idx - whole) <= SNAP, whole, idx)


@dataclass(frozen=True)
class Alignment:
    """How a store's views are put on the reference's time axis.

    Attributes
    ----------
    reference : str
        The reference view.
    offsets : dict of str to float
        ``sync_offset`` per view, reference frames.
    times : numpy.ndarray
        The reference's frames' times: the aligned time axis, seconds.
    index : numpy.ndarray
        ``(view, time)`` each view's fractional source frame (NaN: none).
    fps : float
        The reference's frame rate.
    resampled : list of str
        Views aligned by time at another frame rate or with irregular timestamps.

    """

    reference: str
    offsets: dict[str, float]
    times: np.ndarray
    index: np.ndarray
    fps: float
    resampled: list[str] = field(default_factory=list)

    def attrs(self) -> dict:
        """Return what a 3-D group records of it."""
        return {
            "reference": self.reference,
            "offsets": {k: _num(v) for k, v in self.offsets.items()},
            "resampled": list(self.resampled),
        }


def read_sync(store: str | Path) -> dict:
    """Return the store's sync record (``{}`` when offsets were never set)."""
    from . import ledger

    return dict(ledger.root_attrs(store).get("sync") or {})


def alignment(
    tracks: xr.Dataset,
    offsets: dict[str, float] | None = None,
    reference: str | None = None,
) -> Alignment | None:
    """Return how the views line up, or None when they do already (frame ``i`` is one instant).

    Parameters
    ----------
    tracks : xarray.Dataset
        The 2-D store.
    offsets : dict of str to float, optional
        ``sync_offset`` per view; views not named have 0.
    reference : str, optional
        The reference view; default the first.

    """
    views = [str(v) for v in tracks.view.values]
    offsets = {v: float((offsets or {}).get(v, 0.0)) for v in views}
    ref = views.index(reference) if reference in views else 0
    times = frame_times(tracks)
    fps = [float(f) for f in tracks.video_fps.values]
    fps_ref = fps[ref] or float(tracks.attrs.get("fps") or 1.0)
    ref_times = times[ref]
    resampled = []
    for v, name in enumerate(views):
        grid = np.arange(len(times[v])) / fps_ref
        regular = len(times[v]) and np.allclose(times[v], grid, atol=SNAP / fps_ref * 100)
        if not regular and len(times[v]):
            resampled.append(name)
    if not resampled and not any(offsets.values()):
        return None
    index = np.stack(
        [source_index(ref_times, times[v], offsets[name] / fps_ref) for v, name in enumerate(views)]
    )
    return Alignment(views[ref], offsets, ref_times, index, fps_ref, resampled)


def _shift(data, index: np.ndarray):
    """Take a view's frames ``(time, ...)`` at fractional ``index``, lazily (Dask in, Dask out)."""
    import dask.array as da

    n = data.shape[0]
    valid = np.isfinite(index)
    run = index[valid]
    if len(run) and np.all(run == np.round(run)) and np.all(np.diff(run) == 1):
        # whole frames in order (an integer offset at the same rate): slices and
        # NaN padding keep the graph as small as the store's own chunks
        first, last = int(run[0]), int(run[-1]) + 1
        before, after = int(np.argmax(valid)), len(index) - int(np.flatnonzero(valid)[-1]) - 1
        pieces = [data[first:last].astype(np.float64)]
        if before:
            pieces.insert(0, da.full((before, *data.shape[1:]), np.nan, chunks=-1))
        if after:
            pieces.append(da.full((after, *data.shape[1:]), np.nan, chunks=-1))
        return da.concatenate(pieces, axis=0)
    if not len(run):
        return da.full((len(index), *data.shape[1:]), np.nan, chunks=-1)
    i0 = np.floor(np.where(valid, index, 0)).astype(np.int64)
    w = np.where(valid, index - i0, 0.0)
    lo = np.clip(i0, 0, n - 1)
    hi = np.clip(i0 + 1, 0, n - 1)
    shape = (-1,) + (1,) * (data.ndim - 1)
    a = data[lo].astype(np.float64)
    if np.any(w > 0):
        b = data[hi].astype(np.float64)
        wd = da.from_array(w.reshape(shape), chunks=(a.chunks[0],) + (1,) * (data.ndim - 1))
        mixed = a * (1 - wd) + b * wd  # NaN where either neighbour is missing
        a = da.where(wd > 0, mixed, a)
    vd = da.from_array(valid.reshape(shape), chunks=(a.chunks[0],) + (1,) * (data.ndim - 1))
    return da.where(vd, a, np.nan)


def align(tracks: xr.Dataset, plan: Alignment | None) -> xr.Dataset:
    """Return the 2-D tracks on the reference's time axis (as they are when ``plan`` is None).

    ``position`` and ``confidence`` of every view are taken at its source
    frames (linear between two found frames for fractional ones); the ``time``
    coordinate is the reference's frames' times, and the per-view coordinates
    are kept, with ``sync_offset`` set to the plan's.
    """
    import xarray as xr

    if plan is None:
        return tracks
    views = [str(v) for v in tracks.view.values]
    data = {}
    for name in (POSITION, CONFIDENCE):
        var = tracks[name]
        parts = [_shift(var.data[v], plan.index[v]) for v in range(len(views))]
        import dask.array as da

        data[name] = (var.dims, da.stack(parts).astype(var.dtype), dict(var.attrs))
    coords = {k: c for k, c in tracks.coords.items() if "time" not in c.dims and k != SYNC_OFFSET}
    coords["time"] = ("time", plan.times)
    coords[SYNC_OFFSET] = ("view", np.array([plan.offsets[v] for v in views]))
    attrs = {**tracks.attrs, "fps": plan.fps, "sync": plan.attrs()}
    return xr.Dataset(data, coords=coords, attrs=attrs)


# -- offsets given by hand -------------------------------------------------------


def parse_offsets(values: list[str] | None) -> dict[str, float]:
    """Parse ``--offset VIEW=FRAMES`` options.

    Raises
    ------
    UsageError
        If one is not ``VIEW=FRAMES`` with a number of frames.

    """
    out: dict[str, float] = {}
    for text in values or []:
        name, sep, value = str(text).partition("=")
        try:
            frames = float(value)
        except ValueError:
            frames = math.nan
        if not sep or not name or not math.isfinite(frames):
            raise UsageError(
                f"--offset {text}: give VIEW=FRAMES, e.g. --offset cam02=7 (frames of the "
                "reference view; a view that started k frames late has +k)"
            )
        out[name.strip()] = frames
    return out


def check_offsets(
    offsets: dict[str, float], views: list[str], n_frames: dict[str, int], reference: str
) -> None:
    """Refuse offsets naming no view, or larger than the frames a view shares with the reference.

    Raises
    ------
    UsageError
        Naming the view, the offset and the lengths.

    """
    for name, k in offsets.items():
        if name not in views:
            raise UsageError(
                f"--offset {name}={k:g}: no view {name!r}; the views are {', '.join(views)}"
            )
        n_ref, n_v = n_frames[reference], n_frames[name]
        shared = min(n_ref, k + n_v) - max(0.0, k)
        if shared < 1:
            raise UsageError(
                f"--offset {name}={k:g}: larger than the overlap: {name} ({n_v} frames) would "
                f"share no frame with the reference {reference} ({n_ref} frames); an offset "
                f"must lie between {-(n_v - 1)} and {n_ref - 1}"
            )


# -- the stage -------------------------------------------------------------------


@dataclass
class SyncResult:
    """What :func:`sync_store` found and wrote.

    Attributes
    ----------
    store : pathlib.Path
        The store.
    reference : str
        The reference view.
    fps : float
        The reference's frame rate.
    chosen : list of Estimate
        The offset written per view, in view order.
    estimates : dict of str to list of Estimate
        Every method's estimates.
    disagreements : list of str
        One line per view where methods disagree.

    """

    store: Path
    reference: str
    fps: float
    chosen: list[Estimate]
    estimates: dict[str, list[Estimate]]
    disagreements: list[str] = field(default_factory=list)

    @property
    def offsets(self) -> dict[str, float]:
        """``sync_offset`` per view."""
        return {e.view: e.offset for e in self.chosen}

    def record(self) -> dict:
        """Return the store's sync record."""
        return {
            "reference": self.reference,
            "fps": self.fps,
            "offsets": {e.view: _num(e.offset) for e in self.chosen},
            "views": {e.view: e.to_dict() for e in self.chosen},
            "methods": {m: [e.to_dict() for e in es] for m, es in self.estimates.items()},
            "disagreements": list(self.disagreements),
        }


def estimate(
    tracks: xr.Dataset,
    method: str,
    reference: int,
    max_lag: int | None = None,
    subframe: bool = False,
    cameras: dict | None = None,
    brightness: np.ndarray | None = None,
) -> list[Estimate]:
    """Estimate every view's offset by one method (the store's 2-D tracks, or its videos).

    ``motion`` uses the cameras when every view has one (:func:`epipolar_offsets`),
    else the keypoints' speeds (:func:`motion_offsets`).

    Raises
    ------
    UsageError
        For an unknown method.

    """
    views = [str(v) for v in tracks.view.values]
    times = frame_times(tracks)
    fps_ref = float(tracks.video_fps.values[reference] or tracks.attrs.get("fps") or 1.0)
    if method == "motion":
        if POSITION not in tracks or CONFIDENCE not in tracks:
            reason = "the store holds no 2-D points to follow (its tracker gives none)"
            return [
                Estimate(v, 0.0, 0.0, "reference", 1.0)
                if i == reference
                else Estimate(v, math.nan, math.nan, "motion", 0.0, reason)
                for i, v in enumerate(views)
            ]
        names = [str(k) for k in tracks.keypoint.values]
        if cameras and all(v in cameras for v in views):
            return epipolar_offsets(
                np.asarray(tracks[POSITION].values),
                np.asarray(tracks[CONFIDENCE].values),
                times,
                views,
                [cameras[v] for v in views],
                fps_ref,
                reference,
                max_lag,
                subframe,
            )
        return motion_offsets(
            np.asarray(tracks[POSITION].values),
            np.asarray(tracks[CONFIDENCE].values),
            times,
            views,
            names,
            fps_ref,
            reference,
            max_lag,
            subframe,
        )
    from . import sync_media

    if method == "audio":
        paths = [str(p) for p in tracks.video_path.values]
        found = sync_media.audio_offsets(paths, fps_ref, reference)
    elif method == "flash":
        if brightness is None:
            if "frame_mean" in tracks:
                brightness = np.asarray(tracks["frame_mean"].values, np.float64).mean(-1)
            else:
                brightness = _brightness(tracks)
        found = sync_media.flash_offsets(brightness, reference)
    else:
        raise UsageError(f"--method {method}: choose from {', '.join(METHODS)}")
    out = []
    for i, (name, e) in enumerate(zip(views, found, strict=True)):
        if i == reference:
            out.append(Estimate(name, 0.0, 0.0, "reference", 1.0))
            continue
        offset = e.offset if subframe or method == "audio" else float(np.round(e.offset))
        out.append(Estimate(name, offset, offset / fps_ref, method, e.confidence, e.reason))
    return out


def _brightness(tracks: xr.Dataset) -> np.ndarray:
    """Each view's mean brightness per frame, decoded from its video (padded with NaN)."""
    from . import sync_media

    out = np.full((tracks.sizes["view"], tracks.sizes["time"]), np.nan)
    for v, path in enumerate(tracks.video_path.values):
        values = sync_media.video_brightness(str(path))[: out.shape[1]]
        out[v, : len(values)] = values
    return out


def _disagreements(estimates: dict[str, list[Estimate]]) -> list[str]:
    lines = []
    methods = list(estimates)
    for v in range(len(estimates[methods[0]])):
        found = {m: estimates[m][v] for m in methods if np.isfinite(estimates[m][v].offset)}
        found = {m: e for m, e in found.items() if e.method != "reference"}
        if len(found) > 1:
            values = [e.offset for e in found.values()]
            if max(values) - min(values) > DISAGREE_FRAMES:
                values = ", ".join(f"{m} {said(e.offset)}" for m, e in found.items())
                name = next(iter(found.values())).view
                lines.append(f"methods disagree on {name}: {values} frames")
    return lines


def sync_store(
    store: str | Path,
    methods: tuple[str, ...] | list[str] = ("motion",),
    *,
    reference: str | None = None,
    offsets: dict[str, float] | None = None,
    max_offset: int | None = None,
    subframe: bool = False,
    cameras: dict | None = None,
) -> SyncResult:
    """Find every view's offset against the reference and write it into the store.

    Reads only the store (``motion``), except ``audio`` (each video's audio
    track) and ``flash`` without ``framestats`` outputs (each video's frames).
    The offset written per view is the first method's that found one; offsets
    given by hand (``offsets``) are written as given.

    Parameters
    ----------
    store : path
        A 2-D store.
    methods : sequence of str
        Of :data:`METHODS`, in order of preference; more than one are compared.
    reference : str, optional
        The reference view; default the first.
    offsets : dict of str to float, optional
        Offsets given by hand (``--offset``): not estimated.
    max_offset : int, optional
        Largest offset tried, frames; default half the shorter view.
    subframe : bool
        Keep motion's and flash's fractions of a frame (audio's are always kept).
    cameras : dict of str to Camera, optional
        The calibration: ``motion`` then scores lags by epipolar agreement.

    Returns
    -------
    SyncResult

    Raises
    ------
    SyncError
        Naming the first view whose offset could not be estimated, why, and
        ``--offset VIEW=FRAMES``.

    """
    from . import ledger
    from . import store as _store

    store = Path(store)
    ledger.check_whole(store, "tracks")
    tracks = _store.open_tracks(store, dask=False)
    views = [str(v) for v in tracks.view.values]
    if reference is not None and reference not in views:
        raise UsageError(f"--reference {reference}: no such view; the views are {', '.join(views)}")
    ref = views.index(reference) if reference else 0
    given = dict(offsets or {})
    n_frames = {v: int(n) for v, n in zip(views, tracks.n_frames.values, strict=True)}
    check_offsets(given, views, n_frames, views[ref])
    fps_ref = float(tracks.video_fps.values[ref] or tracks.attrs.get("fps") or 1.0)
    for m in methods:
        if m not in METHODS:
            raise UsageError(f"--method {m}: choose from {', '.join(METHODS)}")
    if cameras:  # scaled to binned videos as triangulate scales them
        from .calib import fit_to_videos

        sizes = zip(views, tracks.width.values, tracks.height.values, strict=True)
        cameras, _ = fit_to_videos(
            cameras, {v: (int(w), int(h)) for v, w, h in sizes}, "the calibration"
        )
    need = [v for i, v in enumerate(views) if i != ref and v not in given]
    estimates: dict[str, list[Estimate]] = {}
    if need and methods:
        for m in methods:
            estimates[m] = estimate(tracks, m, ref, max_offset, subframe, cameras)
    chosen = []
    for i, name in enumerate(views):
        if i == ref:
            chosen.append(Estimate(name, 0.0, 0.0, "reference", 1.0))
        elif name in given:
            k = given[name]
            chosen.append(Estimate(name, k, k / fps_ref, "given", 1.0))
        elif not methods:  # offsets given for some views only: the others are 0
            chosen.append(Estimate(name, 0.0, 0.0, "given", 1.0))
        else:
            found = [estimates[m][i] for m in methods if np.isfinite(estimates[m][i].offset)]
            if not found:
                why = "; ".join(f"{m}: {estimates[m][i].reason}" for m in methods)
                raise SyncError(
                    f"cannot estimate the offset of {name}: {why}; set it with "
                    f"--offset {name}=FRAMES"
                )
            chosen.append(found[0])
    for e in chosen:
        if e.method not in ("reference", "given"):
            check_offsets({e.view: e.offset}, views, n_frames, views[ref])
    result = SyncResult(
        store,
        views[ref],
        fps_ref,
        chosen,
        estimates,
        _disagreements(estimates) if estimates else [],
    )
    write_offsets(store, result.record())
    for line in result.disagreements:
        logger.warning("%s: %s", store, line)
    return result


def write_offsets(store: str | Path, record: dict) -> None:
    """Write a sync record into the store: its root attributes and the ``sync_offset`` coordinate.

    Takes the store's lock; the 3-D groups made before become stale (see
    :func:`mocapflow.ledger.freshness`).
    """
    import zarr

    from . import ledger
    from .runner import store_lock

    with store_lock(store):
        ledger.set_attrs(store, sync=record)
        try:
            arr = zarr.open_array(str(Path(store) / SYNC_OFFSET), mode="r+")
        except Exception:  # a store made before offsets were recorded: the record says
            return
        views = [str(v) for v in zarr.open_array(str(Path(store) / "view"), mode="r")[:]]
        arr[...] = np.array([record["offsets"].get(v) or 0.0 for v in views], np.float64)


def stored_alignment(store: str | Path, tracks: xr.Dataset) -> Alignment | None:
    """Return the alignment of a store's views by its recorded offsets (None: aligned already)."""
    record = read_sync(store)
    offsets = {k: v for k, v in (record.get("offsets") or {}).items() if v is not None}
    return alignment(tracks, offsets, record.get("reference"))


#: Without offsets, views are said to look unsynchronised when an offset makes
#: their keypoints agree this many times better (epipolar cost at 0 over at the offset).
UNSYNC_GAIN = 1.25


def unsynchronised(tracks: xr.Dataset, cameras: dict) -> str | None:
    """Return a line when the views look unsynchronised by their motion (no offsets set).

    Used when a store is triangulated without offsets; it reads the 2-D tracks
    only. A view is named when its best offset is a whole frame or more away
    and makes the views agree :data:`UNSYNC_GAIN` times better.
    """
    views = [str(v) for v in tracks.view.values]
    usable = [v for v in views if v in cameras]
    if len(usable) < 2 or POSITION not in tracks or usable != views:
        return None
    found = estimate(tracks, "motion", 0, None, False, cameras)
    off = [
        e for e in found if np.isfinite(e.offset) and abs(e.offset) >= 1 and e.gain >= UNSYNC_GAIN
    ]
    if not off:
        return None
    which = ", ".join(f"{e.view} {said(e.offset)}" for e in off)
    best = max(e.gain for e in off)
    return (
        f"the views look unsynchronised: by their motion {which} frames against {views[0]} "
        f"(the views' keypoints agree up to {best:.1f}x better so)"
    )
