"""Multi-camera calibration from ChArUco corner tracks (numpy, OpenCV, scipy, Ceres; no Dask).

The steps, as anipose and FreeMoCap do them, on the ``charuco`` tracker's output:

1. **Intrinsics** per camera: ``cv2.calibrateCamera`` on a well-spread subset of
   the camera's board views (farthest-point sampling over where the board sits
   in the image, how big it looks and how it is tilted).
2. **Extrinsics**: the board's pose in each camera (``solvePnP``), relative poses
   of every pair of cameras that saw the board at once, and a chain of those
   over a maximum spanning tree of the camera graph (edges weighted by shared
   views) from camera 0.
3. **Bundle adjustment** of everything (every camera's intrinsics and pose,
   every board pose) with Ceres (``pyceres``): OpenCV's exact derivatives, a
   robust (Cauchy) loss and the Schur complement that eliminates the board
   poses. Camera 0 fixes the gauge; the board's known square size fixes the scale.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import cv2
import numpy as np
import pyceres
from scipy.sparse.csgraph import breadth_first_order, minimum_spanning_tree

from ..errors import CalibrationError
from .camera import Camera

__all__ = [
    "CalibrationResult",
    "IntrinsicsResult",
    "calibrate_cameras",
    "calibrate_intrinsics",
    "MIN_CORNERS",
]

logger = logging.getLogger(__name__)

#: Corners a board view needs to count (and for a stable pose).
MIN_CORNERS = 6
#: Board views per camera given to ``cv2.calibrateCamera``.
INTRINSIC_VIEWS = 30
#: Intrinsics come from views at most this many degrees from face-on (when there are 8).
INTRINSIC_ANGLE = 60.0
#: A camera seen in fewer board views than this gets a warning.
FEW_VIEWS = 15
#: A board view whose corners miss their own best pose by more than this RMS (pixels), and
#: by more than POSE_FIT_FACTOR times the camera's median, is left out: motion blur, a
#: rolling-shutter smear or a misread corner (sharp views of a flat board fit within 0.5 px).
POSE_FIT_PX = 2.0
POSE_FIT_FACTOR = 4.0
#: A camera whose corners reproject worse than this RMS (pixels) after the fit gets a warning.
RMS_WARN_PX = 1.0
#: When the cameras together fit the board this many times worse than each camera alone
#: (and above RMS_WARN_PX), they disagree about where the board was: frames that do not show
#: one instant (unsynchronised webcams, measured 1.8 px against 0.15-0.26 px alone on
#: caliscope's real session). Free intrinsics would absorb that (one focal length moved 11 %
#: there), so the intrinsics are kept from each camera alone.
DISAGREE_FACTOR = 3.0
#: Refined intrinsics whose focal length moved more than this fraction while the RMS fell by
#: less than REFINE_GAIN (relative) get a warning: the recording does not determine them.
REFINE_MOVE = 0.002
REFINE_GAIN = 0.05


@dataclass
class CalibrationResult:
    """Cameras and how well they fit.

    Attributes
    ----------
    cameras : list of Camera
        One per view, in the order given.
    rms : float
        RMS reprojection error over every corner used, pixels.
    per_camera_rms : dict of str to float
        RMS reprojection error per camera, pixels.
    n_views : dict of str to int
        Board views per camera (frames with at least ``MIN_CORNERS`` corners).
    n_frames : int
        Frames (board poses) in the bundle adjustment.
    warnings : list of str
        Cameras that saw the board too rarely, and the like.
    frames : numpy.ndarray
        The frames (board poses) in the bundle adjustment, ``(n_frames,)``.
    board_poses : numpy.ndarray
        Each of those frames' board pose in the world, ``(n_frames, 4, 4)``
        (board coordinates to world coordinates).
    rejected : list of tuple
        Board views left out, ``(camera, frame, reason)``.

    """

    cameras: list[Camera]
    rms: float
    per_camera_rms: dict[str, float]
    n_views: dict[str, int]
    n_frames: int
    warnings: list[str] = field(default_factory=list)
    frames: np.ndarray = field(default_factory=lambda: np.zeros(0, int))
    board_poses: np.ndarray = field(default_factory=lambda: np.zeros((0, 4, 4)))
    rejected: list[tuple[str, int, str]] = field(default_factory=list)

    def metadata(self) -> dict:
        """Return the TOML ``[metadata]`` facts of the fit."""
        return {
            "rms_reprojection_error_px": round(float(self.rms), 4),
            "per_camera_rms_px": {k: round(float(v), 4) for k, v in self.per_camera_rms.items()},
            "board_views": dict(self.n_views),
            "frames_adjusted": int(self.n_frames),
        }


def _non_degenerate(obj: np.ndarray) -> bool:
    """Whether board points span two dimensions (not all on one line)."""
    centred = obj[:, :2] - obj[:, :2].mean(0)
    return np.linalg.matrix_rank(centred, tol=1e-6 * np.abs(centred).max() + 1e-12) == 2


def _spread_subset(features: np.ndarray, n: int) -> np.ndarray:
    """Pick ``n`` rows spread over feature space (farthest-point sampling)."""
    if len(features) <= n:
        return np.arange(len(features))
    f = (features - features.mean(0)) / (features.std(0) + 1e-9)
    chosen = [int(np.argmax(np.linalg.norm(f, axis=1)))]
    dist = np.linalg.norm(f - f[chosen[0]], axis=1)
    for _ in range(n - 1):
        nxt = int(np.argmax(dist))
        chosen.append(nxt)
        dist = np.minimum(dist, np.linalg.norm(f - f[nxt], axis=1))
    return np.sort(np.array(chosen))


def _view_features(obj: np.ndarray, img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Where a board view sits, how big it is and how it is tilted (its homography)."""
    h, _ = cv2.findHomography(obj[:, :2], img, 0)
    if h is None:
        h = np.eye(3)
    h = h / h[2, 2]
    w, hgt = size
    centre = img.mean(0) / [w, hgt]
    scale = np.sqrt(abs(np.linalg.det(h[:2, :2])) + 1e-12)
    return np.array([*centre, np.log(scale), h[2, 0] * w, h[2, 1] * hgt])


def _pose_matrix(rvec: np.ndarray, tvec: np.ndarray) -> np.ndarray:
    m = np.eye(4)
    m[:3, :3] = cv2.Rodrigues(np.asarray(rvec, np.float64))[0]
    m[:3, 3] = np.ravel(tvec)
    return m


def _to_rt(m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return cv2.Rodrigues(m[:3, :3])[0].ravel(), m[:3, 3].copy()


def _mean_pose(poses: list[np.ndarray]) -> np.ndarray:
    """Robust mean of rigid transforms: chordal mean rotation, median translation."""
    rs = np.stack([p[:3, :3] for p in poses])
    u, _, vt = np.linalg.svd(rs.sum(0))
    r = u @ vt
    if np.linalg.det(r) < 0:
        u[:, -1] *= -1
        r = u @ vt
    out = np.eye(4)
    out[:3, :3] = r
    out[:3, 3] = np.median(np.stack([p[:3, 3] for p in poses]), 0)
    return out


class _BoardView(pyceres.CostFunction):
    """One camera's view of the board in one frame: its corners' reprojection residuals.

    Parameter blocks: the camera's intrinsics (``f, cx, cy, k1, k2, p1, p2, k3``
    with square pixels, or ``fx, fy, cx, cy, ...``), the camera's pose and the
    board's pose (Rodrigues vector and translation each). ``cv2.projectPoints``
    gives the pixels and their derivatives; ``cv2.composeRT`` chains them to the
    two poses, as OpenCV's own stereo calibration does.
    """

    def __init__(self, obj: np.ndarray, uv: np.ndarray, square: bool, weight: float = 1.0):
        pyceres.CostFunction.__init__(self)
        self.obj, self.uv, self.square = obj, uv.reshape(-1), square
        self.weight = float(weight)
        self.set_num_residuals(self.uv.size)
        self.set_parameter_block_sizes([8 if square else 9, 6, 6])

    def Evaluate(self, parameters, residuals, jacobians):  # noqa: N802 (Ceres' name)
        intr, cam, board = (np.asarray(p, np.float64) for p in parameters)
        fx, fy = (intr[0], intr[0]) if self.square else (intr[0], intr[1])
        cx, cy, dist = intr[-7], intr[-6], intr[-5:]
        r3, t3, *d = cv2.composeRT(board[:3], board[3:], cam[:3], cam[3:])
        k = np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])
        uv, jac = cv2.projectPoints(self.obj, r3, t3, k, dist)
        residuals[:] = self.weight * (uv.reshape(-1) - self.uv)
        if jacobians is None:
            return True
        dr3dr1, dr3dt1, dr3dr2, dr3dt2, dt3dr1, dt3dt1, dt3dr2, dt3dt2 = d
        j_r, j_t = jac[:, 0:3], jac[:, 3:6]
        j_f = jac[:, 6:8].sum(1, keepdims=True) if self.square else jac[:, 6:8]
        blocks = (
            np.hstack([j_f, jac[:, 8:10], jac[:, 10:15]]),
            j_r @ np.hstack([dr3dr2, dr3dt2]) + j_t @ np.hstack([dt3dr2, dt3dt2]),
            j_r @ np.hstack([dr3dr1, dr3dt1]) + j_t @ np.hstack([dt3dr1, dt3dt1]),
        )
        for i, block in enumerate(blocks):
            if jacobians[i] is not None:
                jacobians[i][:] = self.weight * block.ravel()
        return True


def _view_weight(board_in_cam: np.ndarray, obj: np.ndarray) -> float:
    """Weight of a board view's residuals: how face-on the board is (the cosine of its angle).

    A corner is found about ``1 / cos`` less precisely on a board seen at an
    angle (its squares look that much narrower; measured on the turntable
    render: 0.09 px RMS within 40 degrees of face-on, 0.15 px at 50-60, 0.20
    px at 60-70, 0.39 px at 70-80), so weighting each view's residuals by the
    cosine whitens them: the bundle adjustment then trusts oblique views as
    much as they deserve, no more.
    """
    ray = board_in_cam[:3, :3] @ obj.mean(0) + board_in_cam[:3, 3]
    return float(abs(board_in_cam[:3, 2] @ ray) / np.linalg.norm(ray))


def _intrinsics(obj, pos, found, frames, size, fix_k3, fix_aspect):
    """``cv2.calibrateCamera`` on a spread subset of one camera's board views."""
    feats = np.stack([_view_features(obj[found[t]], pos[t, :, found[t]], size) for t in frames])
    pick = frames[_spread_subset(feats, INTRINSIC_VIEWS)]
    objs = [obj[found[t]].astype(np.float32) for t in pick]
    imgs = [pos[t, :, found[t]].astype(np.float32) for t in pick]
    w, h = size
    k0 = np.array([[max(w, h), 0, w / 2], [0, max(w, h), h / 2], [0, 0, 1]], np.float64)
    flags = cv2.CALIB_USE_INTRINSIC_GUESS
    if fix_k3:
        flags |= cv2.CALIB_FIX_K3
    if fix_aspect:
        flags |= cv2.CALIB_FIX_ASPECT_RATIO
    _, k, dist, _, _ = cv2.calibrateCamera(objs, imgs, (w, h), k0, np.zeros(5), flags=flags)
    return k, np.ravel(dist)[:5]


def _usable_views(pos: np.ndarray, obj: np.ndarray, names: list[str], rejected: list):
    """Corners found ``(view, time, corner)`` and usable board views ``(view, time)``.

    A view is usable with ``MIN_CORNERS`` corners that do not all lie on one line;
    the others that saw some corners are added to ``rejected`` with the reason.
    """
    found = np.isfinite(pos).all(axis=2)
    counts = found.sum(-1)
    usable = counts >= MIN_CORNERS
    for c, t in zip(*np.nonzero((counts > 0) & ~usable), strict=True):
        rejected.append((names[c], int(t), f"fewer than {MIN_CORNERS} corners"))
    for c, t in zip(*np.nonzero(usable), strict=True):
        if not _non_degenerate(obj[found[c, t]]):
            usable[c, t] = False
            rejected.append((names[c], int(t), "its corners lie on one line"))
    too_few = [names[c] for c in range(len(names)) if usable[c].sum() < 4]
    if too_few:
        raise CalibrationError(
            f"camera(s) {', '.join(too_few)} saw the board in fewer than 4 frames with "
            f"{MIN_CORNERS}+ corners; record the board moving through their view"
        )
    return found, usable


def _board_poses(obj, pos, found, usable, k, dist, max_angle, why=None):
    """Return the board's pose in each usable view (IPPE), and how face-on it is (cosine).

    Views are left out (and, given ``why``, a dict, their reason recorded by
    frame) when no pose is found, the board would lie behind the camera, it is
    seen more obliquely than ``max_angle``, or its corners do not fit their own
    pose (see :data:`POSE_FIT_PX`).
    """
    centre = obj.mean(0)
    poses, cosines, fits = {}, {}, {}
    why = {} if why is None else why
    for t in np.flatnonzero(usable):
        ids = found[t]
        img = pos[t, :, ids]
        ok, rvec, tvec = cv2.solvePnP(obj[ids], img, k, dist, flags=cv2.SOLVEPNP_IPPE)
        if not ok:
            why[int(t)] = "no board pose fits its corners"
            continue
        m = _pose_matrix(rvec, tvec)
        ray = m[:3, :3] @ centre + m[:3, 3]
        if ray[2] <= 0:
            why[int(t)] = "its board pose lies behind the camera"
            continue
        cos = abs(m[:3, 2] @ ray) / np.linalg.norm(ray)
        if cos < np.cos(np.radians(max_angle)):
            why[int(t)] = f"seen more than {max_angle:g} degrees from face-on"
            continue
        uv = cv2.projectPoints(obj[ids], rvec, tvec, k, dist)[0].reshape(-1, 2)
        fits[int(t)] = float(np.sqrt(((uv - img) ** 2).sum(1).mean()))
        poses[int(t)], cosines[int(t)] = m, float(cos)
    if fits:
        limit = max(POSE_FIT_PX, POSE_FIT_FACTOR * float(np.median(list(fits.values()))))
        for t, rms in fits.items():
            if rms > limit:
                why[t] = (
                    f"its corners miss their best board pose by {rms:.1f} px "
                    "(motion blur, or a misread corner)"
                )
                del poses[t], cosines[t]
    return poses, cosines


def _camera_intrinsics(obj, pos, found, usable, size, name, opts, given=None, rejected=None):
    """Step 1 for one camera: intrinsics from spread views, refit on the good face-on ones.

    Oblique corners are less precise (measured on renders: 0.06 px RMS face-on,
    0.16 px at 50 degrees, 0.3-0.4 px beyond 60), so the intrinsics are fitted
    again on the views within ``INTRINSIC_ANGLE`` degrees of face-on, and views
    beyond ``max_angle`` are left out of everything; so are views whose corners
    do not fit one board pose under the first fit (blur, misreads), which would
    otherwise pull the second. ``given`` (a :class:`Camera`) supplies the
    intrinsics instead, and only the board poses are found.
    """
    why: dict[int, str] = {}
    if given is not None:
        k, dist = np.asarray(given.matrix, float), np.asarray(given.distortions, float)
        poses, _ = _board_poses(obj, pos, found, usable, k, dist, opts["max_angle"], why)
        frames = np.array(sorted(poses))
    else:
        frames = np.flatnonzero(usable)
        for attempt in range(2):
            why = {}
            k, dist = _intrinsics(obj, pos, found, frames, size, opts["fix_k3"], opts["fix_aspect"])
            poses, cosines = _board_poses(obj, pos, found, usable, k, dist, opts["max_angle"], why)
            if attempt == 0:
                facing = [t for t, v in cosines.items() if v >= np.cos(np.radians(INTRINSIC_ANGLE))]
                good = facing if len(facing) >= 8 else sorted(poses)
                if len(good) >= 4:
                    frames = np.array(sorted(good))
    if rejected is not None:
        rejected.extend((name, t, reason) for t, reason in sorted(why.items()))
    if len(poses) < 4:
        reasons = sorted(set(why.values()))
        raise CalibrationError(
            f"camera {name} has only {len(poses)} usable board views"
            + (f" (others left out: {'; '.join(reasons)})" if reasons else "")
            + "; record the board moving slowly through its view, facing it"
        )
    logger.info(
        "%s: %d board views (%d for the intrinsics), %d left out",
        name,
        len(poses),
        len(frames),
        len(why),
    )
    return np.array([k[0, 0], k[1, 1], k[0, 2], k[1, 2], *np.ravel(dist)[:5]]), poses


def _chain_cameras(board_in_cam: list[dict], names: list[str]) -> list[np.ndarray]:
    """Step 2: camera poses (world = camera 0) chained over a maximum spanning tree.

    Each pair of cameras that saw the board at once gets a relative pose (robust
    mean over the shared views); the tree keeps the pairs with most shared views.
    """
    n_cams = len(board_in_cam)
    shared = np.zeros((n_cams, n_cams), int)
    relative: dict[tuple[int, int], np.ndarray] = {}
    for i in range(n_cams):
        for j in range(i + 1, n_cams):
            both = sorted(set(board_in_cam[i]) & set(board_in_cam[j]))
            shared[i, j] = shared[j, i] = len(both)
            if both:  # maps camera i's frame to camera j's
                cands = [board_in_cam[j][t] @ np.linalg.inv(board_in_cam[i][t]) for t in both]
                relative[i, j] = _mean_pose(cands)
                relative[j, i] = np.linalg.inv(relative[i, j])
    weights = np.where(shared > 0, 1.0 / np.maximum(shared, 1), 0.0)
    order, parent = breadth_first_order(minimum_spanning_tree(weights), 0, directed=False)
    missing = sorted(set(range(n_cams)) - set(order.tolist()))
    if missing:
        raise CalibrationError(
            f"camera(s) {', '.join(names[c] for c in missing)} never saw the board at the "
            "same time as the others; show the board to them together with a neighbour"
        )
    cam_world = [np.eye(4) for _ in range(n_cams)]  # world (camera 0) to camera
    for c in order[1:]:
        cam_world[c] = relative[int(parent[c]), int(c)] @ cam_world[int(parent[c])]
    return cam_world


def _pick_frames(board_in_cam: list[dict], max_frames: int) -> tuple[np.ndarray, dict]:
    """Board poses for the adjustment: frames seen by more cameras first, spread in time."""
    seen_by: dict[int, list[int]] = {}
    for c, poses in enumerate(board_in_cam):
        for t in poses:
            seen_by.setdefault(t, []).append(c)
    frames = np.array(sorted(seen_by))
    counts = np.array([len(seen_by[t]) for t in frames])
    if len(frames) > max_frames:
        keep: list[int] = []
        for k in sorted(set(counts.tolist()), reverse=True):
            group = frames[counts == k]
            room = max_frames - len(keep)
            if room <= 0:
                break
            take = np.linspace(0, len(group) - 1, min(room, len(group))).round().astype(int)
            keep.extend(group[np.unique(take)].tolist())
        frames = np.array(sorted(keep))
    return frames, seen_by


def _bundle_adjust(pos, found, obj, intr, cam_world, board_in_cam, frames, seen_by, opts):
    """Step 3: refine every camera and board pose with Ceres (Schur complement, Cauchy loss).

    Each view's residuals are weighted by how face-on the board is (see
    :func:`_view_weight`), so the loss scale is in pixels of a face-on view;
    the RMS errors returned are plain pixels. Ceres eliminates the board poses
    (the Schur complement), so each step is a small dense solve over the
    cameras: seconds and little memory, however many board poses. Camera 0's
    pose is the gauge; ``k3`` and the aspect ratio stay fixed unless asked.
    """
    n_cams = len(cam_world)
    square = opts["fix_aspect"]
    # fx, fy, cx, cy, k1, k2, p1, p2, k3 -> (f,) cx, cy, k1, k2, p1, p2, k3
    intr_blocks = [np.delete(row, 1).copy() if square else row.copy() for row in intr]
    cam_blocks = [np.concatenate(_to_rt(m)) for m in cam_world]
    frame_blocks = []
    for t in frames:
        c = max(seen_by[int(t)], key=lambda c: found[c, t].sum())
        world_board = np.linalg.inv(cam_world[c]) @ board_in_cam[c][int(t)]
        frame_blocks.append(np.concatenate(_to_rt(world_board)))
    problem = pyceres.Problem()
    loss = pyceres.CauchyLoss(opts["loss_scale"])
    views = []
    for f, t in enumerate(frames):
        for c in seen_by[int(t)]:
            blocks = [intr_blocks[c], cam_blocks[c], frame_blocks[f]]
            # One residual block per corner: the robust loss weighs corners, not views.
            weight = _view_weight(board_in_cam[c][int(t)], obj)
            for j in np.flatnonzero(found[c, t]):
                view = _BoardView(obj[[j]], pos[c, t][:, [j]].T, square, weight)
                views.append((c, view, blocks))
                problem.add_residual_block(view, loss, blocks)
    problem.set_parameter_block_constant(cam_blocks[0])
    for c, block in enumerate(intr_blocks):
        if c in opts["fixed"]:
            problem.set_parameter_block_constant(block)
        elif opts["fix_k3"]:
            problem.set_manifold(block, pyceres.SubsetManifold(len(block), [len(block) - 1]))
    options = pyceres.SolverOptions()
    options.linear_solver_type = pyceres.LinearSolverType.DENSE_SCHUR
    options.num_threads = 1
    options.max_num_iterations = 100
    options.function_tolerance = options.parameter_tolerance = 1e-12
    options.gradient_tolerance = 1e-12
    options.minimizer_progress_to_stdout = False
    options.logging_type = pyceres.LoggingType.SILENT
    summary = pyceres.SolverSummary()
    pyceres.solve(options, problem, summary)
    sq_by_cam = [[] for _ in range(n_cams)]
    for c, view, blocks in views:  # the blocks now hold the solution
        residuals = np.zeros(view.num_residuals())
        view.Evaluate(blocks, residuals, None)
        sq_by_cam[c].append((residuals.reshape(-1, 2) ** 2).sum(1) / view.weight**2)
    per_cam = [float(np.sqrt(np.concatenate(s).mean())) for s in sq_by_cam]
    rms = float(np.sqrt(np.concatenate([np.concatenate(s) for s in sq_by_cam]).mean()))
    logger.info(
        "bundle adjustment: %d board views, RMS %.3f px, %d iterations (%s)",
        len(views),
        rms,
        summary.num_successful_steps + summary.num_unsuccessful_steps,
        summary.termination_type,
    )
    full_intr = np.stack(
        [np.insert(b, 1, b[0]) if square else b for b in intr_blocks]
    )  # back to fx, fy, cx, cy, ...
    return full_intr, np.stack(cam_blocks), np.stack(frame_blocks), rms, per_cam


def _cameras(names, sizes, intr, cam_poses, world: np.ndarray) -> list[Camera]:
    """Cameras from adjusted parameters, in the world ``world`` maps into the old one."""
    cameras = []
    for c, name in enumerate(names):
        rvec, tvec = _to_rt(_pose_matrix(cam_poses[c, :3], cam_poses[c, 3:]) @ world)
        fx, fy, cx, cy = intr[c, :4]
        matrix = np.array([[fx, 0, cx], [0, fy, cy], [0, 0, 1]])
        size = tuple(int(v) for v in sizes[c])
        cameras.append(Camera(name, size, matrix, intr[c, 4:9].copy(), rvec, tvec))
    return cameras


def calibrate_cameras(
    position: np.ndarray,
    names: list[str],
    sizes: list[tuple[int, int]],
    object_points: np.ndarray,
    *,
    origin: str = "camera",
    max_frames: int = 150,
    loss_scale: float = 0.3,
    fix_k3: bool = True,
    fix_aspect: bool = True,
    max_angle: float = 75.0,
    intrinsics: dict[str, Camera] | None = None,
    refine_intrinsics: bool = False,
) -> CalibrationResult:
    """Calibrate cameras from board corners tracked in every view.

    Parameters
    ----------
    position : numpy.ndarray
        Corner pixels shaped ``(view, time, 2, corner)``, NaN where not found
        (the ``charuco`` tracker's ``position`` for one individual).
    names : list of str
        View names, one per view.
    sizes : list of tuple of int
        ``(width, height)`` per view.
    object_points : numpy.ndarray
        ``(corner, 3)`` corner coordinates on the board, in the world unit.
    origin : {"camera", "board"}
        The world frame: camera 0's, or the board's in the frame that the most
        cameras saw (x and y along its edges, z its normal).
    max_frames : int
        Most board poses in the bundle adjustment (spread over the recording,
        frames seen by more cameras first).
    loss_scale : float
        Pixels beyond which the Cauchy loss discounts a residual.
    fix_k3 : bool
        Keep the sixth-order radial term ``k3`` at 0 (it is only determined by
        board views reaching the image corners; free, it overfits).
    fix_aspect : bool
        Keep ``fy = fx`` (square pixels).
    max_angle : float
        Board views more oblique than this (degrees between the board's normal
        and the line of sight) are left out.
    intrinsics : dict of str to Camera, optional
        Intrinsics fitted apart (see :func:`calibrate_intrinsics`), by view
        name: those cameras' intrinsics are held fixed and only their poses
        are fitted. Views not in it get intrinsics from this recording.
    refine_intrinsics : bool
        Start from ``intrinsics`` but let the bundle adjustment refine them.

    Returns
    -------
    CalibrationResult
        Cameras, errors and warnings.

    Raises
    ------
    CalibrationError
        If a camera has too few board views, or some cameras share no views
        with the others (the message names them).

    """
    if origin not in ("camera", "board"):
        raise CalibrationError(f"origin must be 'camera' or 'board', not {origin!r}")
    pos = np.asarray(position, np.float64)
    obj = np.asarray(object_points, np.float64)
    given = {n: c for n, c in (intrinsics or {}).items() if n in names}
    square = all(abs(c.matrix[0, 0] - c.matrix[1, 1]) < 1e-9 for c in given.values())
    opts = {
        "fix_k3": fix_k3,
        "fix_aspect": fix_aspect and square,
        "max_angle": max_angle,
        "loss_scale": loss_scale,
        "fixed": set() if refine_intrinsics else {names.index(n) for n in given},
    }
    rejected: list[tuple[str, int, str]] = []
    found, usable = _usable_views(pos, obj, names, rejected)
    intr, board_in_cam, alone = [], [], []
    for c, name in enumerate(names):
        k, poses = _camera_intrinsics(
            obj, pos[c], found[c], usable[c], sizes[c], name, opts, given.get(name), rejected
        )
        intr.append(k)
        board_in_cam.append(poses)
        alone.append(_pose_rms(obj, pos[c], found[c], poses, k))
    n_views = {name: len(poses) for name, poses in zip(names, board_in_cam, strict=True)}
    warnings = [
        f"{name} saw the board in only {n} usable frames (fewer than {FEW_VIEWS}); "
        "its calibration may be poor"
        for name, n in n_views.items()
        if n < FEW_VIEWS
    ]
    cam_world = _chain_cameras(board_in_cam, names)
    frames, seen_by = _pick_frames(board_in_cam, max_frames)
    args = (pos, found, obj, np.stack(intr), cam_world, board_in_cam, frames, seen_by)
    intr, cam_poses, frame_poses, rms, per_cam = _bundle_adjust(*args, opts)
    if refine_intrinsics and given:
        warnings.extend(_refine_check(args, opts, given, names, intr, rms))
    worst = max(alone)
    disagree = rms > max(RMS_WARN_PX, DISAGREE_FACTOR * worst)
    if disagree:
        together, kept = rms, ""
        if len(opts["fixed"]) < len(names):
            fixed = {**opts, "fixed": set(range(len(names)))}
            intr, cam_poses, frame_poses, rms, per_cam = _bundle_adjust(*args, fixed)
            kept = "the intrinsics were kept from each camera alone; "
        warnings.append(
            f"the cameras together fit the board with {together:.2f} px RMS while each alone "
            f"fits it within {worst:.2f} px: their frames do not show the same instants "
            f"(unsynchronised cameras, or the board moved too fast for the shutter); {kept}"
            "synchronise the videos, or move the board slowly"
        )
    world = np.eye(4)
    if origin == "board":  # the board in the frame the most cameras saw, most corners
        best = int(np.argmax([len(seen_by[int(t)]) * 1000 + found[:, t].sum() for t in frames]))
        world = _pose_matrix(frame_poses[best, :3], frame_poses[best, 3:])  # board -> old world
    cameras = _cameras(names, sizes, intr, cam_poses, world)
    per_camera_rms = dict(zip(names, per_cam, strict=True))
    for name, value in per_camera_rms.items():
        if value > RMS_WARN_PX and not disagree:
            warnings.append(_rms_warning(name, value, name in given and not refine_intrinsics))
    to_world = np.linalg.inv(world)
    boards = np.stack([to_world @ _pose_matrix(p[:3], p[3:]) for p in frame_poses])
    return CalibrationResult(
        cameras, rms, per_camera_rms, n_views, len(frames), warnings, frames, boards, rejected
    )


def _refine_check(args, opts, given, names, intr, rms) -> list[str]:
    """Say when refining given intrinsics moved a focal length for next to no gain.

    A recording that does not determine the intrinsics (the board only far away)
    lets the bundle adjustment trade focal length against distance: the refined
    fit then throws away the intrinsics fitted apart (measured on a far-board
    render: focal moved 0.2-0.6 %, RMS 0.2825 -> 0.2819 px, centres 9-23 mm off
    instead of 1-3 mm).
    """
    held = _bundle_adjust(*args, {**opts, "fixed": {names.index(n) for n in given}})[3]
    moved = {n: abs(intr[names.index(n), 0] / given[n].matrix[0, 0] - 1) for n in given}
    worst = max(moved, key=moved.get)
    gain = (held - rms) / max(held, 1e-12)
    if moved[worst] > REFINE_MOVE and gain < REFINE_GAIN:
        return [
            f"refining the given intrinsics moved {worst}'s focal length by "
            f"{100 * moved[worst]:.2f} % for an RMS of {rms:.3f} px against {held:.3f} px held "
            "fixed: this recording does not determine the intrinsics; drop --refine-intrinsics"
        ]
    return []


def _pose_rms(obj, pos, found, poses, k) -> float:
    """RMS reprojection error of one camera's board views, each under its own pose."""
    matrix = np.array([[k[0], 0.0, k[2]], [0.0, k[1], k[3]], [0.0, 0.0, 1.0]])
    dist = np.asarray(k[4:9], float)
    sq = []
    for t, m in poses.items():
        ids = found[t]
        rvec, tvec = _to_rt(m)
        uv = cv2.projectPoints(obj[ids], rvec, tvec, matrix, dist)[0].reshape(-1, 2)
        sq.append(((uv - pos[t, :, ids]) ** 2).sum(1))
    return float(np.sqrt(np.concatenate(sq).mean())) if sq else float("nan")


def _rms_warning(name: str, rms: float, fixed: bool | None) -> str:
    """Return the warning for a camera whose corners reproject poorly, with what to record."""
    if fixed:
        fix = (
            "its intrinsics were held fixed: check they were fitted for this camera at this "
            "resolution, or add --refine-intrinsics"
        )
    else:
        fix = (
            "record more of the board close to that camera, filling its corners and tilted "
            "towards and away from it"
        )
        if fixed is False:
            fix += ", or fit its intrinsics apart (calibrate intrinsics)"
    return f"{name}: corners reproject with {rms:.2f} px RMS (above {RMS_WARN_PX:g} px); {fix}"


@dataclass
class IntrinsicsResult:
    """One camera's intrinsics, fitted apart from the others.

    Attributes
    ----------
    camera : Camera
        The intrinsics (matrix, distortions) and size; its pose is the identity.
    rms : float
        RMS reprojection error of the board views kept, pixels.
    n_views : int
        Board views kept.
    rejected : list of tuple
        Board views left out, ``(camera, frame, reason)``.
    warnings : list of str
        A poor fit or too few views, with what to record.

    """

    camera: Camera
    rms: float
    n_views: int
    rejected: list[tuple[str, int, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def calibrate_intrinsics(
    position: np.ndarray,
    name: str,
    size: tuple[int, int],
    object_points: np.ndarray,
    *,
    fix_k3: bool = True,
    fix_aspect: bool = True,
    max_angle: float = 75.0,
) -> IntrinsicsResult:
    """Fit one camera's intrinsics from its own board views.

    The views given to ``cv2.calibrateCamera`` are chosen to spread over where
    the board sits in the image, how near it is and how it is tilted, then the
    fit is repeated on the views that fit their own pose and face the camera
    (see :func:`calibrate_cameras`, step 1). Cameras of one model can pool
    their views: concatenate their positions along time.

    Parameters
    ----------
    position : numpy.ndarray
        Corner pixels ``(time, 2, corner)``, NaN where not found.
    name : str
        The camera's name.
    size : tuple of int
        ``(width, height)``.
    object_points : numpy.ndarray
        ``(corner, 3)`` corner coordinates on the board.
    fix_k3, fix_aspect, max_angle
        As :func:`calibrate_cameras` takes them.

    Returns
    -------
    IntrinsicsResult
        The camera and how well it fits.

    Raises
    ------
    CalibrationError
        If the camera has too few usable board views.

    """
    pos = np.asarray(position, np.float64)[None]
    obj = np.asarray(object_points, np.float64)
    opts = {"fix_k3": fix_k3, "fix_aspect": fix_aspect, "max_angle": max_angle}
    rejected: list[tuple[str, int, str]] = []
    found, usable = _usable_views(pos, obj, [name], rejected)
    k, poses = _camera_intrinsics(
        obj, pos[0], found[0], usable[0], size, name, opts, None, rejected
    )
    matrix = np.array([[k[0], 0.0, k[2]], [0.0, k[1], k[3]], [0.0, 0.0, 1.0]])
    dist = np.asarray(k[4:9], float)
    rms = _pose_rms(obj, pos[0], found[0], poses, k)
    camera = Camera(name, tuple(int(v) for v in size), matrix, dist, np.zeros(3), np.zeros(3))
    warnings = []
    if len(poses) < FEW_VIEWS:
        warnings.append(
            f"{name}: only {len(poses)} usable board views (fewer than {FEW_VIEWS}); record "
            "the board in more places and tilts"
        )
    if rms > RMS_WARN_PX:
        warnings.append(_rms_warning(name, rms, None))
    return IntrinsicsResult(camera, rms, len(poses), rejected, warnings)
