"""What a mocap user checks first about 3-D points (numpy; no Dask).

* how many points were triangulated,
* the reprojection error (median and 90th percentile, pixels),
* how stable the bones are: the coefficient of variation (std / mean over
  time) of each bone's length. A rigid segment keeps its length, so a lower
  value means steadier, more plausible 3-D points.
"""

from __future__ import annotations

import warnings

import numpy as np
import xarray as xr

__all__ = ["bone_length_cv", "bone_lengths", "points_summary"]


def bone_lengths(
    position: np.ndarray, keypoints: list[str], skeleton: list[list[str]]
) -> np.ndarray:
    """Return the length of every bone in every frame.

    Parameters
    ----------
    position : numpy.ndarray
        ``(time, 3, keypoint)`` points of one individual.
    keypoints : list of str
        Keypoint names, in order.
    skeleton : list of pairs of str
        Bones as pairs of keypoint names; bones naming absent keypoints are skipped.

    Returns
    -------
    numpy.ndarray
        ``(time, bone)`` lengths, NaN where an end is missing.

    """
    index = {str(k): i for i, k in enumerate(keypoints)}
    bones = [(index[a], index[b]) for a, b in skeleton if a in index and b in index]
    if not bones:
        return np.zeros((len(position), 0))
    a, b = np.array(bones).T
    return np.linalg.norm(position[:, :, a] - position[:, :, b], axis=1)


def bone_length_cv(
    position: np.ndarray, keypoints: list[str], skeleton: list[list[str]], min_frames: int = 10
) -> np.ndarray:
    """Return each bone's coefficient of variation of length over time.

    Bones measured in fewer than ``min_frames`` frames are NaN.
    """
    lengths = bone_lengths(position, keypoints, skeleton)
    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        cv = np.nanstd(lengths, axis=0) / np.nanmean(lengths, axis=0)
    cv[np.isfinite(lengths).sum(0) < min_frames] = np.nan
    return cv


def points_summary(points: xr.Dataset, skeleton: list[list[str]] | None = None) -> dict:
    """Summarise a 3-D group (``points3d`` or ``filtered``).

    Parameters
    ----------
    points : xarray.Dataset
        The group, with ``position`` and ``reprojection_error``.
    skeleton : list of pairs of str, optional
        Bones; default the group's ``skeleton`` attribute (none: no bone figures).

    Returns
    -------
    dict
        ``triangulated`` (fraction of points), ``median_error_px``,
        ``p90_error_px``, ``bone_cv_median`` (median over bones) and ``bones``
        (the number of bones measured).

    """
    pos = points.position.transpose("time", "space", "keypoint", "individual").values
    err = points.reprojection_error.values
    found = np.isfinite(pos).all(axis=1)
    finite = err[np.isfinite(err)]
    out = {
        "triangulated": float(found.mean()) if found.size else 0.0,
        "median_error_px": float(np.median(finite)) if finite.size else float("nan"),
        "p90_error_px": float(np.percentile(finite, 90)) if finite.size else float("nan"),
        "bone_cv_median": float("nan"),
        "bones": 0,
    }
    skeleton = skeleton if skeleton is not None else points.attrs.get("skeleton")
    if skeleton:
        names = [str(k) for k in points.keypoint.values]
        cvs = np.concatenate(
            [bone_length_cv(pos[..., i], names, skeleton) for i in range(pos.shape[-1])]
        )
        cvs = cvs[np.isfinite(cvs)]
        if cvs.size:
            out.update(bone_cv_median=float(np.median(cvs)), bones=int(cvs.size))
    return out
