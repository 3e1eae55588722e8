"""Several people in several views: who is who across views, then over time (numpy; no Dask).

Three pure steps, each numpy in, numpy out:

1. :func:`associate` finds, frame by frame, the detections (a view's *slots*,
   which are no identities) that are one person. Every keypoint of every
   detection is a ray from its camera; two detections in two views are the same
   person when their rays nearly meet. The gap between two rays, seen from each
   camera, is a reprojection error in pixels (the gap over the depth, times the
   focal length), so the affinity of two detections is the median of that error
   over their common keypoints (each keypoint also tried against the other
   side's keypoint, so a left/right confusion costs nothing). Detections are
   then grouped greedily, cheapest pair first, under complete linkage: two groups
   merge only when they share no view and every pair of their members is under
   the threshold. Groups of one view cannot be triangulated and are left out.
   Everything but the greedy merge (a Python loop over the few pairs under the
   threshold) is vectorised over frames, views and slots.
2. :func:`triangulate_people` gathers each group's slots into one person axis
   and triangulates it with :func:`mocapflow.triangulate.triangulate_frames`
   (left/right fix and the robust drop of views, FreeMoCap's and Pose2Sim's way:
   while a point's reprojection error is over ``max_error`` and more than
   ``min_views`` views remain, drop the view whose removal lowers it most); the
   default ``max_error`` is a fraction of the image diagonal.
3. :func:`link_people` follows the people from frame to frame: an optimal
   assignment (Hungarian, :func:`scipy.optimize.linear_sum_assignment`) of each
   frame's people to the live tracks on the distance of their 3-D centres to the
   tracks' predicted centres, gated relative to each track's body size. It reads
   only small per-frame summaries (:func:`summarize_people`: a centre and a size
   per person), and carries its state (:class:`LinkState`) from one call to the
   next, so blocks associated in parallel and linked in order get the labels one
   pass over all frames gives, whatever the block size.

:func:`choose_person` picks the best-supported track for a one-person output and
says who else was seen, and when.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment

from .errors import CalibrationError, UsageError
from .triangulate import CameraSet, triangulate_frames, triangulate_points

__all__ = [
    "ASSOCIATION_FRACTION",
    "BONE_TOLERANCE",
    "GATE_FRACTION",
    "MAX_GAP",
    "MIN_COMMON_KEYPOINTS",
    "MIN_TRACK_FRAMES",
    "ROBUST_FRACTION",
    "Choice",
    "LinkState",
    "People",
    "Selection",
    "associate",
    "associate_block",
    "bone_index",
    "bone_medians",
    "by_track",
    "choose_person",
    "drop_implausible",
    "default_threshold",
    "frame_ranges",
    "gather",
    "image_diagonals",
    "link_people",
    "mirror_index",
    "runs_text",
    "select_tracks",
    "skeleton_lengths",
    "summarize_people",
    "triangulate_people",
]

logger = logging.getLogger(__name__)

#: Two detections are one person when the median reprojection error of their
#: keypoints' ray pairs is under this fraction of the image diagonal
#: (22 px at 1280x720, 33 px at 1920x1080; Pose2Sim associates under 20 px).
#: Measured on the synthetic crowd (2 px noise): 0.01 lost 0.3-0.7 % of the
#: true assignments, 0.015 under 0.25 %, 0.02 let more chance groups through.
ASSOCIATION_FRACTION = 0.015
#: Default ``max_error`` of the robust triangulation: this fraction of the image
#: diagonal (15 px at 1280x720, 22 px at 1920x1080; Pose2Sim's default is 15 px).
ROBUST_FRACTION = 0.01
#: Fewest keypoints two detections must share for their affinity to count.
MIN_COMMON_KEYPOINTS = 3
#: A person joins a track when its keypoints lie (median distance) within this
#: many body sizes of the track's prediction. The body size is the median
#: distance of the keypoints from their centre (about 0.55 m for an adult with
#: MediaPipe's keypoints), so the gate is about 0.55 m. Half of it kept the
#: synthetic crowd apart, but split both people of Pose2Sim's two-person demo
#: into two tracks each (points seen by two views are noisy in depth); the
#: optimal assignment keeps people apart when they come close.
GATE_FRACTION = 1.0
#: A triangulated keypoint is dropped when its bones are longer or shorter than
#: the person's median bone lengths by more than this fraction: two views that
#: nearly share an epipolar plane place a wrong 2-D point at a wrong depth with a
#: small reprojection error (the one-view-too-few case of the robust step), and
#: only the body's proportions show it. On Pose2Sim's two-person demo it drops
#: 12-13 % of the points at 0.3, about 15 % at 0.25, and cuts the limb length CV
#: from 0.24 and 0.30 to 0.06 and 0.09 (0.3: 0.06 and 0.10).
BONE_TOLERANCE = 0.25
#: A track not seen for more frames than this ends; the person gets a new one.
MAX_GAP = 10
#: A track seen in fewer frames than this is no person but a chance agreement
#: of two views (those last a frame or a few); see :func:`select_tracks`.
MIN_TRACK_FRAMES = 10
#: Frames whose pair affinities are computed at once (bounds the memory).
_FRAMES_AT_ONCE = 64
#: The gate, as a multiple, of the second assignment among the tracks and people
#: the first left unmatched (see :func:`link_people`).
_SECOND_CHANCE = 2.0
#: Weight of the newest step in a track's velocity (exponential smoothing).
_VELOCITY_GAIN = 0.5


# --------------------------------------------------------------------------- checks


def _check_detections(
    uv: np.ndarray, confidence: np.ndarray | None, cams: CameraSet
) -> tuple[np.ndarray, np.ndarray]:
    """Validate ``uv (view, time, 2, keypoint, slot)`` and its confidence; return float64 copies."""
    uv = np.asarray(uv)
    if uv.ndim != 5 or uv.shape[2] != 2:
        raise UsageError(
            f"detections must be (view, time, 2, keypoint, slot) pixels, got shape {uv.shape}"
        )
    if not np.issubdtype(uv.dtype, np.number):
        raise UsageError(f"detections must be numbers, got dtype {uv.dtype}")
    v, t, _, k, p = uv.shape
    if v != len(cams.cameras):
        raise CalibrationError(
            f"the detections have {v} views but the calibration has {len(cams.cameras)} "
            "cameras; give one camera per view, in view order"
        )
    if confidence is None:
        conf = np.where(np.isfinite(uv).all(2), 1.0, np.nan)
    else:
        conf = np.asarray(confidence)
        if conf.shape != (v, t, k, p):
            raise UsageError(
                f"confidence must be (view, time, keypoint, slot) = {(v, t, k, p)}, "
                f"got shape {conf.shape}"
            )
        conf = conf.astype(np.float64)
    return uv.astype(np.float64), conf


def _check_positive(name: str, value: float | None) -> None:
    if value is not None and not 0 < value < np.inf:
        raise UsageError(f"{name} must be a positive finite number, got {value}")


# --------------------------------------------------------------------------- thresholds


def image_diagonals(cams: CameraSet) -> np.ndarray:
    """Return each view's image diagonal in pixels, ``(view,)``.

    From the calibration's image size; where the calibration does not give it,
    from the principal point (taken as the image centre).
    """
    out = []
    for cam in cams.cameras:
        if cam.size is not None:
            w, h = cam.size
        else:
            w, h = 2 * float(cam.matrix[0, 2]), 2 * float(cam.matrix[1, 2])
        out.append(float(np.hypot(w, h)))
    return np.asarray(out)


def default_threshold(cams: CameraSet, fraction: float) -> float:
    """Return ``fraction`` of the median image diagonal, in pixels."""
    return float(fraction * np.median(image_diagonals(cams)))


def mirror_index(keypoints: list[str] | None, n_keypoints: int) -> np.ndarray:
    """Return each keypoint's left/right partner (itself when it has none), ``(keypoint,)``."""
    index = np.arange(n_keypoints)
    if keypoints is None:
        return index
    if len(keypoints) != n_keypoints:
        raise UsageError(
            f"{len(keypoints)} keypoint names for detections of {n_keypoints} keypoints"
        )
    names = {str(k): i for i, k in enumerate(keypoints)}
    for name, i in names.items():
        for a, b in (("left_", "right_"), ("right_", "left_")):
            if name.startswith(a) and b + name[len(a) :] in names:
                index[i] = names[b + name[len(a) :]]
    return index


# --------------------------------------------------------------------------- affinity


def _nanmedian(x: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Median over ``axis`` ignoring NaN, and the count of finite values (sort-based, fast)."""
    x = np.sort(x, axis=axis)  # NaN sort last
    n = np.isfinite(x).sum(axis)
    lo = np.take_along_axis(x, np.expand_dims(np.maximum((n - 1) // 2, 0), axis), axis)
    hi = np.take_along_axis(x, np.expand_dims(np.maximum(n // 2, 0), axis), axis)
    med = 0.5 * (np.squeeze(lo, axis) + np.squeeze(hi, axis))
    return np.where(n > 0, med, np.nan), n


def _rays(uv: np.ndarray, conf: np.ndarray, cams: CameraSet, min_confidence: float) -> np.ndarray:
    """World directions ``(view, time, keypoint, slot, 3)`` of the usable keypoints, NaN elsewhere.

    A direction has unit depth in its camera, so a distance along it is a depth.
    """
    v, t, _, k, p = uv.shape
    pix = np.moveaxis(uv, 2, -1)  # (V, T, K, P, 2)
    usable = np.isfinite(pix).all(-1) & (np.nan_to_num(conf, nan=-np.inf) >= min_confidence)
    pix = np.where(usable[..., None], pix, np.nan)
    norm = cams.undistort(pix.reshape(v, -1, 2)).reshape(v, t, k, p, 2)
    cam_dirs = np.concatenate([norm, np.ones((*norm.shape[:-1], 1))], -1)
    rot = np.stack([c.rotation_matrix for c in cams.cameras])  # (V, 3, 3) world -> camera
    world = np.einsum("vji,vtkpj->vtkpi", rot, cam_dirs)
    return np.where(usable[..., None], world, np.nan)


def _ray_gap_px(d1: np.ndarray, d2: np.ndarray, w0: np.ndarray, f1: float, f2: float) -> np.ndarray:
    """Pixel error of the closest approach of every ray pair ``c1 + s d1``, ``c2 + t d2``.

    ``d1``, ``d2`` are ``(..., P, 3)`` directions (NaN: no ray) and ``w0 = c1 - c2``;
    the result is ``(..., P, P)``. The rays' gap ``g`` is perpendicular to both;
    the midpoint is ``|g| / 2`` off each ray, at depth ``s`` (``t``) in that
    camera, so it reprojects about ``f |g| / (2 s)`` pixels off. The result is
    the mean over the two views; NaN behind either camera or for parallel rays.
    ``|g|`` comes from the dot products alone (no per-pair vectors).
    """
    a = (d1 * d1).sum(-1)[..., :, None]
    c = (d2 * d2).sum(-1)[..., None, :]
    b = d1 @ np.swapaxes(d2, -1, -2)
    d = (d1 @ w0)[..., :, None]
    e = (d2 @ w0)[..., None, :]
    den = a * c - b * b
    with np.errstate(divide="ignore", invalid="ignore"):
        s = (b * e - c * d) / den
        t = (a * e - b * d) / den
        # |w0 + s d1 - t d2|^2, expanded
        gap2 = w0 @ w0 + s * s * a + t * t * c + 2 * s * d - 2 * t * e - 2 * s * t * b
        err = 0.25 * np.sqrt(np.maximum(gap2, 0.0)) * (f1 / s + f2 / t)
    return np.where((s > 0) & (t > 0) & (den > 0), err, np.nan)


def _affinity(rays: np.ndarray, cams: CameraSet, mirror: np.ndarray, min_common: int) -> np.ndarray:
    """Pairwise costs ``(time, view, slot, view, slot)`` px; NaN where unknown or same view."""
    v, t, k, p, _ = rays.shape
    centres = np.stack([c.center for c in cams.cameras])
    focal = np.array([0.5 * (c.matrix[0, 0] + c.matrix[1, 1]) for c in cams.cameras])
    cost = np.full((t, v, p, v, p), np.nan)
    has_mirror = bool((mirror != np.arange(k)).any())
    for i in range(v):
        for j in range(i + 1, v):
            w0 = centres[i] - centres[j]
            for lo in range(0, t, _FRAMES_AT_ONCE):
                sl = slice(lo, lo + _FRAMES_AT_ONCE)
                d1, d2 = rays[i, sl], rays[j, sl]  # (T, K, P, 3)
                err = _ray_gap_px(d1, d2, w0, focal[i], focal[j])  # (T, K, P, P)
                if has_mirror:
                    err = np.fmin(err, _ray_gap_px(d1, d2[:, mirror], w0, focal[i], focal[j]))
                med, n = _nanmedian(err, 1)  # (T, P, P)
                med = np.where(n >= min_common, med, np.nan)
                cost[sl, i, :, j, :] = med
                cost[sl, j, :, i, :] = np.swapaxes(med, -1, -2)
    return cost


def _scores(cost: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Pair scores ``log(threshold / cost)`` (-inf at or over the threshold) and known pairs.

    The logarithm makes a pair at the noise level worth several pairs near the
    threshold. Costs under 1 % of the threshold score as that.
    """
    known = np.isfinite(cost)
    with np.errstate(divide="ignore", invalid="ignore"):
        score = np.log(threshold / np.maximum(cost, 0.01 * threshold))
    score = np.where(known, score, 0.0)
    score[known & (cost >= threshold)] = -np.inf
    return score, known


def _group_frame(cost: np.ndarray, n_slots: int, threshold: float) -> list[list[int]]:
    """Group one frame's detections (nodes ``view * P + slot``) into people.

    ``cost`` is ``(N, N)``, NaN where unknown. The grouping maximises the sum,
    over groups, of their pairs' scores (:func:`_scores`) under the constraints
    that a group holds at most one node per view, no pair at or over the
    threshold, and at least half of its pairs known (pairs that share too few
    keypoints score nothing). First the two groups whose pairs score most in
    total merge, until no merge adds to the sum (the sum makes a group that
    several views agree on attract its own detections); then single detections
    move to the group that gains most from them, until no move adds to the sum
    (undoing chance pairs of two views, which agree on any pair of detections
    along each other's epipolar lines). Ties go to the lower node index.
    Returns the groups of two or more nodes, each sorted.
    """
    n = len(cost)
    score, known = _scores(cost, threshold)
    if not (score > 0).any():
        return []
    view = np.arange(n) // n_slots
    same_view = view[:, None] == view[None, :]
    # Agglomeration: cluster-level score, known-pair counts, view masks, sizes.
    gain, count = score.copy(), known.astype(np.float64)
    views = np.zeros((n, view[-1] + 1))
    views[np.arange(n), view] = 1.0
    size, alive = np.ones(n), np.ones(n, bool)
    label = np.arange(n)
    while True:
        blocked = (views @ views.T > 0) | (2 * count < np.outer(size, size))
        blocked |= ~(alive[:, None] & alive[None])
        cand = np.where(blocked, -np.inf, gain)
        np.fill_diagonal(cand, -np.inf)
        a, b = divmod(int(np.argmax(cand)), n)
        if not cand[a, b] > 0:
            break
        a, b = min(a, b), max(a, b)
        gain[a] += gain[b]
        gain[:, a] = gain[a]
        count[a] += count[b]
        count[:, a] = count[a]
        views[a] += views[b]
        size[a] += size[b]
        alive[b] = False
        label[label == b] = a
    # Refinement: move single nodes while that raises the total score.
    conflict = np.isneginf(score).astype(np.float64)
    finite = np.where(np.isneginf(score), 0.0, score)
    for _ in range(2 * n):
        member = (label[:, None] == np.arange(n)[None]).astype(np.float64)  # (N, cluster)
        contrib = finite @ member  # a node's score with each cluster (itself excluded: 0)
        bad = (conflict @ member) > 0
        others = member.sum(0)[None] - member  # cluster sizes without the node
        room = (same_view.astype(np.float64) @ member - member) == 0
        ok = room & ~bad & (2 * (known.astype(np.float64) @ member) >= others)
        own = contrib[np.arange(n), label]
        delta = np.where(ok, contrib - own[:, None], -np.inf)
        delta[np.arange(n), label] = -np.inf
        # Leaving for a cluster of its own (any empty label) gains -own.
        empty = np.flatnonzero(member.sum(0) == 0)
        if len(empty):
            delta[:, empty[0]] = np.where(others[np.arange(n), label] > 0, -own, -np.inf)
        x, c = divmod(int(np.argmax(delta)), n)
        if not delta[x, c] > 1e-9:
            break
        label[x] = c
    groups = [np.flatnonzero(label == c).tolist() for c in np.unique(label)]
    return [g for g in groups if len(g) >= 2]


def associate(
    uv: np.ndarray,
    confidence: np.ndarray | None,
    cams: CameraSet,
    *,
    keypoints: list[str] | None = None,
    threshold: float | None = None,
    min_confidence: float = 0.5,
    min_common: int = MIN_COMMON_KEYPOINTS,
    min_group_views: int = 2,
    max_people: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Find, frame by frame, which detections in which views are one person.

    Parameters
    ----------
    uv : numpy.ndarray
        ``(view, time, 2, keypoint, slot)`` pixels, NaN where absent. A slot is a
        detection's place in its view's output, no identity.
    confidence : numpy.ndarray or None
        ``(view, time, keypoint, slot)``; None: every finite keypoint counts.
    cams : CameraSet
        The cameras, in view order.
    keypoints : list of str, optional
        Keypoint names: ``left_*``/``right_*`` partners may be exchanged.
    threshold : float, optional
        Largest affinity (median pixel error of the keypoints' ray pairs) of two
        detections of one person; default :data:`ASSOCIATION_FRACTION` of the
        image diagonal.
    min_confidence : float
        Keypoints under this confidence are not used.
    min_common : int
        Fewest usable keypoints two detections must share to be compared.
    min_group_views : int
        Fewest views of a person. Two views agree on any pair of detections
        that lie along each other's epipolar lines (upright people at the
        same image height often do), so with four or more cameras 3 rejects
        the pairs of false detections that 2 lets through, at the price of
        people seen by two cameras only.
    max_people : int, optional
        Most people per frame (the size of the ``person`` axis); default the
        number of slots. The best-supported groups (most views, then lowest
        cost) are kept.

    Returns
    -------
    slots : numpy.ndarray
        ``(time, view, person)`` int16: each person's slot in each view, -1 where
        that view does not see them. People come in order of views (most first),
        then of their first (view, slot); unused people are all -1.
    cost : numpy.ndarray
        ``(time, person)`` the mean affinity (px) of the group's pairs, NaN for
        unused people.

    Raises
    ------
    UsageError
        Arrays of the wrong shape, or options out of range.
    CalibrationError
        Not one camera per view.

    """
    uv, conf = _check_detections(uv, confidence, cams)
    _check_positive("the association threshold", threshold)
    if min_common < 1:
        raise UsageError(f"min_common must be at least 1, got {min_common}")
    if min_group_views < 2:
        raise UsageError(
            f"min_group_views must be at least 2 (one view cannot be triangulated), "
            f"got {min_group_views}"
        )
    v, t, _, k, p = uv.shape
    max_people = p if max_people is None else int(max_people)
    if max_people < 1:
        raise UsageError(f"max_people must be at least 1, got {max_people}")
    threshold = default_threshold(cams, ASSOCIATION_FRACTION) if threshold is None else threshold
    slots = np.full((t, v, max_people), -1, np.int16)
    cost_out = np.full((t, max_people), np.nan)
    if v < 2 or t == 0 or p == 0:
        return slots, cost_out
    mirror = mirror_index(keypoints, k)
    rays = _rays(uv, conf, cams, min_confidence)
    cost = _affinity(rays, cams, mirror, min(min_common, k)).reshape(t, v * p, v * p)
    found = [(f, g) for f in range(t) for g in _group_frame(cost[f], p, threshold)]
    found = _verify(found, uv, conf, cams, mirror, threshold, min_confidence, min_common)
    per_frame: dict[int, list] = {}
    for f, g in found:
        if len(g) >= min_group_views:
            sub = cost[f][np.ix_(g, g)]
            mean = float(
                np.nanmean(np.where(np.isinf(sub), np.nan, sub)[np.triu_indices(len(g), 1)])
            )
            per_frame.setdefault(f, []).append((-len(g), mean, g[0], g))
    dropped = 0
    for f, scored in per_frame.items():
        scored.sort(key=lambda s: s[:3])
        dropped += max(len(scored) - max_people, 0)
        for j, (_, mean, _, g) in enumerate(scored[:max_people]):
            nodes = np.asarray(g)
            slots[f, nodes // p, j] = nodes % p
            cost_out[f, j] = mean
    if dropped:
        logger.debug("%d groups over max_people=%d were left out", dropped, max_people)
    return slots, cost_out


def _verify(
    groups: list[tuple[int, list[int]]],
    uv: np.ndarray,
    conf: np.ndarray,
    cams: CameraSet,
    mirror: np.ndarray,
    threshold: float,
    min_confidence: float,
    min_common: int,
) -> list[tuple[int, list[int]]]:
    """Check the groups by triangulating them: drop members the group's 3-D points miss.

    Pairwise agreement does not make a group of three views or more consistent:
    with the cameras at about the people's height every keypoint lies near the
    plane of the camera centres, where epipolar lines say nothing along their
    length, so three pairwise consistent detections may meet at three different
    places. Each group is triangulated
    (:func:`~mocapflow.triangulate.triangulate_points`) and each member's
    reprojection error is the median over its keypoints (a keypoint may match
    its left/right partner); while a group's worst member is over
    ``threshold`` it leaves, and the rest is triangulated again. Groups left
    with one member go. All groups of the block are checked at once.
    """
    if not groups:
        return groups
    v, _, _, k, p = uv.shape
    frames = np.array([f for f, _ in groups])
    member = np.zeros((v, len(groups)), bool)
    slot = np.zeros((v, len(groups)), np.intp)
    for i, (_, g) in enumerate(groups):
        nodes = np.asarray(g)
        member[nodes // p, i] = True
        slot[nodes // p, i] = nodes % p
    pix = np.moveaxis(uv, 2, -1)[np.arange(v)[:, None], frames[None], :, slot]  # (V, G, K, 2)
    cf = conf[np.arange(v)[:, None], frames[None], :, slot]  # (V, G, K)
    active = np.ones(len(groups), bool)
    for _ in range(v):
        rows = np.flatnonzero(active)
        sub_pix = np.where(member[:, rows, None, None], pix[:, rows], np.nan)
        pos, _, _ = triangulate_points(
            sub_pix.reshape(v, -1, 2),
            cams,
            cf[:, rows].reshape(v, -1),
            min_confidence=min_confidence,
        )
        ok = np.isfinite(pos).all(-1)
        rep = cams.project(np.where(ok[:, None], pos, 0.0)).reshape(v, len(rows), k, 2)
        rep = np.where(ok.reshape(len(rows), k)[None, ..., None], rep, np.nan)
        usable = np.nan_to_num(cf[:, rows], nan=-np.inf) >= min_confidence
        obs = np.where(usable[..., None], sub_pix, np.nan)
        res = np.fmin(
            np.linalg.norm(rep - obs, axis=-1), np.linalg.norm(rep - obs[:, :, mirror], axis=-1)
        )
        err, n = _nanmedian(res, -1)  # (V, rows)
        err = np.where(member[:, rows] & (n >= min_common), err, -np.inf)
        worst = np.argmax(err, 0)
        bad = err[worst, np.arange(len(rows))] > threshold
        if not bad.any():
            break
        member[worst[bad], rows[bad]] = False
        active[rows] = ~bad  # only the changed groups are checked again
        active &= member.sum(0) >= 2
        if not active.any():
            break
    out = []
    for i, (f, _) in enumerate(groups):
        views = np.flatnonzero(member[:, i])
        if len(views) >= 2:
            out.append((f, (views * p + slot[views, i]).tolist()))
    return out


# --------------------------------------------------------------------------- triangulation


def gather(
    uv: np.ndarray, confidence: np.ndarray | None, slots: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Reorder detections by person: ``(view, time, 2, keypoint, person)`` and its confidence.

    Parameters
    ----------
    uv : numpy.ndarray
        ``(view, time, 2, keypoint, slot)`` pixels.
    confidence : numpy.ndarray or None
        ``(view, time, keypoint, slot)``; None: 1 where ``uv`` is finite.
    slots : numpy.ndarray
        ``(time, view, person)`` from :func:`associate`.

    Returns
    -------
    uv, confidence : numpy.ndarray
        Per person, NaN where the person's view has no slot.

    """
    uv = np.asarray(uv, np.float64)
    conf = (
        np.where(np.isfinite(uv).all(2), 1.0, np.nan)
        if confidence is None
        else np.asarray(confidence, np.float64)
    )
    slots = np.asarray(slots)
    v, t = uv.shape[:2]
    if slots.ndim != 3 or slots.shape[:2] != (t, v):
        raise UsageError(f"slots must be (time, view, person) = ({t}, {v}, n), got {slots.shape}")
    idx = np.moveaxis(slots, 1, 0)  # (V, T, person)
    have = idx >= 0
    safe = np.where(have, idx, 0).astype(np.intp)
    out_uv = np.take_along_axis(uv, safe[:, :, None, None, :], axis=-1)
    out_conf = np.take_along_axis(conf, safe[:, :, None, :], axis=-1)
    out_uv = np.where(have[:, :, None, None, :], out_uv, np.nan)
    out_conf = np.where(have[:, :, None, :], out_conf, np.nan)
    return out_uv, out_conf


@dataclass(frozen=True)
class People:
    """A block's people, frame by frame (no identities yet: see :func:`link_people`).

    Attributes
    ----------
    slots : numpy.ndarray
        ``(time, view, person)`` int16, each person's slot per view, -1 none.
    cost : numpy.ndarray
        ``(time, person)`` association affinity (px), NaN for no person.
    position : numpy.ndarray
        ``(time, 3, keypoint, person)`` world units, NaN where not triangulated.
    reprojection_error : numpy.ndarray
        ``(time, keypoint, person)`` px, over the views used.
    n_views : numpy.ndarray
        ``(time, keypoint, person)`` int8, views used after the robust step.
    lr_swapped : numpy.ndarray
        ``(time, view, keypoint, person)`` bool.
    confidence : numpy.ndarray
        ``(time, keypoint, person)`` mean 2-D confidence of the views used.
    max_error : float
        The robust step's threshold (px) that was used.

    """

    slots: np.ndarray
    cost: np.ndarray
    position: np.ndarray
    reprojection_error: np.ndarray
    n_views: np.ndarray
    lr_swapped: np.ndarray
    confidence: np.ndarray
    max_error: float

    @property
    def group_views(self) -> np.ndarray:
        """``(time, person)`` how many views each person was associated in."""
        return (self.slots >= 0).sum(1)

    @property
    def present(self) -> np.ndarray:
        """``(time, person)`` bool: a person with at least one triangulated keypoint."""
        return np.isfinite(self.position).all(1).any(1)


def triangulate_people(
    uv: np.ndarray,
    confidence: np.ndarray | None,
    cams: CameraSet,
    slots: np.ndarray,
    *,
    cost: np.ndarray | None = None,
    keypoints: list[str] | None = None,
    swap_lr: bool = True,
    min_views: int = 2,
    min_confidence: float = 0.5,
    max_error: float | None = None,
    robust: bool = True,
) -> People:
    """Triangulate each associated person with :func:`~mocapflow.triangulate.triangulate_frames`.

    Parameters
    ----------
    uv, confidence : numpy.ndarray
        The detections, as for :func:`associate`.
    cams : CameraSet
        The cameras, in view order.
    slots : numpy.ndarray
        ``(time, view, person)`` from :func:`associate`.
    cost : numpy.ndarray, optional
        ``(time, person)`` from :func:`associate`, kept in the result.
    keypoints : list of str, optional
        Keypoint names (for the left/right fix).
    swap_lr : bool
        Undo single views' left/right confusions first.
    min_views, min_confidence
        See :func:`~mocapflow.triangulate.triangulate_points`.
    max_error : float, optional
        The robust step's threshold (px); default :data:`ROBUST_FRACTION` of the
        image diagonal.
    robust : bool
        False turns the robust step off.

    Returns
    -------
    People

    """
    uv, conf = _check_detections(uv, confidence, cams)
    _check_positive("max_error", max_error)
    if robust and max_error is None:
        max_error = default_threshold(cams, ROBUST_FRACTION)
    slots = np.asarray(slots)
    puv, pconf = gather(uv, conf, slots)
    v, t, _, k, persons = puv.shape
    # Only the person-frames that exist are triangulated: each becomes a "frame"
    # of one individual (every step works point by point and frame by frame, so
    # this changes nothing but the time spent on empty slots).
    tt, pp = np.nonzero((slots >= 0).any(1))
    xyz = np.full((t, 3, k, persons), np.nan)
    err = np.full((t, k, persons), np.nan)
    n = np.zeros((t, k, persons), np.int8)
    swapped = np.zeros((t, v, k, persons), bool)
    mean_conf = np.full((t, k, persons), np.nan)
    if len(tt):
        got = triangulate_frames(
            np.moveaxis(puv[:, tt, :, :, pp], 0, 1)[..., None],  # (V, N, 2, K, 1)
            cams,
            np.moveaxis(pconf[:, tt, :, pp], 0, 1)[..., None],
            keypoints=keypoints,
            swap_lr=swap_lr,
            min_views=min_views,
            min_confidence=min_confidence,
            max_error=max_error if robust else None,
        )
        xyz[tt, :, :, pp] = got[0][..., 0]

        err[tt, :, pp] = got[1][..., 0]
        n[tt, :, pp] = got[2][..., 0]
        swapped[tt, :, :, pp] = got[3][..., 0]
        mean_conf[tt, :, pp] = got[4][..., 0]
    return People(
        slots=np.asarray(slots, np.int16),
        cost=np.full((t, persons), np.nan) if cost is None else np.asarray(cost, np.float64),
        position=xyz,
        reprojection_error=err,
        n_views=n,
        lr_swapped=swapped,
        confidence=mean_conf,
        max_error=float("nan") if not robust else float(max_error),
    )


def associate_block(
    uv: np.ndarray,
    confidence: np.ndarray | None,
    cams: CameraSet,
    *,
    keypoints: list[str] | None = None,
    threshold: float | None = None,
    min_group_views: int = 2,
    max_people: int | None = None,
    min_views: int = 2,
    min_confidence: float = 0.5,
    max_error: float | None = None,
    robust: bool = True,
    swap_lr: bool = True,
) -> People:
    """:func:`associate` then :func:`triangulate_people`: one block's people, frame by frame."""
    slots, cost = associate(
        uv,
        confidence,
        cams,
        keypoints=keypoints,
        threshold=threshold,
        min_confidence=min_confidence,
        min_group_views=min_group_views,
        max_people=max_people,
    )
    return triangulate_people(
        uv,
        confidence,
        cams,
        slots,
        cost=cost,
        keypoints=keypoints,
        swap_lr=swap_lr,
        min_views=min_views,
        min_confidence=min_confidence,
        max_error=max_error,
        robust=robust,
    )


# --------------------------------------------------------------------------- linking


def summarize_people(position: np.ndarray, keypoints: np.ndarray | None = None) -> np.ndarray:
    """Return what linking reads: per frame and person, the keypoints' 3-D positions (float32).

    Parameters
    ----------
    position : numpy.ndarray
        ``(time, 3, keypoint, person)`` (:attr:`People.position`).
    keypoints : numpy.ndarray, optional
        Indices of the keypoints to keep (fewer keypoints, smaller summaries);
        default all.

    Returns
    -------
    numpy.ndarray
        ``(time, person, keypoint, 3)`` float32, NaN where not triangulated.

    """
    position = np.asarray(position)
    if position.ndim != 4 or position.shape[1] != 3:
        raise UsageError(
            f"positions must be (time, 3, keypoint, person), got shape {position.shape}"
        )
    if keypoints is not None:
        position = position[:, :, np.asarray(keypoints)]
    return np.ascontiguousarray(np.moveaxis(position, (1, 3), (3, 1)), np.float32)


def _body_size(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centre and size of skeletons ``(..., keypoint, 3)``: per-axis and distance medians.

    Medians, so that a few wild keypoints (or a badly triangulated false
    person) do not make a huge body with a huge gate.
    """
    ok = np.isfinite(points).all(-1)
    centre, _ = _nanmedian(np.where(ok[..., None], points, np.nan), -2)
    dist = np.where(ok, np.linalg.norm(points - centre[..., None, :], axis=-1), np.nan)
    size, _ = _nanmedian(dist, -1)
    return centre, size


@dataclass(frozen=True)
class LinkState:
    """The live tracks between two calls of :func:`link_people` (small: a skeleton per track).

    Attributes
    ----------
    frame : int
        The index of the next frame to link.
    ids : numpy.ndarray
        ``(track,)`` int64 track labels.
    points : numpy.ndarray
        ``(track, keypoint, 3)`` each keypoint's last seen position.
    velocity : numpy.ndarray
        ``(track, 3)`` the centre's velocity per frame (smoothed).
    size : numpy.ndarray
        ``(track,)`` body size (smoothed).
    last : numpy.ndarray
        ``(track,)`` int64 frame last seen.
    next_id : int
        The label the next new track gets.

    """

    frame: int = 0
    ids: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    points: np.ndarray = field(default_factory=lambda: np.zeros((0, 0, 3)))
    velocity: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))
    size: np.ndarray = field(default_factory=lambda: np.zeros(0))
    last: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    next_id: int = 0


def _assign(dist: np.ndarray, limit: np.ndarray) -> list[tuple[int, int]]:
    """Optimal matching of tracks (rows) to people (columns), each free to stay unmatched.

    Matching track ``r`` to person ``c`` costs their distance over the track's
    gate (``limit[r]``); leaving a track or a person unmatched costs 0.5, so a
    pair is matched only within its gate, and a far match never displaces a
    near one to match more pairs (a plain assignment would match as many as it
    can). Pairs beyond the gate (or NaN) are refused.
    """
    n_r, n_c = dist.shape
    with np.errstate(invalid="ignore", divide="ignore"):
        rel = dist / limit[:, None]
    feasible = rel <= 1.0
    full = np.full((n_r + n_c, n_c + n_r), 1e6)
    full[:n_r, :n_c] = np.where(feasible, rel, 1e6)
    full[np.arange(n_r), n_c + np.arange(n_r)] = 0.5  # track unmatched
    full[n_r + np.arange(n_c), np.arange(n_c)] = 0.5  # person unmatched
    full[n_r:, n_c:] = 0.0
    rows, cols = linear_sum_assignment(full)
    return [
        (r, c)
        for r, c in zip(rows.tolist(), cols.tolist(), strict=True)
        if r < n_r and c < n_c and feasible[r, c]
    ]


def link_people(
    points: np.ndarray,
    *,
    state: LinkState | None = None,
    gate: float | None = None,
    gate_fraction: float = GATE_FRACTION,
    max_gap: int = MAX_GAP,
    min_points: int = MIN_COMMON_KEYPOINTS,
) -> tuple[np.ndarray, LinkState]:
    """Give each frame's people a track label, frame by frame.

    Each live track remembers every keypoint's last position and predicts the
    skeleton moved by its centre's velocity times the frames since it was seen.
    A person's distance to a track is the median, over the keypoints both have,
    of the keypoint distances (robust to keypoints that come and go, where a
    centroid would jump). The frame's people are assigned to tracks by
    :func:`scipy.optimize.linear_sum_assignment`, either free to stay unmatched
    and pairs beyond the gate refused; unmatched people start new tracks
    (labels in order of appearance, then of person index), and tracks unseen
    for more than ``max_gap`` frames end. With a gate relative to body size,
    the tracks and people left unmatched get a second assignment at twice the
    gate before any new track starts.

    Parameters
    ----------
    points : numpy.ndarray
        ``(time, person, keypoint, 3)`` from :func:`summarize_people`; a person
        with fewer than ``min_points`` finite keypoints is nobody.
    state : LinkState, optional
        What the previous block's call returned; None starts afresh at frame 0.
    gate : float, optional
        Largest distance (world units) between a track's prediction and a
        person; default ``gate_fraction`` times the track's body size.
    gate_fraction : float
        See ``gate``.
    max_gap : int
        Frames a track may go unseen and still continue.
    min_points : int
        Fewest keypoints for a person, and in common with a track.

    Returns
    -------
    labels : numpy.ndarray
        ``(time, person)`` int64 track labels, -1 for nobody.
    state : LinkState
        For the next block.

    """
    points = np.asarray(points, np.float64)
    if points.ndim != 4 or points.shape[-1] != 3:
        raise UsageError(
            f"link_people needs points (time, person, keypoint, 3), got shape {points.shape}"
        )
    _check_positive("gate", gate)
    _check_positive("gate_fraction", gate_fraction)
    if max_gap < 0:
        raise UsageError(f"max_gap must be 0 or more, got {max_gap}")
    n_t, _, n_k, _ = points.shape
    st = LinkState() if state is None else state
    if len(st.ids) and st.points.shape[1] != n_k:
        raise UsageError(
            f"the link state has {st.points.shape[1]} keypoints, these points {n_k}; "
            "link every block with the same keypoints"
        )
    ids = st.ids.copy()
    pts = st.points.reshape(-1, n_k, 3).copy()
    vel, siz, last = st.velocity.copy(), st.size.copy(), st.last.copy()
    next_id = st.next_id
    ok = np.isfinite(points).all(-1)  # (T, P, K)
    centre, size = _body_size(points)  # (T, P, 3), (T, P)
    labels = np.full(points.shape[:2], -1, np.int64)
    for f in range(n_t):
        frame = st.frame + f
        keep = frame - last <= max_gap + 1
        ids, pts, vel, siz, last = ids[keep], pts[keep], vel[keep], siz[keep], last[keep]
        people = np.flatnonzero(ok[f].sum(-1) >= min_points)
        matched = np.full(len(people), -1)
        if len(ids) and len(people):
            gap = (frame - last).astype(np.float64)
            pred = pts + (vel * gap[:, None])[:, None, :]  # (R, K, 3)
            d = np.linalg.norm(pred[:, None] - points[f, people][None], axis=-1)  # (R, C, K)
            dist, common = _nanmedian(d, -1)
            dist = np.where(common >= min_points, dist, np.nan)
            limit = np.full(len(ids), gate) if gate is not None else gate_fraction * siz
            for r, c in _assign(dist, limit):
                matched[c] = r
            # A second chance, among those left, at twice the gate: a person's 3-D
            # from two or three views jumps now and then, and a new track for one
            # frame would leave a hole in the person's own.
            rows = np.setdiff1d(np.arange(len(ids)), matched[matched >= 0])
            cols = np.flatnonzero(matched < 0)
            if gate is None and len(rows) and len(cols):
                for r, c in _assign(dist[np.ix_(rows, cols)], _SECOND_CHANCE * limit[rows]):
                    matched[cols[c]] = rows[r]
        new = []
        for c, j in enumerate(people.tolist()):
            r = matched[c]
            if r < 0:
                new.append(j)
                continue
            seen = ok[f, j]
            old_centre, _ = _body_size(np.where(seen[:, None], pts[r], np.nan)[None])
            step = (centre[f, j] - old_centre[0]) / (frame - last[r])
            if np.isfinite(step).all():
                vel[r] = (1 - _VELOCITY_GAIN) * vel[r] + _VELOCITY_GAIN * step
            pts[r][seen] = points[f, j][seen]
            if np.isfinite(size[f, j]):
                siz[r] = 0.9 * siz[r] + 0.1 * size[f, j]
            last[r] = frame
            labels[f, j] = ids[r]
        if new:
            ids = np.r_[ids, np.arange(next_id, next_id + len(new))]
            pts = np.concatenate([pts, points[f, new]])
            vel = np.concatenate([vel, np.zeros((len(new), 3))])
            siz = np.r_[siz, size[f, new]]
            last = np.r_[last, np.full(len(new), frame)]
            labels[f, new] = np.arange(next_id, next_id + len(new))
            next_id += len(new)
    out = LinkState(st.frame + n_t, ids, pts, vel, siz, last.astype(np.int64), next_id)
    return labels, out


def by_track(
    values: np.ndarray, labels: np.ndarray, n_tracks: int, *, fill: float = np.nan
) -> np.ndarray:
    """Reorder a per-person array into tracks: ``(time, ..., person)`` -> ``(time, ..., track)``.

    ``labels`` is ``(time, person)`` from :func:`link_people`; ``time`` must be
    the first axis of ``values`` and ``person`` the last.
    """
    values = np.asarray(values)
    labels = np.asarray(labels)
    if values.shape[0] != labels.shape[0] or values.shape[-1] != labels.shape[1]:
        raise UsageError(
            f"values {values.shape} and labels {labels.shape} disagree on time or person"
        )
    dtype = np.result_type(values.dtype, np.min_scalar_type(fill))
    out = np.full((*values.shape[:-1], n_tracks), fill, dtype)
    t, p = np.nonzero((labels >= 0) & (labels < n_tracks))
    out[t, ..., labels[t, p]] = values[t, ..., p]
    return out


# --------------------------------------------------------------------------- choice


def runs_text(ranges: list[tuple[int, int]], most: int = 5) -> str:
    """Write runs of frames as ``0-84, 88-90, 93 and 2 more`` (at most ``most`` shown)."""
    shown = ", ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in ranges[:most])
    more = f" and {len(ranges) - most} more" if len(ranges) > most else ""
    return (shown or "none") + more


def frame_ranges(frames: np.ndarray) -> list[tuple[int, int]]:
    """Return runs of consecutive frame indices as ``(first, last)`` pairs (inclusive)."""
    frames = np.unique(np.asarray(frames, np.int64))
    if not len(frames):
        return []
    breaks = np.flatnonzero(np.diff(frames) > 1)
    starts = np.r_[frames[0], frames[breaks + 1]]
    ends = np.r_[frames[breaks], frames[-1]]
    return [(int(a), int(b)) for a, b in zip(starts, ends, strict=True)]


@dataclass(frozen=True)
class Choice:
    """The person :func:`choose_person` picked, and who else was seen.

    Attributes
    ----------
    track : int
        The chosen track label (-1 when nobody was seen).
    support : dict
        Per track label: ``frames``, ``view_frames`` (views summed over frames)
        and ``error`` (median reprojection error, px).
    others : int
        How many other tracks were seen.
    other_frames : numpy.ndarray
        Frame indices where any other track was seen.

    """

    track: int
    support: dict[int, dict[str, float]]
    others: int
    other_frames: np.ndarray

    def describe(self) -> str:
        """One line for the log: who was kept, and who else was seen when."""
        if self.track < 0:
            return "nobody was seen in two views at once"
        kept = self.support[self.track]
        line = (
            f"kept person {self.track} ({kept['frames']:.0f} frames, "
            f"{kept['view_frames'] / max(kept['frames'], 1):.1f} views on average, "
            f"{kept['error']:.1f} px)"
        )
        if not self.others:
            return line + "; nobody else was seen"
        runs = runs_text(frame_ranges(self.other_frames))
        return f"{line}; {self.others} other people seen in frames {runs}"


def choose_person(
    labels: np.ndarray, group_views: np.ndarray, error: np.ndarray | None = None
) -> Choice:
    """Pick the best-supported track for a one-person output (``--people 1``).

    The track with the most views summed over its frames wins (more views agree
    on it, for longer); ties go to the lower median reprojection error, then to
    the lower label.

    Parameters
    ----------
    labels : numpy.ndarray
        ``(time, person)`` from :func:`link_people`.
    group_views : numpy.ndarray
        ``(time, person)`` views per person (:attr:`People.group_views`).
    error : numpy.ndarray, optional
        ``(time, person)`` reprojection error per person-frame (px), e.g. the
        mean over keypoints of :attr:`People.reprojection_error`.

    Returns
    -------
    Choice

    """
    labels = np.asarray(labels)
    views = np.asarray(group_views, np.float64)
    err = np.full(labels.shape, np.nan) if error is None else np.asarray(error, np.float64)
    if views.shape != labels.shape or err.shape != labels.shape:
        raise UsageError(
            f"labels {labels.shape}, group_views {views.shape} and error {err.shape} "
            "must all be (time, person)"
        )
    support = _support(labels, views, err)
    if not support:
        return Choice(-1, {}, 0, np.zeros(0, np.int64))
    best = min(support, key=lambda k: _rank(support, k))
    other = (labels >= 0) & (labels != best)
    return Choice(best, support, len(support) - 1, np.flatnonzero(other.any(1)))


def _support(labels: np.ndarray, views: np.ndarray, err: np.ndarray) -> dict:
    """Per track label: frames seen, views summed over frames, median error (px)."""
    support: dict[int, dict[str, float]] = {}
    for track in np.unique(labels[labels >= 0]).tolist():
        here = labels == track
        e = err[here]
        e = e[np.isfinite(e)]
        support[int(track)] = {
            "frames": float(here.any(1).sum()),
            "view_frames": float(views[here].sum()),
            "error": float(np.median(e)) if len(e) else float("nan"),
        }
    return support


def _rank(support: dict[int, dict[str, float]], track: int) -> tuple:
    """Sort key of a track: most views summed over frames, then lowest error, then label."""
    s = support[track]
    return (-s["view_frames"], np.inf if np.isnan(s["error"]) else s["error"], track)


@dataclass(frozen=True)
class Selection:
    """The tracks kept as people (:func:`select_tracks`), and what was left out.

    Attributes
    ----------
    tracks : list of int
        The kept track labels, best supported first: ``person0`` is ``tracks[0]``.
    support : dict
        Per track label, as :attr:`Choice.support`.
    others : list of int
        Tracks long enough to be people but not kept (``people`` asked fewer).
    brief : list of int
        Tracks seen in fewer than ``min_frames`` frames: chance agreements of
        two views, not people.
    labels : numpy.ndarray
        ``(time, person)`` the linking's labels.

    """

    tracks: list[int]
    support: dict[int, dict[str, float]]
    others: list[int]
    brief: list[int]
    labels: np.ndarray

    def frames_of(self, track: int) -> list[tuple[int, int]]:
        """Return the runs of frames (first, last; inclusive) where a track was seen."""
        return frame_ranges(np.flatnonzero((self.labels == track).any(1)))

    def describe(self) -> str:
        """One line: who was kept, and who else was seen, when."""
        if not self.tracks:
            return "nobody was seen in two views at once"
        kept = ", ".join(
            f"person{i} ({self.support[t]['frames']:.0f} frames, "
            f"{self.support[t]['view_frames'] / max(self.support[t]['frames'], 1):.1f} views, "
            f"{self.support[t]['error']:.1f} px)"
            for i, t in enumerate(self.tracks)
        )
        line = f"{len(self.tracks)} {'person' if len(self.tracks) == 1 else 'people'} kept: {kept}"
        if self.others:
            seen = np.flatnonzero(np.isin(self.labels, self.others).any(1))
            line += (
                f"; {len(self.others)} other {'person' if len(self.others) == 1 else 'people'} "
                f"seen in frames {runs_text(frame_ranges(seen))}, left out "
                "(--people all keeps everyone)"
            )
        if self.brief:
            n = len(self.brief)
            what = "agreement" if n == 1 else "agreements"
            line += f"; {n} brief {what} of two views (not people) ignored"
        return line


def select_tracks(
    labels: np.ndarray,
    group_views: np.ndarray,
    error: np.ndarray | None = None,
    *,
    people: int | None = 1,
    min_frames: int = MIN_TRACK_FRAMES,
) -> Selection:
    """Choose the tracks that are the output's people, best supported first.

    Tracks seen in fewer than ``min_frames`` frames (at most a quarter of the
    frames, for short recordings) are chance agreements, not people. Of the
    rest, the ``people`` best supported (see :func:`choose_person`) are kept;
    None keeps them all.

    Parameters
    ----------
    labels, group_views, error : numpy.ndarray
        As :func:`choose_person` takes them.
    people : int or None
        How many people to keep; None for everyone.
    min_frames : int
        Fewest frames of a person.

    Returns
    -------
    Selection

    """
    if people is not None and people < 1:
        raise UsageError(f"--people must be a whole number, 1 or more, or all; got {people}")
    labels = np.asarray(labels)
    err = np.full(labels.shape, np.nan) if error is None else np.asarray(error, np.float64)
    support = _support(labels, np.asarray(group_views, np.float64), err)
    ranked = sorted(support, key=lambda k: _rank(support, k))
    least = max(1, min(min_frames, np.asarray(labels).shape[0] // 4))
    real = [k for k in ranked if support[k]["frames"] >= least]
    brief = [k for k in ranked if k not in real]
    keep = real if people is None else real[:people]
    others = [k for k in real if k not in keep]
    return Selection(keep, support, others, brief, labels)


# --------------------------------------------------------------------------- proportions


def bone_index(keypoints: list[str], skeleton: list[list[str]] | None) -> np.ndarray:
    """Return the skeleton's bones as keypoint index pairs ``(bone, 2)`` (absent ends left out)."""
    where = {str(k): i for i, k in enumerate(keypoints)}
    pairs = [(where[a], where[b]) for a, b in (skeleton or []) if a in where and b in where]
    return np.asarray(pairs, np.int64).reshape(-1, 2)


def skeleton_lengths(points: np.ndarray, bones: np.ndarray) -> np.ndarray:
    """Return the bone lengths of skeletons ``(..., keypoint, 3)``: ``(..., bone)``."""
    points = np.asarray(points)
    return np.linalg.norm(points[..., bones[:, 0], :] - points[..., bones[:, 1], :], axis=-1)


def bone_medians(lengths: np.ndarray, labels: np.ndarray, tracks: list[int]) -> np.ndarray:
    """Return each track's median bone lengths over its frames, ``(track, bone)``.

    Parameters
    ----------
    lengths : numpy.ndarray
        ``(time, person, bone)`` from :func:`skeleton_lengths` of
        :func:`summarize_people`'s points.
    labels : numpy.ndarray
        ``(time, person)`` from :func:`link_people`.
    tracks : list of int
        The track labels, in the order of the result's rows.

    """
    lengths = np.asarray(lengths, np.float64)
    out = np.full((len(tracks), lengths.shape[-1]), np.nan)
    for row, track in enumerate(tracks):
        here = lengths[np.asarray(labels) == track]
        if len(here):
            out[row] = _nanmedian(here, 0)[0]
    return out


def drop_implausible(
    position: np.ndarray,
    bones: np.ndarray,
    medians: np.ndarray,
    tolerance: float = BONE_TOLERANCE,
) -> np.ndarray:
    """Find the keypoints whose bones break their person's proportions.

    Round by round, in every frame and person at once: the bones off their
    person's median length by more than ``tolerance`` (a fraction) are found,
    and the keypoint at the end of most of them is dropped, until no bone is off.

    Parameters
    ----------
    position : numpy.ndarray
        ``(time, 3, keypoint, person)``.
    bones : numpy.ndarray
        ``(bone, 2)`` from :func:`bone_index`.
    medians : numpy.ndarray
        ``(person, bone)`` from :func:`bone_medians`.
    tolerance : float
        Largest relative change of a bone's length.

    Returns
    -------
    numpy.ndarray
        ``(time, keypoint, person)`` bool: True for the keypoints to drop.

    """
    _check_positive("the bone tolerance", tolerance)
    pts = np.moveaxis(np.asarray(position, np.float64), (1, 3), (3, 1)).copy()  # (T, P, K, 3)
    drop = np.zeros(pts.shape[:3], bool)
    if not len(bones):
        return np.moveaxis(drop, 1, 2)
    n_k = pts.shape[2]
    for _ in range(n_k):
        with np.errstate(all="ignore"):
            off = np.abs(skeleton_lengths(pts, bones) / medians[None] - 1) > tolerance  # (T, P, B)
        rows = off.any(-1)
        if not rows.any():
            break
        t, p = np.nonzero(rows)
        counts = np.zeros((len(t), n_k), np.int64)
        row, bone = np.nonzero(off[t, p])
        for end in (0, 1):
            np.add.at(counts, (row, bones[bone, end]), 1)
        worst = counts.argmax(1)
        drop[t, p, worst] = True
        pts[t, p, worst] = np.nan
    return np.moveaxis(drop, 1, 2)
