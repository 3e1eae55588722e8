"""What a mocap user checks first about 3-D points (numpy; no Dask).

* how many points were triangulated,
* the reprojection error (median and 90th percentile, pixels),
* how stable the bones are: the coefficient of variation (std / mean over
  time) of each bone's length. A rigid segment keeps its length, so a lower
  value means steadier, more plausible 3-D points;
* whether the calibration fits the views at all (:func:`calibration_check`):
  two cameras whose names are swapped, a calibration from another rig, or one
  view whose camera is wrong, and the line that says so
  (:func:`calibration_verdict`).
"""

from __future__ import annotations

import warnings
from itertools import combinations
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # xarray and the cameras come in from the caller
    import xarray as xr

    from .calib import Camera

__all__ = [
    "IMPLAUSIBLE_FRACTION",
    "IMPLAUSIBLE_PX",
    "LIMB_BONES",
    "MAX_LIMB_CV",
    "bone_length_cv",
    "bone_lengths",
    "calibration_check",
    "calibration_verdict",
    "check_tracks",
    "doubt_line",
    "doubts",
    "limb_cv",
    "people_line",
    "points_summary",
    "trust_verdict",
]

#: A median reprojection error above this (px) is no tracking noise: pose models
#: give about 5-20 px on full-HD video, marker trackers under one.
IMPLAUSIBLE_PX = 50.0
#: A reprojection error median above this fraction of the image diagonal is no
#: tracking noise (55 px at 1920x1080): :func:`doubts`.
IMPLAUSIBLE_FRACTION = 0.025
#: A person's limb bones (:data:`LIMB_BONES`) vary in length, over time, by more
#: than this coefficient of variation (median over the bones) only when the 3-D
#: mixes people: one person gives 0.04 on the Pose2Sim sample, two people mixed
#: 0.59 on its two-person demo.
MAX_LIMB_CV = 0.25
#: The ten main limb bones of a body (MediaPipe's names): upper arms, forearms,
#: thighs, shanks, the shoulder width and the hip width.
LIMB_BONES = (
    ("left_shoulder", "left_elbow"),
    ("left_elbow", "left_wrist"),
    ("right_shoulder", "right_elbow"),
    ("right_elbow", "right_wrist"),
    ("left_hip", "left_knee"),
    ("left_knee", "left_ankle"),
    ("right_hip", "right_knee"),
    ("right_knee", "right_ankle"),
    ("left_shoulder", "right_shoulder"),
    ("left_hip", "right_hip"),
)
#: A frame is named in a verdict when a limb is off its median length by more than this.
_OFF = 0.3
#: A change of cameras is telling when it cuts the median reprojection error to
#: this fraction or less, and by more than :data:`MARGIN_PX`: exchanging two
#: cameras (their names were swapped) or leaving one out (it does not fit).
GAIN = 0.5
MARGIN_PX = 2.0


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
        (the number of bones measured); ``doubts`` (:func:`doubts`); with
        several people, ``people``: per individual its ``frames`` (seen),
        ``ranges`` (runs of frames), ``median_error_px`` and ``limb_cv``
        (:func:`limb_cv`).

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
    out["doubts"] = doubts(points)
    kept = {p["individual"]: p for p in points.attrs.get("people", {}).get("kept", [])}
    if kept:
        names = [str(k) for k in points.keypoint.values]
        out["people"] = {
            who: {
                "frames": int(found[..., i].any(-1).sum()),
                "ranges": kept.get(who, {}).get("ranges", []),
                "median_error_px": _median(err[..., i]),
                "limb_cv": limb_cv(pos[..., i], names),
            }
            for i, who in enumerate(map(str, points.individual.values))
        }
    return out


def _median(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(np.median(finite)) if finite.size else float("nan")


def _telling(error: float, baseline: float) -> bool:
    return error <= GAIN * baseline and error < baseline - MARGIN_PX


def calibration_check(
    uv: np.ndarray,
    cameras: list[Camera],
    confidence: np.ndarray | None = None,
    *,
    min_confidence: float = 0.5,
) -> dict:
    """Measure how well a calibration fits a sample of 2-D points, view by view.

    The points are triangulated with every camera (no outlier rejection, no
    left/right fix); then with each pair of cameras exchanged, to see whether
    two names were swapped; then without each view in turn, to see whether one
    camera does not fit. A view's residual is its distance to the points the
    other views triangulate, reprojected into it.

    Parameters
    ----------
    uv : numpy.ndarray
        ``(view, N, 2)`` pixels, NaN where not seen (a sample of frames is plenty).
    cameras : list of Camera
        One per view, in view order; their names name the views.
    confidence : numpy.ndarray, optional
        ``(view, N)``; observations under ``min_confidence`` are not used.
    min_confidence : float
        Confidence threshold.

    Returns
    -------
    dict
        ``median_error_px``: the median over points of the mean reprojection
        error; ``view_median_px``: per view name, its median residual (with three
        views or more); ``swap``: ``(view a, view b, median error px)`` for the
        exchange of two cameras that cuts the error most, when that is telling
        (:data:`GAIN`), else None; ``drop``: ``(view, median error px of the
        others)`` likewise for leaving one view out (with four views or more),
        else None.

    """
    from .triangulate import CameraSet, triangulate_points

    uv = np.asarray(uv, np.float64)
    names = [c.name for c in cameras]
    use = np.isfinite(uv).all(-1)
    if confidence is not None:
        use &= np.nan_to_num(np.asarray(confidence, np.float64), nan=-np.inf) >= min_confidence
    conf = use.astype(np.float64)  # what counts, as a confidence the solver thresholds at 1

    def solve(cams: list[Camera], keep: np.ndarray) -> tuple[np.ndarray, float]:
        xyz, err, _ = triangulate_points(
            uv[keep], CameraSet.from_cameras(cams), conf[keep], min_confidence=1.0
        )
        return xyz, _median(err)

    every = np.ones(len(cameras), bool)
    _, median = solve(list(cameras), every)
    out = {"median_error_px": median, "view_median_px": {}, "swap": None, "drop": None}
    if not np.isfinite(median):
        return out
    for a, b in combinations(range(len(cameras)), 2):
        exchanged = list(cameras)
        exchanged[a], exchanged[b] = exchanged[b], exchanged[a]
        m = solve(exchanged, every)[1]
        if _telling(m, median) and (out["swap"] is None or m < out["swap"][2]):
            out["swap"] = (names[a], names[b], m)
    if len(cameras) < 3:
        return out
    for v, cam in enumerate(cameras):
        keep = every.copy()
        keep[v] = False
        xyz, m = solve([c for c, k in zip(cameras, keep, strict=True) if k], keep)
        rep = cam.project(np.where(np.isfinite(xyz), xyz, 0.0))
        dist = np.linalg.norm(rep - uv[v], axis=-1)
        out["view_median_px"][names[v]] = _median(
            np.where(use[v] & np.isfinite(xyz).all(-1), dist, np.nan)
        )
        # Two views left always agree far better than three with real tracking noise
        # (measured on the Pose2Sim sample: 14 px -> 6 px), so only from four views.
        telling = len(cameras) >= 4 and _telling(m, median)
        if telling and (out["drop"] is None or m < out["drop"][1]):
            out["drop"] = (names[v], m)
    return out


def check_tracks(
    tracks: xr.Dataset, cameras: dict, *, min_confidence: float = 0.5, max_frames: int = 240
) -> dict:
    """:func:`calibration_check` on frames spread evenly over a 2-D store's tracks.

    Parameters
    ----------
    tracks : xarray.Dataset
        The store's 2-D tracks (``position``, ``confidence``).
    cameras : dict of str to Camera
        Cameras by view name; views without one are left out.
    min_confidence : float
        Confidence threshold.
    max_frames : int
        Most frames read.

    Returns
    -------
    dict
        See :func:`calibration_check`.

    """
    names = [str(v) for v in tracks.view.values if str(v) in cameras]
    n = int(tracks.sizes["time"])
    frames = np.unique(np.linspace(0, max(n - 1, 0), min(n, max_frames)).astype(int))
    sample = tracks[["position", "confidence"]].sel(view=names).isel(time=frames)
    uv = sample.position.transpose("view", "time", "keypoint", "individual", "space").values
    conf = sample.confidence.transpose("view", "time", "keypoint", "individual").values
    return calibration_check(
        uv.reshape(len(names), -1, 2),
        [cameras[k] for k in names],
        conf.reshape(len(names), -1),
        min_confidence=min_confidence,
    )


def calibration_verdict(check: dict, where: str, source: str, store: str) -> str | None:
    """Return a one-line warning when a calibration does not fit the views, else None.

    Two cameras whose exchange cuts the error (:func:`calibration_check`) are
    named as swapped; else a view whose leaving out cuts it is named as out of
    line; else a median error above :data:`IMPLAUSIBLE_PX` is called implausible.

    Parameters
    ----------
    check : dict
        What :func:`calibration_check` measured.
    where : str
        The group, for the start of the line (``store/points3d``).
    source : str
        The calibration file.
    store : str
        The store, for the ``mocapflow info`` to run.

    Returns
    -------
    str or None
        Names the views out of line, says what is likely wrong and how to check.

    """
    median = check["median_error_px"]
    views = {k: v for k, v in check["view_median_px"].items() if np.isfinite(v)}
    if not np.isfinite(median):
        return None
    info = f"mocapflow info {store} lists the views and their video sizes"
    if check["swap"] is not None:
        a, b, m = check["swap"]
        return (
            f"{where}: views {a} and {b} look swapped in {source}: the reprojection error "
            f"median is {median:.1f} px, and {m:.1f} px with their cameras exchanged; exchange "
            f"the names of cameras {a} and {b} in the calibration file (each camera must have "
            f"its video's name; {info}), then rerun mocapflow triangulate"
        )
    residuals = ", ".join(
        f"{k} {v:.1f} px" for k, v in sorted(views.items(), key=lambda kv: -kv[1])
    )
    if check["drop"] is not None:
        view, m = check["drop"]
        return (
            f"{where}: view {view} is out of line: the reprojection error median is "
            f"{median:.1f} px, and {m:.1f} px without it (each view's median distance to "
            f"the others' points: {residuals}); its camera in {source} does not fit its video: "
            f"from another rig, or named after another view? Check each camera's name and "
            f"size against its view ({info})"
        )
    if median > IMPLAUSIBLE_PX:
        per_view = (
            f" (each view's median distance to the others' points: {residuals})" if views else ""
        )
        return (
            f"{where}: the reprojection error median is {median:.1f} px, far above tracking "
            f"noise (a few px): {source} does not fit these videos{per_view}; is it from "
            f"another rig, or for another video size, or are two cameras' names swapped? Check "
            f"each camera's name and size against its view ({info}) and use the calibration "
            f"of this recording"
        )
    return None


def limb_cv(position: np.ndarray, keypoints: list[str]) -> float:
    """Median, over the :data:`LIMB_BONES` measured, of their length's CV over time.

    Parameters
    ----------
    position : numpy.ndarray
        ``(time, 3, keypoint)`` points of one individual.
    keypoints : list of str
        Keypoint names.

    Returns
    -------
    float
        NaN when fewer than four limb bones are measured (not a body's keypoints).

    """
    cv = bone_length_cv(position, keypoints, [list(b) for b in LIMB_BONES])
    cv = cv[np.isfinite(cv)]
    return float(np.median(cv)) if cv.size >= 4 else float("nan")


def doubts(points: xr.Dataset) -> dict[str, dict]:
    """Return the individuals of a 3-D group whose points are implausible, and why.

    An individual is implausible when its reprojection error median is above
    :data:`IMPLAUSIBLE_FRACTION` of the image diagonal (the group's
    ``image_diagonal`` attribute; else :data:`IMPLAUSIBLE_PX`), or when its
    limb bones change length (:func:`limb_cv` above :data:`MAX_LIMB_CV`).

    Returns
    -------
    dict
        Per implausible individual: ``median_error_px``, ``limb_cv``, and
        ``frames``: the runs of frames (first, last) whose error is above the
        limit or whose limbs are off their median length by more than 30 %.

    """
    from .associate import frame_ranges

    pos = points.position.transpose("time", "space", "keypoint", "individual").values
    err = points.reprojection_error.transpose("time", "keypoint", "individual").values
    names = [str(k) for k in points.keypoint.values]
    diagonal = points.attrs.get("image_diagonal")
    limit = IMPLAUSIBLE_FRACTION * diagonal if diagonal else IMPLAUSIBLE_PX
    out = {}
    for i, who in enumerate(map(str, points.individual.values)):
        if not np.isfinite(pos[..., i]).any():
            continue
        median, cv = _median(err[..., i]), limb_cv(pos[..., i], names)
        if not (median > limit or cv > MAX_LIMB_CV):
            continue
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore", RuntimeWarning)
            lengths = bone_lengths(pos[..., i], names, [list(b) for b in LIMB_BONES])
            off = np.abs(lengths / np.nanmedian(lengths, 0) - 1) > _OFF
            bad = (np.nanmedian(err[..., i], 1) > limit) | off.any(1)
        out[who] = {
            "median_error_px": median,
            "limb_cv": cv,
            "limit_px": float(limit),
            "frames": frame_ranges(np.flatnonzero(bad)),
        }
    return out


def trust_verdict(
    points: xr.Dataset, where: str, fix: str, views: str = "", note: str = ""
) -> str | None:
    """Return one line when a 3-D group cannot be trusted (see :func:`doubts`), else None.

    Parameters
    ----------
    points : xarray.Dataset
        A 3-D group (``position``, ``reprojection_error``).
    where : str
        The group, for the start of the line (``store/points3d``).
    fix : str
        What to do, ending the line.
    views : str
        Each view's distance to the others' points (``cam1 300 px, ...``), when known.
    note : str
        Anything else the line should say about the views.

    Returns
    -------
    str or None

    """
    points = points[["position", "reprojection_error"]].load()  # read once
    if not np.isfinite(points.position.values).any():
        return f"{where}: not one point was triangulated: no two views agree on a point; {fix}"
    found = doubts(points)
    if not found:
        return None
    parts = [f"{who}: {doubt_line(d)}" for who, d in found.items()]
    if views:
        parts.append(f"views by their distance to the others' points: {views}")
    if note:
        parts.append(note)
    return (
        f"{where} cannot be trusted ({'; '.join(parts)}): the views do not see one "
        f"person in one place; {fix}"
    )


def doubt_line(d: dict) -> str:
    """Say what :func:`doubts` found about one individual, in words."""
    from .associate import runs_text  # scipy.optimize: not at the command's start-up

    return (
        f"reprojection error median {d['median_error_px']:.1f} px (limit {d['limit_px']:.0f}), "
        f"limb length CV {d['limb_cv']:.2f} (limit {MAX_LIMB_CV}), "
        f"in frames {runs_text(d['frames'])}"
    )


def people_line(people: dict) -> str:
    """One line: each person, the frames they were seen in, their error and limb CV."""
    from .associate import runs_text

    parts = [
        f"{who} in {p['frames']} frames ({runs_text(p['ranges'], 4)}), "
        f"{p['median_error_px']:.1f} px, limb length CV {p['limb_cv']:.3f}"
        for who, p in people.items()
    ]
    return f"{len(people)} {'person' if len(people) == 1 else 'people'}: " + "; ".join(parts)
