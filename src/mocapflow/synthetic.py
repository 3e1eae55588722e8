"""Synthetic recordings: a known 3-D scene rendered through known cameras.

Two scenes:

``markers``
    Coloured spheres (one hue each, see :func:`mocapflow.trackers.palette`)
    moving smoothly through a volume about 2 m across. Each marker is drawn
    as a disc centred on the projection of its centre, anti-aliased by exact
    supersampled coverage, so the projected centre is the 2-D ground truth.
``charuco``
    A ChArUco board turning and drifting through the volume, as a
    calibration recording shows it. The board's texture is ray-cast through
    each camera's distortion model, supersampled 2x. Its ``turntable`` scene
    is harder: a small board (80 mm squares) near the centre of a ring of
    cameras 2.5 m away, turning once about the vertical, so that each camera
    sees it face-on only part of the time, one or two cameras at once.

World units are millimetres; z points up. Cameras stand on a circle round the
volume with jittered intrinsics, distortion and height, all drawn from a seeded
generator. Beside the videos (``synchronized_videos/cam1.mp4`` ...) the
generator writes ``ground_truth.zarr`` (movement's 3-D schema, plus the
projected 2-D points and their visibility) and the true cameras in
``true_calibration.toml`` (so that ``mocapflow calibrate`` never replaces them).

The marker paths are a function of continuous time, so cameras need not film
together: :func:`synthesize`'s ``starts``, ``rates`` and ``jitter`` give each
camera the scene time of its first frame, its own frame rate, and irregular
timestamps (a variable-frame-rate video). The ground truth is then at the
reference camera's frames and records each camera's true ``sync_offset``.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import xarray as xr

from .calib import Camera, look_at, write_toml
from .errors import UsageError
from .trackers import INDIVIDUAL, Charuco, palette
from .video import CODECS, VideoWriter

__all__ = [
    "KINDS",
    "SCENES",
    "TRUE_CALIBRATION",
    "SyntheticRecording",
    "make_cameras",
    "synthesize",
]

logger = logging.getLogger(__name__)

KINDS = ("markers", "charuco")
#: Scenes of the ``charuco`` kind: the board sweeping the volume, or turning on the spot.
SCENES = ("sweep", "turntable")
#: Frames and size of each scene unless given (``sweep`` also stands for ``markers``).
SCENE_DEFAULTS = {"sweep": (120, (640, 480)), "turntable": (150, (960, 720))}
#: The true cameras of a synthetic recording, beside its videos.
TRUE_CALIBRATION = "true_calibration.toml"
MARKER_RADIUS_MM = 30.0
CHARUCO_SQUARE_MM = 120.0
#: The ``turntable`` scene: its board's squares and the radius of its ring of cameras, mm.
TURNTABLE_SQUARE_MM = 80.0
TURNTABLE_RADIUS_MM = 2500.0
TURNTABLE_DRIFT_MM = 150.0
#: Focal length of the ``turntable`` cameras in image widths (a 42 degree field of view).
TURNTABLE_FOCAL = 1.3


@dataclass
class SyntheticRecording:
    """What :func:`synthesize` wrote.

    Attributes
    ----------
    path : pathlib.Path
        The recording folder.
    videos : list of pathlib.Path
        One video per camera.
    cameras : list of Camera
        The true cameras.
    ground_truth : xarray.Dataset
        ``position (time, space, keypoint, individual)`` in mm, plus
        ``position_2d (view, time, space, keypoint, individual)`` and ``visible``
        (``frame`` in place of ``time`` for cameras timed apart: see :func:`synthesize`).

    """

    path: Path
    videos: list[Path]
    cameras: list[Camera]
    ground_truth: xr.Dataset


def make_cameras(
    n: int,
    size: tuple[int, int],
    rng: np.random.Generator,
    radius: float = 3000.0,
    focal: float = 0.85,
) -> list[Camera]:
    """Place ``n`` cameras on a circle round the volume, looking at its centre.

    Parameters
    ----------
    n : int
        Number of cameras.
    size : tuple of int
        ``(width, height)``.
    rng : numpy.random.Generator
        Source of the jitter.
    radius : float
        Distance from the volume's axis, mm.
    focal : float
        Focal length in image widths (jittered by up to 5 %); 0.85 is a
        horizontal field of view of 61 degrees.

    Returns
    -------
    list of Camera
        Cameras named ``cam1`` ... ``camN``.

    """
    w, h = size
    cams = []
    for i in range(n):
        angle = 2 * np.pi * i / n + rng.uniform(-0.15, 0.15)
        eye = np.array(
            [radius * np.cos(angle), radius * np.sin(angle), rng.uniform(1300.0, 2000.0)]
        )
        target = np.array([0.0, 0.0, 1000.0]) + rng.uniform(-100, 100, 3)
        rot = look_at(eye, target)
        f = focal * w * rng.uniform(0.95, 1.05)
        k = np.array(
            [[f, 0, w / 2 + rng.uniform(-8, 8)], [0, f, h / 2 + rng.uniform(-8, 8)], [0, 0, 1]]
        )
        dist = np.array(
            [
                rng.uniform(-0.12, -0.04),
                rng.uniform(0.0, 0.05),
                rng.uniform(-1e-3, 1e-3),
                rng.uniform(-1e-3, 1e-3),
                0.0,
            ]
        )
        rvec = cv2.Rodrigues(rot)[0].ravel()
        tvec = -rot @ eye
        cams.append(Camera(f"cam{i + 1}", (w, h), k, dist, rvec, tvec))
    return cams


class _Paths:
    """Smooth random trajectories inside the volume, a function of continuous time.

    Each coordinate of each point is a centre plus a weighted sum of three
    sines of random frequency (0.05-0.4 Hz) and phase, all drawn once from
    ``rng`` at construction: the same seed gives the same paths at any times.
    """

    CENTRE = np.array([0.0, 0.0, 1000.0])
    AMPLITUDE = np.array([550.0, 550.0, 450.0])

    def __init__(self, rng: np.random.Generator, n_points: int):
        self.n_points = n_points
        self.waves = []  # (freqs, phases, weights) per point, then per axis
        for _ in range(n_points):
            for _ in range(3):
                freqs = rng.uniform(0.05, 0.4, 3)
                phases = rng.uniform(0, 2 * np.pi, 3)
                weights = rng.dirichlet(np.ones(3))
                self.waves.append((freqs, phases, weights))

    def __call__(self, seconds: np.ndarray) -> np.ndarray:
        """Return the points at scene times ``seconds``: ``(time, 3, n_points)`` mm."""
        t = np.asarray(seconds, np.float64)[:, None]
        out = np.empty((len(t), 3, self.n_points))
        for i, (freqs, phases, weights) in enumerate(self.waves):
            p, axis = divmod(i, 3)
            wave = (weights * np.sin(2 * np.pi * freqs * t + phases)).sum(axis=1)
            out[:, axis, p] = self.CENTRE[axis] + self.AMPLITUDE[axis] * wave
        return out


def _smooth_paths(rng: np.random.Generator, n_points: int, n_frames: int, fps: float) -> np.ndarray:
    """Smooth random trajectories at frames ``0..n_frames-1``: ``(time, 3, n_points)`` mm."""
    return _Paths(rng, n_points)(np.arange(n_frames) / fps)


def _background(size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """Draw a grey (chroma-free) background with a vertical gradient and fixed texture."""
    w, h = size
    grad = np.linspace(70, 130, h)[:, None] + rng.normal(0, 6, (h, w))
    grey = np.clip(grad, 0, 255).astype(np.uint8)
    grey = cv2.GaussianBlur(grey, (0, 0), 1.2)
    return cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR)


def _disc_patch(cx: float, cy: float, r: float, ss: int = 8) -> tuple[int, int, np.ndarray]:
    """Exact-ish coverage of a disc by supersampling: top-left pixel and coverage patch."""
    x0, y0 = int(np.floor(cx - r - 1)), int(np.floor(cy - r - 1))
    x1, y1 = int(np.ceil(cx + r + 1)), int(np.ceil(cy + r + 1))
    ny, nx = y1 - y0 + 1, x1 - x0 + 1
    # Pixel (i, j) covers [j - 0.5, j + 0.5); sample ss x ss points inside it.
    offs = (np.arange(ss) + 0.5) / ss - 0.5
    xs = (x0 + np.arange(nx)[:, None] + offs[None, :]).ravel()
    ys = (y0 + np.arange(ny)[:, None] + offs[None, :]).ravel()
    inside = ((xs[None, :] - cx) ** 2 + (ys[:, None] - cy) ** 2) <= r * r
    cover = inside.reshape(ny, ss, nx, ss).mean(axis=(1, 3))
    return x0, y0, cover


def _render_markers(
    bg: np.ndarray, cam: Camera, points: np.ndarray, colours: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Render one frame: returns the image, projected centres ``(2, K)`` and visibility ``(K,)``."""
    img = bg.astype(np.float32)
    h, w = img.shape[:2]
    depth = cam.to_camera(points.T)[:, 2]
    uv = cam.project(points.T)
    f = float(cam.matrix[0, 0])
    radii = f * MARKER_RADIUS_MM / np.maximum(depth, 1.0)
    visible = (depth > 1.0) & (uv[:, 0] - radii > 1) & (uv[:, 1] - radii > 1)
    visible &= (uv[:, 0] + radii < w - 2) & (uv[:, 1] + radii < h - 2)
    for k in np.argsort(-depth):  # far first, so near markers occlude
        if depth[k] <= 1.0:
            continue
        cx, cy = uv[k]
        if not (-radii[k] < cx < w + radii[k] and -radii[k] < cy < h + radii[k]):
            continue
        x0, y0, cover = _disc_patch(cx, cy, radii[k])
        ya, xa = max(y0, 0), max(x0, 0)
        yb, xb = min(y0 + cover.shape[0], h), min(x0 + cover.shape[1], w)
        a = cover[ya - y0 : yb - y0, xa - x0 : xb - x0, None]
        img[ya:yb, xa:xb] = img[ya:yb, xa:xb] * (1 - a) + colours[k].astype(np.float32) * a
    for k in range(len(depth)):  # occluded by a nearer marker (with a 2 px guard)
        for m in range(len(depth)):
            if m != k and depth[m] < depth[k]:
                if np.hypot(*(uv[k] - uv[m])) < radii[k] + radii[m] + 2:
                    visible[k] = False
    return np.clip(np.round(img), 0, 255).astype(np.uint8), uv.T, visible


class _BoardRenderer:
    """Ray-casts a ChArUco board texture through one camera, supersampled 2x."""

    SS = 2

    def __init__(self, cam: Camera, texture: np.ndarray, board_mm: tuple[float, float]):
        w, h = cam.size
        ss = self.SS
        xs = (np.arange(w * ss) + 0.5) / ss - 0.5
        ys = (np.arange(h * ss) + 0.5) / ss - 0.5
        grid = np.stack(np.meshgrid(xs, ys), -1).reshape(-1, 1, 2)
        criteria = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 40, 1e-9)
        norm = cv2.undistortPointsIter(grid, cam.matrix, cam.distortions, None, None, criteria)
        self.rays = np.concatenate([norm.reshape(-1, 2), np.ones((len(grid), 1))], 1).reshape(
            h * ss, w * ss, 3
        )
        self.cam = cam
        self.texture = texture
        self.board_mm = board_mm
        self.scale = texture.shape[1] / board_mm[0]  # texture px per mm

    def render(self, bg: np.ndarray, origin: np.ndarray, rot: np.ndarray) -> np.ndarray:
        """Draw the board whose corner is ``origin`` with axes ``rot`` (board to world)."""
        r_cam = self.cam.rotation_matrix
        p0 = r_cam @ origin + self.cam.translation
        u, v, n = (r_cam @ rot[:, i] for i in range(3))
        out = bg.copy()
        if float(p0 @ n) <= 0:  # seen from behind
            return out
        bw, bh = self.board_mm
        outline = origin[:, None] + rot[:, :2] @ np.array([[0, bw, bw, 0], [0, 0, bh, bh]])
        if (self.cam.to_camera(outline.T)[:, 2] <= 1).any():
            return out
        uv = self.cam.project(outline.T)
        w, h = self.cam.size
        x0, y0 = np.clip(np.floor(uv.min(0)).astype(int) - 3, 0, [w, h])
        x1, y1 = np.clip(np.ceil(uv.max(0)).astype(int) + 4, 0, [w, h])
        if x1 <= x0 or y1 <= y0:
            return out
        ss = self.SS
        rays = self.rays[y0 * ss : y1 * ss, x0 * ss : x1 * ss]
        with np.errstate(divide="ignore", invalid="ignore"):
            s = (p0 @ n) / (rays @ n)
            hit = rays * s[..., None] - p0
        mx = ((hit @ u) * self.scale - 0.5).astype(np.float32)
        my = ((hit @ v) * self.scale - 0.5).astype(np.float32)
        mx[~(s > 0)] = -1e6
        region = out[y0:y1, x0:x1]
        big = cv2.resize(region, None, fx=ss, fy=ss, interpolation=cv2.INTER_NEAREST)
        cv2.remap(
            self.texture, mx, my, cv2.INTER_LINEAR, dst=big, borderMode=cv2.BORDER_TRANSPARENT
        )
        out[y0:y1, x0:x1] = cv2.resize(big, (x1 - x0, y1 - y0), interpolation=cv2.INTER_AREA)
        return out


def _board_poses(rng: np.random.Generator, n_frames: int, fps: float, board_mm) -> list:
    """Board poses: origin and rotation (board x, y, normal as columns) per frame."""
    # The board sweeps most of the volume (closer to some cameras, farther from
    # others) and tilts well out of the vertical, as a good calibration take does.
    centres = _smooth_paths(rng, 1, n_frames, fps)[:, :, 0] * np.array([1.0, 1.0, 0.8])
    centres[:, 2] += 100.0
    turns = rng.uniform(0.8, 1.2) * 2 * np.pi
    phase = rng.uniform(0, 2 * np.pi)
    poses = []
    for i in range(n_frames):
        yaw = phase + turns * i / max(n_frames - 1, 1)
        tilt = 0.6 * np.sin(2 * np.pi * 0.3 * i / fps + phase)
        roll = 0.5 * np.sin(2 * np.pi * 0.17 * i / fps)
        # Board faces outwards along (cos yaw, sin yaw), tilted and rolled.
        normal_out = np.array(
            [np.cos(yaw) * np.cos(tilt), np.sin(yaw) * np.cos(tilt), np.sin(tilt)]
        )
        z = -normal_out  # board z points into the board, away from the viewer
        up = np.array([0.0, 0.0, 1.0])
        x = np.cross(up, normal_out)
        x /= np.linalg.norm(x)
        y = np.cross(z, x)
        rot_roll = cv2.Rodrigues(z * roll)[0]
        x, y = rot_roll @ x, rot_roll @ y
        rot = np.stack([x, y, z], 1)
        origin = centres[i] - rot @ np.array([board_mm[0] / 2, board_mm[1] / 2, 0.0])
        poses.append((origin, rot))
    return poses


def _turntable_poses(rng: np.random.Generator, n_frames: int, fps: float, board_mm) -> list:
    """Board poses of the ``turntable`` scene: one turn about the vertical near the centre.

    The board, held upright at about camera height, turns once (a random
    start) while nodding up to 20 degrees, rocking a little about its normal
    and drifting within 15 cm of the centre: each camera of the ring sees its
    face for under half the turn, and face-on (within 45 degrees) for about
    a quarter, one or two cameras at a time.
    """
    phase = rng.uniform(0, 2 * np.pi)
    nod_f, nod_p = rng.uniform(0.3, 0.5), rng.uniform(0, 2 * np.pi)
    roll_f, roll_p = rng.uniform(0.2, 0.4), rng.uniform(0, 2 * np.pi)
    drift_p = rng.uniform(0, 2 * np.pi, 3)
    poses = []
    for i in range(n_frames):
        s = i / max(n_frames - 1, 1)  # 0 .. 1 over the turn
        yaw = phase + 2 * np.pi * s
        tilt = np.radians(20.0) * np.sin(2 * np.pi * nod_f * i / fps + nod_p)
        roll = np.radians(10.0) * np.sin(2 * np.pi * roll_f * i / fps + roll_p)
        centre = np.array(
            [
                TURNTABLE_DRIFT_MM * np.sin(2 * np.pi * s + drift_p[0]),
                TURNTABLE_DRIFT_MM * np.sin(2 * np.pi * s + drift_p[1]),
                1100.0 + 100.0 * np.sin(4 * np.pi * s + drift_p[2]),
            ]
        )
        normal_out = np.array(
            [np.cos(yaw) * np.cos(tilt), np.sin(yaw) * np.cos(tilt), np.sin(tilt)]
        )
        z = -normal_out
        x = np.cross([0.0, 0.0, 1.0], normal_out)
        x /= np.linalg.norm(x)
        y = np.cross(z, x)
        rot_roll = cv2.Rodrigues(z * roll)[0]
        rot = np.stack([rot_roll @ x, rot_roll @ y, z], 1)
        poses.append((centre - rot @ np.array([board_mm[0] / 2, board_mm[1] / 2, 0.0]), rot))
    return poses


@dataclass
class _Scene:
    """What the cameras film: 3-D points over time, their names, and how to draw them."""

    points: np.ndarray  # (time, 3, keypoint), mm
    keypoints: list[str]
    attrs: dict
    colours: np.ndarray | None = None  # markers
    texture: np.ndarray | None = None  # charuco
    board_mm: tuple[float, float] | None = None
    poses: list | None = None
    paths: _Paths | None = None  # markers: the points at any scene time


def _scene(
    kind: str,
    rng: np.random.Generator,
    frames: int,
    fps: float,
    n_markers: int,
    scene: str = "sweep",
) -> _Scene:
    """Return the scene of ``kind``: marker paths, or a board's moving corners."""
    if kind == "markers":
        _, colours = palette(n_markers)
        paths = _Paths(rng, n_markers)
        return _Scene(
            paths(np.arange(frames) / fps),
            [f"marker{i}" for i in range(n_markers)],
            {"n_markers": n_markers, "marker_radius_mm": MARKER_RADIUS_MM},
            colours=colours,
            paths=paths,
        )
    square = TURNTABLE_SQUARE_MM if scene == "turntable" else CHARUCO_SQUARE_MM
    tracker = Charuco(square_length=square)
    board = tracker.board()
    sx, sy = tracker.squares_x, tracker.squares_y
    board_mm = (sx * square, sy * square)
    px_per_square = 80
    texture = board.generateImage((sx * px_per_square, sy * px_per_square), marginSize=0)
    corners = np.asarray(board.getChessboardCorners(), float)  # (N, 3) in mm
    if scene == "turntable":
        poses = _turntable_poses(rng, frames, fps, board_mm)
    else:
        poses = _board_poses(rng, frames, fps, board_mm)
    return _Scene(
        np.stack([(rot @ corners.T) + origin[:, None] for origin, rot in poses]),
        [str(i) for i in range(len(corners))],
        {"board": tracker.params()},
        texture=cv2.cvtColor(texture, cv2.COLOR_GRAY2BGR),
        board_mm=board_mm,
        poses=poses,
    )


def _render(
    scene: _Scene, cam, renderer, bg, t: int, size
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return camera ``cam``'s frame ``t``: the image, projected points, which are visible."""
    if scene.colours is not None:
        return _render_markers(bg, cam, scene.points[t], scene.colours)
    origin, rot = scene.poses[t]
    img = renderer.render(bg, origin, rot)
    uv = cam.project(scene.points[t].T).T
    depth = cam.to_camera(scene.points[t].T)[:, 2]
    facing = float((cam.rotation_matrix @ rot[:, 2]) @ [0, 0, 1]) > 0.2
    vis = facing & (depth > 0) & (uv[0] > 2) & (uv[1] > 2)
    vis &= (uv[0] < size[0] - 3) & (uv[1] < size[1] - 3)
    return img, uv, vis


def _timed_truth(
    points: np.ndarray, keypoints, cams, uv_all, vis_all, attrs, timing: _Timing
) -> xr.Dataset:
    """Return the ground truth of cameras with their own timing.

    ``position`` is at the reference camera's (camera 0's) frames; the 2-D truth
    is per camera and frame (``frame``), beside each frame's own time.
    """
    n_frames = uv_all.shape[1]
    frame_time = np.full((len(cams), n_frames), np.nan)
    for c, t in enumerate(timing.times):
        frame_time[c, : len(t)] = t
    ds = _truth(points, keypoints, cams, uv_all, vis_all, attrs, frame_dim="frame")
    time_attrs = {"description": "the frame's own time in seconds, from the camera's first frame"}
    return ds.assign_coords(
        frame=np.arange(n_frames),
        frame_time=(("view", "frame"), frame_time, time_attrs),
        start_s=(
            "view",
            timing.start_s,
            {"description": "scene time of the camera's first frame, seconds"},
        ),
        sync_offset=(
            "view",
            timing.offsets(),
            {"description": "the true sync_offset: frames of the reference camera"},
        ),
        rate=("view", timing.rates, {"description": "nominal frame rate, frames per second"}),
    )


def _truth(
    points: np.ndarray, keypoints, cams, uv_all, vis_all, attrs, frame_dim: str = "time"
) -> xr.Dataset:
    """Return the ground truth in movement's 3-D schema, with the projected 2-D truth."""
    frames = points.shape[0]
    return xr.Dataset(
        {
            "position": (
                ("time", "space", "keypoint", "individual"),
                points[..., None].astype(np.float64),
                {"units": "mm"},
            ),
            "position_2d": (
                ("view", frame_dim, "space_2d", "keypoint", "individual"),
                uv_all[..., None],
                {"units": "pixels"},
            ),
            "visible": (("view", frame_dim, "keypoint", "individual"), vis_all[..., None]),
        },
        coords={
            "time": np.arange(frames),
            "space": np.array(["x", "y", "z"], dtype=object),
            "space_2d": np.array(["x", "y"], dtype=object),
            "keypoint": np.array(keypoints, dtype=object),
            "individual": np.array([INDIVIDUAL], dtype=object),
            "view": np.array([c.name for c in cams], dtype=object),
        },
        attrs={"source_software": "mocapflow.synthetic", "ds_type": "poses", **attrs},
    )


@dataclass(frozen=True)
class _Timing:
    """When each camera takes its frames: its first frame's scene time and its own times."""

    starts: np.ndarray  # frames of `fps`, per camera
    rates: np.ndarray  # frames per second, per camera
    jitter: np.ndarray  # largest deviation from the regular times, frames, per camera
    start_s: np.ndarray  # scene time of each camera's first frame, seconds
    times: list[np.ndarray]  # each camera's frames' times from its first frame, seconds

    def offsets(self) -> np.ndarray:
        """Each camera's true ``sync_offset``: frames of the reference (camera 0) at its rate."""
        return (self.start_s - self.start_s[0]) * self.rates[0]

    def attrs(self, reference: str) -> dict:
        """Return what the ground truth records of the timing."""
        return {
            "reference": reference,
            "position": f"at the reference camera's frames: time i is {reference}'s frame i",
            "starts": [float(x) for x in self.starts],
            "rates": [float(x) for x in self.rates],
            "jitter": [float(x) for x in self.jitter],
        }


#: Most a frame's time may stray from the regular ``i / rate`` with ``jitter``, frames
#: (below half a frame, so the times always increase).
MAX_JITTER = 0.45


def _per_camera(name: str, value, cameras: int, default: float, example: str) -> np.ndarray:
    """Return a timing option as one float per camera (a single number is every camera's)."""
    if value is None:
        return np.full(cameras, float(default))
    try:
        arr = np.asarray(value, np.float64)
    except (TypeError, ValueError):
        arr = np.array([np.nan])
    if arr.ndim == 0:
        arr = np.full(cameras, float(arr))
    if arr.ndim != 1 or not np.isfinite(arr).all():
        raise UsageError(
            f"{name} {value!r}: give a number or one number per camera, e.g. {example}"
        )
    if len(arr) != cameras:
        raise UsageError(f"{name}: {len(arr)} values given for {cameras} cameras, e.g. {example}")
    return arr


def _timing(
    cameras: int,
    per_camera: list[int],
    fps: float,
    kind: str,
    codec: str,
    seed: int,
    starts,
    rates,
    jitter,
) -> _Timing | None:
    """Check the timing options and draw each camera's frame times (None: none given)."""
    if starts is None and rates is None and jitter is None:
        return None
    if kind != "markers":
        raise UsageError(
            "starts, rates and jitter time the markers scene only; render the charuco scene "
            "without them"
        )
    example = ", ".join(["0"] + ["2.5"] * (cameras - 1))
    starts = _per_camera("starts", starts, cameras, 0.0, f"[{example}]")
    rates = _per_camera("rates", rates, cameras, fps, f"[{', '.join([f'{fps:g}'] * cameras)}]")
    jitter = _per_camera("jitter", jitter, cameras, 0.0, f"[{', '.join(['0.2'] * cameras)}]")
    if not ((rates > 0) & (rates <= 1000)).all():
        raise UsageError(f"rates {rates.tolist()}: give frame rates from above 0 to 1000, e.g. 60")
    if not ((jitter >= 0) & (jitter <= MAX_JITTER)).all():
        raise UsageError(
            f"jitter {jitter.tolist()}: give each camera's from 0 to {MAX_JITTER} of a frame"
        )
    if codec == "mjpg" and (jitter > 0).any():
        raise UsageError("jitter: MJPEG in AVI keeps no frame times; use h264, mp4v or vp9")
    times = []
    for c in range(cameras):
        t = np.arange(per_camera[c], dtype=np.float64)
        if jitter[c] > 0:  # irregular times, the camera's first frame at its start
            gen = np.random.default_rng([seed, c + 1])
            t[1:] += gen.uniform(-jitter[c], jitter[c], len(t) - 1)
        times.append(t / rates[c])
    return _Timing(starts, rates, jitter, starts / fps, times)


#: The largest frame side synthesize renders (8K).
MAX_SIDE = 7680
#: Most markers a scene holds: hues closer than this cannot be told apart by the tracker.
MAX_MARKERS = 24


def synthesize(
    out: str | Path,
    kind: str = "markers",
    cameras: int = 4,
    frames: int | list[int] | None = None,
    size: tuple[int, int] | None = None,
    fps: float = 30.0,
    codec: str = "h264",
    seed: int = 0,
    n_markers: int = 6,
    gop: int = 120,
    overwrite: bool = False,
    scene: str = "sweep",
    *,
    starts: float | list[float] | None = None,
    rates: float | list[float] | None = None,
    jitter: float | list[float] | None = None,
) -> SyntheticRecording:
    """Render a synthetic multi-camera recording with its ground truth.

    Parameters
    ----------
    out : str or pathlib.Path
        Recording folder to create.
    kind : {"markers", "charuco"}
        The scene.
    cameras : int
        Number of cameras.
    frames : int or list of int, optional
        Frames per video, or one count per camera (cameras that stop early);
        120 by default, 150 in the ``turntable`` scene.
    size : tuple of int, optional
        ``(width, height)``; 640x480 by default, 960x720 in the ``turntable`` scene.
    fps : float
        Frame rate.
    codec : {"h264", "mp4v", "mjpg", "vp9"}
        Video codec (H.264 is written with B-frames).
    seed : int
        Seed of every random choice.
    n_markers : int
        Markers in the ``markers`` scene.
    gop : int
        Keyframe interval of inter-frame codecs.
    overwrite : bool
        Replace the videos, truth and calibration of a recording already there.
    scene : {"sweep", "turntable"}
        The ``charuco`` scene: the board sweeping the volume, or turning once
        on the spot near the centre of a ring of cameras 2.5 m away (see the
        module's docstring).
    starts : float or list of float, optional
        Markers scene: per camera, the scene time of its first frame in frames
        of ``fps`` (fractions too; camera 1 is the reference). A camera started
        ``k`` frames after the reference has ``sync_offset = +k``. Default all 0.
    rates : float or list of float, optional
        Markers scene: per camera, its frame rate (default ``fps``); ``frames``
        still counts each camera's own frames.
    jitter : float or list of float, optional
        Markers scene: per camera, how far each frame's time strays from the
        regular ``i / rate``, at most, in frames (0 to :data:`MAX_JITTER`; each
        frame's own, seeded by ``seed``; the first frame stays at 0). A camera
        with jitter is written as a variable-frame-rate video, each frame with
        its time. Default 0.

    Returns
    -------
    SyntheticRecording
        Paths, cameras and ground truth.

    Raises
    ------
    UsageError
        If an argument is invalid, or ``out`` holds a recording and ``overwrite`` is off.

    Notes
    -----
    Camera ``c``'s frame ``i`` shows the scene at ``starts[c] / fps + t_c[i]``
    seconds, ``t_c`` being its frames' own times. With any of ``starts``,
    ``rates`` or ``jitter`` the ground truth's ``position`` is at the reference
    camera's frames (its ``time`` is camera 1's frame index), its 2-D truth is
    per camera and ``frame``, and it records each camera's ``frame_time`` (seconds
    from its first frame), ``start_s``, ``rate`` and true ``sync_offset``
    (frames of the reference), and the options in its ``timing`` attribute.
    Without them the recording is what it always was, byte for byte.

    """
    if kind not in KINDS:
        raise UsageError(f"unknown kind {kind!r}; choose one of {', '.join(KINDS)}")
    if scene not in SCENES:
        raise UsageError(f"unknown scene {scene!r}; choose one of {', '.join(SCENES)}")
    if scene != "sweep" and kind != "charuco":
        raise UsageError(f"--scene {scene} is a charuco scene; add --kind charuco")
    frames = SCENE_DEFAULTS[scene][0] if frames is None else frames
    size = SCENE_DEFAULTS[scene][1] if size is None else tuple(size)
    if codec not in CODECS:
        raise UsageError(f"unknown codec {codec!r}; choose one of {', '.join(CODECS)}")
    per_camera = [int(frames)] * cameras if np.isscalar(frames) else [int(f) for f in frames]
    if len(per_camera) != cameras:
        raise UsageError(f"frames: {len(per_camera)} counts given for {cameras} cameras")
    if cameras < 1 or min(per_camera) < 1 or not fps > 0 or min(size) < 16:
        raise UsageError("cameras and frames must be positive, fps > 0, size at least 16x16")
    if not np.isfinite(fps) or fps > 1000:
        raise UsageError(f"--fps {fps}: give a frame rate from above 0 to 1000, e.g. 30")
    if size[0] % 2 or size[1] % 2:
        raise UsageError(
            f"--size {size[0]}x{size[1]}: width and height must be even (the video encoders "
            f"need it); e.g. {size[0] + size[0] % 2}x{size[1] + size[1] % 2}"
        )
    if max(size) > MAX_SIDE:
        raise UsageError(
            f"--size {size[0]}x{size[1]}: at most {MAX_SIDE} pixels a side (8K); choose a "
            "smaller size, e.g. 1280x720"
        )
    if kind == "markers" and not 1 <= n_markers <= MAX_MARKERS:
        raise UsageError(
            f"--markers {n_markers}: a markers scene has 1 to {MAX_MARKERS} markers "
            "(each its own hue); the default is 6"
        )
    timing = _timing(cameras, per_camera, fps, kind, codec, seed, starts, rates, jitter)
    root = Path(out)
    video_dir = root / "synchronized_videos"
    made = [video_dir, root / "ground_truth.zarr", root / TRUE_CALIBRATION]
    if any(p.exists() for p in made):
        if not overwrite:
            raise UsageError(
                f"{root}: already holds a recording; choose another folder, or --overwrite "
                "to replace its videos, ground truth and calibration"
            )
        for p in made:
            shutil.rmtree(p) if p.is_dir() else p.unlink(missing_ok=True)
    video_dir.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    if scene == "turntable":
        cams = make_cameras(cameras, size, rng, TURNTABLE_RADIUS_MM, TURNTABLE_FOCAL)
    else:
        cams = make_cameras(cameras, size, rng)
    bg = _background(size, rng)
    world = _scene(kind, rng, max(per_camera), fps, n_markers, scene)
    attrs = {"kind": kind, "seed": seed, "fps": fps, "codec": codec, "space_unit": "mm"}
    meta = {"source": "mocapflow.synthetic", "seed": seed}
    if scene != "sweep":  # the default scene's files stay as they were
        attrs["scene"] = meta["scene"] = scene
    attrs.update(world.attrs)
    n_t, _, n_k = world.points.shape
    uv_all = np.full((cameras, n_t, 2, n_k), np.nan)
    vis_all = np.zeros((cameras, n_t, n_k), bool)
    videos = []
    for c, cam in enumerate(cams):
        path = video_dir / f"{cam.name}{CODECS[codec][1]}"
        renderer = _BoardRenderer(cam, world.texture, world.board_mm) if kind == "charuco" else None
        if timing is None:
            with VideoWriter(path, fps, codec, gop=gop) as writer:
                for t in range(per_camera[c]):
                    img, uv_all[c, t], vis_all[c, t] = _render(world, cam, renderer, bg, t, size)
                    writer.write(img)
        else:  # the scene at this camera's own times
            times = timing.times[c]
            timed = timing.jitter[c] > 0
            points = world.paths(timing.start_s[c] + times)
            with VideoWriter(path, float(timing.rates[c]), codec, gop=gop) as writer:
                for i, at in enumerate(points):
                    img, uv_all[c, i], vis_all[c, i] = _render_markers(bg, cam, at, world.colours)
                    writer.write(img, time=float(times[i]) if timed else None)
        videos.append(path)
        logger.info("wrote %s", path)
    if timing is None:
        gt = _truth(world.points, world.keypoints, cams, uv_all, vis_all, attrs)
    else:
        attrs["timing"] = timing.attrs(cams[0].name)
        points = world.paths(timing.start_s[0] + timing.times[0])
        gt = _timed_truth(points, world.keypoints, cams, uv_all, vis_all, attrs, timing)
    gt.to_zarr(root / "ground_truth.zarr", mode="w", consolidated=False, zarr_format=3)
    write_toml(root / TRUE_CALIBRATION, cams, meta)
    return SyntheticRecording(root, videos, cams, gt)
