"""Vectorised multi-view triangulation (numpy and OpenCV; no Dask).

Points are undistorted once per camera (``cv2.undistortPointsIter``), then every
point of every frame is triangulated at once by the direct linear transform: the
normal equations of all points are built with array arithmetic and solved in
closed form. There is no Python loop over points or frames.
World coordinates are normalised (cameras' centroid and spread) before the DLT,
as Hartley recommends, so millimetre-scale translations stay well conditioned.

Optional outlier rejection follows FreeMoCap: while a point's mean reprojection
error is over a target and more than ``min_views`` views remain, drop the view
whose removal lowers the error most. It is batched over all flagged points.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .calib import Camera

__all__ = [
    "LR_MARGIN",
    "CameraSet",
    "fix_left_right",
    "left_right_pairs",
    "triangulate_frames",
    "triangulate_points",
]

#: A view's left/right labels are swapped only when that lowers the pair's
#: reprojection error (left + right, px) by more than this.
LR_MARGIN = 2.0

#: Fixed-point iterations of the undistortion (OpenCV's default is 5; 8 reach 1e-13 px
#: at the synthetic cameras' distortion, measured).
_CRITERIA = (cv2.TERM_CRITERIA_COUNT, 8, 0.0)


@dataclass(frozen=True)
class CameraSet:
    """Cameras prepared for batched triangulation.

    Attributes
    ----------
    cameras : tuple of Camera
        In view order.
    proj : numpy.ndarray
        ``(view, 3, 4)`` normalised-camera projections in normalised world units.
    centre, scale : numpy.ndarray, float
        World normalisation: ``X_norm = (X - centre) / scale``.

    """

    cameras: tuple[Camera, ...]
    proj: np.ndarray
    centre: np.ndarray
    scale: float

    @classmethod
    def from_cameras(cls, cameras: list[Camera]) -> CameraSet:
        """Prepare cameras (in view order) for triangulation."""
        centres = np.stack([c.center for c in cameras])
        centre = centres.mean(0)
        scale = float(np.linalg.norm(centres - centre, axis=1).mean()) or 1.0
        proj = []
        for cam in cameras:
            rot = cam.rotation_matrix
            t = np.asarray(cam.translation, np.float64)
            # x_cam = R (scale * Xn + centre) + t
            proj.append(np.hstack([rot * scale, (rot @ centre + t)[:, None]]))
        return cls(tuple(cameras), np.stack(proj), centre, scale)

    def undistort(self, uv: np.ndarray) -> np.ndarray:
        """Undistort pixels ``(view, N, 2)`` to normalised image coordinates (NaN kept)."""
        out = np.empty(uv.shape)
        for v, cam in enumerate(self.cameras):
            # NaN (a missed point) stays NaN through OpenCV's iteration.
            pts = np.ascontiguousarray(uv[v], np.float64).reshape(-1, 1, 2)
            und = cv2.undistortPointsIter(pts, cam.matrix, cam.distortions, None, None, _CRITERIA)
            out[v] = und.reshape(uv.shape[1:])
        return out

    def project(self, points: np.ndarray) -> np.ndarray:
        """Project world points ``(N, 3)`` into every view: pixels ``(view, N, 2)``."""
        return np.stack([cam.project(points) for cam in self.cameras])


def _dlt(norm: np.ndarray, proj: np.ndarray, use: np.ndarray) -> np.ndarray:
    """Batched DLT: normalised points ``(V, N, 2)``, use ``(..., V, N)`` -> ``(..., N, 3)``.

    Each view gives two rows ``x p3 - p1`` and ``y p3 - p2`` of the system
    ``A [X, 1] = 0``; with the point's last coordinate fixed at 1 (points at
    infinity cannot occur in front of the cameras) the least-squares solution
    solves the 3x3 normal equations, done here for every point at once in
    closed form (adjugate over determinant), with no per-point loop or LAPACK call.
    """
    x, y = norm[..., 0], norm[..., 1]  # (V, N)
    w = np.where(use, 1.0, 0.0)  # (..., V, N)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = np.where(ok, x, 0.0), np.where(ok, y, 0.0)
    shape = (*w.shape[:-2], w.shape[-1])
    m00, m01, m02, m11, m12, m22 = (np.zeros(shape) for _ in range(6))
    r0, r1, r2 = (np.zeros(shape) for _ in range(3))
    for v in range(proj.shape[0]):
        p0, p1, p2 = proj[v]
        wv = w[..., v, :]
        for c, p in ((x[v], p0), (y[v], p1)):
            a0, a1, a2, b = (c * p2[j] - p[j] for j in range(4))
            wa0, wa1, wa2 = wv * a0, wv * a1, wv * a2
            m00 += wa0 * a0
            m01 += wa0 * a1
            m02 += wa0 * a2
            m11 += wa1 * a1
            m12 += wa1 * a2
            m22 += wa2 * a2
            r0 -= wa0 * b
            r1 -= wa1 * b
            r2 -= wa2 * b
    # Cramer's rule on the symmetric 3x3 systems.
    c00 = m11 * m22 - m12 * m12
    c01 = m02 * m12 - m01 * m22
    c02 = m01 * m12 - m02 * m11
    c11 = m00 * m22 - m02 * m02
    c12 = m01 * m02 - m00 * m12
    c22 = m00 * m11 - m01 * m01
    det = m00 * c00 + m01 * c01 + m02 * c02
    with np.errstate(divide="ignore", invalid="ignore"):
        out = (
            np.stack(
                [
                    c00 * r0 + c01 * r1 + c02 * r2,
                    c01 * r0 + c11 * r1 + c12 * r2,
                    c02 * r0 + c12 * r1 + c22 * r2,
                ],
                axis=-1,
            )
            / det[..., None]
        )
    return np.where((w.sum(-2) >= 2)[..., None], out, np.nan)


def _errors(cams: CameraSet, xn: np.ndarray, uv: np.ndarray, use: np.ndarray) -> np.ndarray:
    """Mean reprojection error (px) over the used views; ``xn`` normalised ``(..., N, 3)``."""
    world = xn * cams.scale + cams.centre
    flat = world.reshape(-1, 3)
    bad = ~np.isfinite(flat).all(-1)
    flat = np.where(bad[:, None], 0.0, flat)
    rep = cams.project(flat).reshape(len(cams.cameras), *world.shape[:-1], 2)  # (V, ..., N, 2)
    rep = np.moveaxis(rep, 0, -3)  # (..., V, N, 2)
    d = np.linalg.norm(rep - uv, axis=-1)
    d = np.where(use, d, 0.0)
    n = use.sum(-2)
    with np.errstate(invalid="ignore", divide="ignore"):
        err = d.sum(-2) / n
    return np.where(bad.reshape(world.shape[:-1]) | (n == 0), np.nan, err)


def triangulate_points(
    uv: np.ndarray,
    cams: CameraSet,
    confidence: np.ndarray | None = None,
    *,
    min_views: int = 2,
    min_confidence: float = 0.5,
    max_error: float | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Triangulate points seen in several views.

    Parameters
    ----------
    uv : numpy.ndarray
        Pixels ``(view, N, 2)``, NaN where not seen.
    cams : CameraSet
        The cameras, in view order.
    confidence : numpy.ndarray, optional
        ``(view, N)``; views under ``min_confidence`` (or NaN) are not used.
    min_views : int
        Fewest views for a point; fewer gives NaN.
    min_confidence : float
        Confidence threshold.
    max_error : float, optional
        Reprojection-error target (px) for outlier rejection; None turns it off.

    Returns
    -------
    position : numpy.ndarray
        ``(N, 3)`` world points, NaN where not triangulated.
    error : numpy.ndarray
        ``(N,)`` mean reprojection error over the views used, px.
    n_views : numpy.ndarray
        ``(N,)`` views used (int8).

    """
    uv = np.asarray(uv, np.float64)
    use = _usable(uv, confidence, min_confidence)
    return _triangulate(uv, cams, use, min_views, max_error)[:3]


def _usable(uv: np.ndarray, confidence: np.ndarray | None, min_confidence: float) -> np.ndarray:
    """Which observations count: finite, and confident enough when confidences are given."""
    use = np.isfinite(uv).all(-1)
    if confidence is not None:
        conf = np.asarray(confidence, np.float64)
        use &= np.nan_to_num(conf, nan=-np.inf) >= min_confidence
    return use


def _triangulate(
    uv: np.ndarray, cams: CameraSet, use: np.ndarray, min_views: int, max_error: float | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`triangulate_points` on pixels ``(view, N, 2)`` with a usage mask ``(view, N)``.

    Also returns the mask of the views finally used (after outlier rejection).
    """
    use = use.copy()
    norm = cams.undistort(uv)
    xn = _dlt(norm, cams.proj, use)
    err = _errors(cams, xn, uv, use)
    if max_error is not None:
        n_views = len(cams.cameras)
        for _ in range(max(n_views - min_views, 0)):
            flag = np.flatnonzero((err > max_error) & (use.sum(0) > min_views))
            if not len(flag):
                break
            sub_use = use[:, flag]  # (V, F)
            # Candidate v drops view v: masks (V_candidates, V, F).
            cand = np.repeat(sub_use[None], n_views, 0)
            idx = np.arange(n_views)
            cand[idx, idx, :] = False
            cx = _dlt(norm[:, flag], cams.proj, cand)  # (V_c, F, 3)
            ce = _errors(cams, cx, uv[:, flag], cand)  # (V_c, F)
            ce = np.where(sub_use, ce, np.inf)  # only drop views in use
            ce = np.where(np.isnan(ce), np.inf, ce)
            best = np.argmin(ce, 0)
            ok = ce[best, np.arange(len(flag))] < err[flag]
            rows = flag[ok]
            use[best[ok], rows] = False
            xn[rows] = cx[best[ok], np.flatnonzero(ok)]
            err[rows] = ce[best[ok], np.flatnonzero(ok)]
            if not ok.any():
                break
    count = use.sum(0)
    position = xn * cams.scale + cams.centre
    few = count < min_views
    position[few] = np.nan
    err[few] = np.nan
    return position, err, count.astype(np.int8), use


def left_right_pairs(keypoints: list[str]) -> np.ndarray:
    """Return index pairs ``(P, 2)`` of keypoints named ``left_X`` and ``right_X``.

    MediaPipe's and most pose models' names follow this rule (``left_knee``,
    ``left_hand_wrist``); keypoints without a partner are not paired.
    """
    index = {str(k): i for i, k in enumerate(keypoints)}
    pairs = [
        (i, index["right_" + name[5:]])
        for name, i in index.items()
        if name.startswith("left_") and "right_" + name[5:] in index
    ]
    return np.array(pairs, dtype=np.int64).reshape(-1, 2)


def _pair_cost(uv: np.ndarray, use: np.ndarray, cams: CameraSet, min_views: int) -> np.ndarray:
    """Reprojection error of left plus right for pairs: ``uv (V, ..., 2, 2)`` -> ``(...)``.

    The second-to-last axis of ``uv`` (and last of ``use``) is (left, right).
    Pairs that cannot be triangulated cost infinity.
    """
    shape = uv.shape[1:-1]
    _, err, _, _ = _triangulate(
        uv.reshape(len(uv), -1, 2), cams, use.reshape(len(use), -1), min_views, None
    )
    cost = err.reshape(shape).sum(-1)
    return np.where(np.isfinite(cost), cost, np.inf)


def fix_left_right(
    uv: np.ndarray,
    use: np.ndarray,
    cams: CameraSet,
    pairs: np.ndarray,
    *,
    confidence: np.ndarray | None = None,
    min_views: int = 2,
    margin: float = LR_MARGIN,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """Undo left/right confusions of single views, as Pose2Sim does.

    For each frame and each left/right pair, every view's labels are tried
    swapped; the swap that lowers the pair's reprojection error (left + right)
    most is kept if it lowers it by more than ``margin`` pixels, and the search
    repeats (a second view may be swapped too) until nothing improves.

    Parameters
    ----------
    uv : numpy.ndarray
        Pixels ``(view, time, keypoint, individual, 2)``.
    use : numpy.ndarray
        ``(view, time, keypoint, individual)``: observations that count.
    cams : CameraSet
        The cameras, in view order.
    pairs : numpy.ndarray
        ``(P, 2)`` keypoint indices (see :func:`left_right_pairs`).
    confidence : numpy.ndarray, optional
        ``(view, time, keypoint, individual)``, swapped with the labels.
    min_views : int
        Fewest views for a point.
    margin : float
        Least improvement (px) for a swap.

    Returns
    -------
    uv, use : numpy.ndarray
        Copies with the swapped views' labels exchanged.
    swapped : numpy.ndarray
        ``(view, time, keypoint, individual)`` bool: the view's label was swapped
        (both keypoints of a pair are marked).
    confidence : numpy.ndarray or None
        A copy of ``confidence`` with the same exchanges.

    """
    uv, use = uv.copy(), use.copy()
    confidence = None if confidence is None else np.array(confidence, copy=True)
    n_views = uv.shape[0]
    swapped = np.zeros(use.shape, bool)
    if not len(pairs) or n_views < 3:  # two views cannot outvote each other
        return uv, use, swapped, confidence
    left, right = pairs[:, 0], pairs[:, 1]
    # (V, T, P, I, 2 sides, 2 coords) and (V, T, P, I, 2 sides)
    puv = np.stack([uv[:, :, left], uv[:, :, right]], axis=-2)
    puse = np.stack([use[:, :, left], use[:, :, right]], axis=-1)
    cost = _pair_cost(puv, puse, cams, min_views)
    pair_swapped = np.zeros(puse.shape[:-1], bool)  # (V, T, P, I)
    views = np.arange(n_views)
    for _ in range(n_views - 1):
        cand_uv = np.repeat(puv[None], n_views, 0)  # (C, V, T, P, I, 2, 2)
        cand_use = np.repeat(puse[None], n_views, 0)
        cand_uv[views, views] = puv[..., ::-1, :]
        cand_use[views, views] = puse[..., ::-1]
        flat_uv = np.moveaxis(cand_uv, 0, 1)  # views first for the solver
        flat_use = np.moveaxis(cand_use, 0, 1)
        cand_cost = _pair_cost(flat_uv, flat_use, cams, min_views)  # (C, T, P, I)
        best = np.argmin(cand_cost, 0)
        best_cost = np.take_along_axis(cand_cost, best[None], 0)[0]
        accept = best_cost + margin < cost
        if not accept.any():
            break
        idx = np.nonzero(accept)
        view = best[idx]
        puv[(view, *idx)] = puv[(view, *idx)][..., ::-1, :]
        puse[(view, *idx)] = puse[(view, *idx)][..., ::-1]
        pair_swapped[(view, *idx)] ^= True
        cost = np.where(accept, best_cost, cost)
    uv[:, :, left], uv[:, :, right] = puv[..., 0, :], puv[..., 1, :]
    use[:, :, left], use[:, :, right] = puse[..., 0], puse[..., 1]
    swapped[:, :, left] = pair_swapped
    swapped[:, :, right] = pair_swapped
    if confidence is not None:
        cl, cr = confidence[:, :, left].copy(), confidence[:, :, right].copy()
        confidence[:, :, left] = np.where(pair_swapped, cr, cl)
        confidence[:, :, right] = np.where(pair_swapped, cl, cr)
    return uv, use, swapped, confidence


def triangulate_frames(
    position: np.ndarray,
    cams: CameraSet,
    confidence: np.ndarray | None = None,
    *,
    keypoints: list[str] | None = None,
    swap_lr: bool = True,
    lr_margin: float = LR_MARGIN,
    min_views: int = 2,
    min_confidence: float = 0.5,
    max_error: float | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Triangulate a block of a 2-D store, frame by frame.

    Parameters
    ----------
    position : numpy.ndarray
        ``(view, time, 2, keypoint, individual)`` pixels.
    cams : CameraSet
        The cameras, in view order.
    confidence : numpy.ndarray, optional
        ``(view, time, keypoint, individual)``.
    keypoints : list of str, optional
        Keypoint names, for the left/right pairs.
    swap_lr : bool
        Undo single views' left/right confusions first (:func:`fix_left_right`).
    lr_margin : float
        See :func:`fix_left_right`.
    min_views, min_confidence, max_error
        See :func:`triangulate_points`.

    Returns
    -------
    position : numpy.ndarray
        ``(time, 3, keypoint, individual)`` float64, world units.
    reprojection_error : numpy.ndarray
        ``(time, keypoint, individual)`` px.
    n_views : numpy.ndarray
        ``(time, keypoint, individual)`` int8.
    swapped : numpy.ndarray
        ``(time, view, keypoint, individual)`` bool: labels swapped in that view.
    confidence : numpy.ndarray
        ``(time, keypoint, individual)``: mean 2-D confidence of the views used
        (1 where the tracker gives none), NaN where not triangulated.

    """
    v, t, _, k, i = position.shape
    uv = np.moveaxis(np.asarray(position, np.float64), 2, -1)  # (V, T, K, I, 2)
    conf = np.ones(uv.shape[:-1]) if confidence is None else np.asarray(confidence, np.float64)
    use = _usable(uv, conf, min_confidence)
    pairs = left_right_pairs(keypoints) if swap_lr and keypoints is not None else np.zeros((0, 2))
    uv, use, swapped, conf = fix_left_right(
        uv,
        use,
        cams,
        pairs.astype(np.int64),
        confidence=conf,
        min_views=min_views,
        margin=lr_margin,
    )
    flat_use = use.reshape(v, t * k * i)
    xyz, err, n, used = _triangulate(
        uv.reshape(v, t * k * i, 2), cams, flat_use, min_views, max_error
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.where(used, conf.reshape(v, -1), 0.0).sum(0) / used.sum(0)
    mean_conf = np.where(np.isfinite(err), mean_conf, np.nan)
    xyz = np.moveaxis(xyz.reshape(t, k, i, 3), -1, 1)
    return (
        xyz,
        err.reshape(t, k, i),
        n.reshape(t, k, i),
        np.moveaxis(swapped, 0, 1),
        mean_conf.reshape(t, k, i),
    )
