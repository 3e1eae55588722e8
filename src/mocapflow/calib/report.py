"""The calibration report: one self-contained HTML page about a camera fit (Bokeh, inline).

It says whether the calibration recording was good enough and, when it was
not, what to record again: for each camera, where in the image the board's
corners were seen (image coverage), how many board views were tilted (the
focal length comes from foreshortening), and how well the corners reproject
after the bundle adjustment; then the rig itself, seen from above and from
the side.

:func:`diagnose` and :func:`calibration_residuals` are plain numpy;
:func:`write_calibration_report` draws the page with Bokeh, in the run
report's style (:mod:`mocapflow.report`).
"""

from __future__ import annotations

import html
import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..page import bullets, table
from .fit import MIN_CORNERS, RMS_WARN_PX, CalibrationResult, _non_degenerate

if TYPE_CHECKING:
    from bokeh.plotting import figure as Figure  # noqa: N812 (a type, named as one)

__all__ = [
    "Finding",
    "calibration_residuals",
    "diagnose",
    "write_calibration_report",
]

logger = logging.getLogger(__name__)

#: The image is divided into GRID x GRID cells for coverage. Three by three names the
#: four image corners (where lens distortion is largest and only corners seen there
#: pin ``k1``/``k2`` down), the four edges and the centre, in words a person can act on.
GRID = 3
#: Cell names, row by row from the top of the image (y points down, as in the image).
CELL_NAMES = (
    ("top-left", "top", "top-right"),
    ("left", "centre", "right"),
    ("bottom-left", "bottom", "bottom-right"),
)
#: A board view counts as tilted beyond this angle (degrees between the board's normal
#: and the camera's line of sight to it). The focal length is found from foreshortening:
#: face-on views confound it with the board's distance (Zhang 2000); at 20 degrees the
#: foreshortening is a few percent, well above the corners' noise.
TILT_DEG = 20.0
#: Fewer tilted views than this per camera gets a finding: OpenCV's calibration guide
#: and anipose ask for a handful of views tilted each way; five is the least that still
#: leaves a tilted view or two after outliers are dropped.
MIN_TILTED = 5
#: A camera whose corners reproject worse than this RMS (pixels) gets a finding: the fit's
#: own warning level (sharp corners of a flat board fit within a few tenths of a pixel).
RMS_PX = RMS_WARN_PX
#: Columns of the corner heat map (rows follow the image's aspect ratio): cells of 10-40 px
#: on common video sizes, fine enough to see the board's sweep, small enough for the page.
HEAT_COLUMNS = 64
#: Residual vectors drawn per camera at most (a random sample beyond), to keep the page a
#: few MB: 300 frames x 4 cameras x 24-35 corners would otherwise be 30-40 thousand points.
MAX_RESIDUALS = 4000
#: Plot sizes in screen pixels.
PANEL_PX = 380
RIG_PX = 520


@dataclass(frozen=True)
class Finding:
    """One thing wrong with a calibration recording, and what to record to mend it.

    Attributes
    ----------
    camera : str
        The camera it concerns.
    problem : str
        What is wrong, in words.
    fix : str
        What to record again.

    """

    camera: str
    problem: str
    fix: str

    def __str__(self) -> str:
        return f"{self.camera}: {self.problem}; {self.fix}"


def _check(fit: CalibrationResult, position: np.ndarray, object_points: np.ndarray):
    """Return ``position`` and ``object_points`` as float arrays, checked against ``fit``."""
    pos = np.asarray(position, np.float64)
    obj = np.asarray(object_points, np.float64)
    if pos.ndim != 4 or pos.shape[0] != len(fit.cameras) or pos.shape[2] != 2:
        raise ValueError(
            f"position must be (view, time, 2, corner) with {len(fit.cameras)} views "
            f"(one per camera), not {pos.shape}"
        )
    if obj.ndim != 2 or obj.shape != (pos.shape[3], 3):
        raise ValueError(f"object_points must be ({pos.shape[3]}, 3), not {obj.shape}")
    return pos, obj


def _adjusted_views(fit: CalibrationResult, pos: np.ndarray, obj: np.ndarray) -> np.ndarray:
    """Which camera's view of which adjusted frame was in the bundle adjustment.

    As :func:`mocapflow.calib.calibrate_cameras` chooses them: at least
    ``MIN_CORNERS`` corners found, not all on one line, and not rejected.

    Returns
    -------
    numpy.ndarray
        Boolean, ``(camera, len(fit.frames))``.
    """
    frames = np.asarray(fit.frames, int)
    found = np.isfinite(pos[:, frames]).all(axis=2)  # camera, frame, corner
    used = found.sum(-1) >= MIN_CORNERS
    for c, f in zip(*np.nonzero(used), strict=True):
        used[c, f] = _non_degenerate(obj[found[c, f]])
    index = {int(t): f for f, t in enumerate(frames)}
    names = {cam.name: c for c, cam in enumerate(fit.cameras)}
    for name, t, _ in fit.rejected:
        if name in names and int(t) in index:
            used[names[name], index[int(t)]] = False
    return used


def _residuals(fit, pos, obj, used) -> list[np.ndarray]:
    """Observed minus projected corners per camera, ``(n, 2)``, over the views ``used``."""
    out = []
    frames = np.asarray(fit.frames, int)
    for c, cam in enumerate(fit.cameras):
        parts = [np.zeros((0, 2))]
        for f in np.flatnonzero(used[c]):
            seen = pos[c, frames[f]].T  # corner, 2
            ok = np.isfinite(seen).all(1)
            pose = np.asarray(fit.board_poses[f], np.float64)
            world = obj[ok] @ pose[:3, :3].T + pose[:3, 3]
            parts.append(seen[ok] - cam.project(world))
        out.append(np.concatenate(parts))
    return out


def calibration_residuals(
    fit: CalibrationResult, position: np.ndarray, object_points: np.ndarray
) -> dict[str, np.ndarray]:
    """Return every camera's reprojection residuals over the adjusted frames.

    The corners are those the bundle adjustment used (see
    :func:`mocapflow.calib.calibrate_cameras`), projected from their board pose
    in the world (``fit.board_poses``) through the calibrated camera; their RMS
    is the camera's ``fit.per_camera_rms``.

    Parameters
    ----------
    fit : CalibrationResult
        The calibration.
    position : numpy.ndarray
        Corner pixels ``(view, time, 2, corner)`` the fit was made from, NaN
        where not found; views in the order of ``fit.cameras``.
    object_points : numpy.ndarray
        ``(corner, 3)`` corner coordinates on the board.

    Returns
    -------
    dict of str to numpy.ndarray
        Per camera name, ``(n, 2)`` residuals ``(dx, dy)`` in pixels, observed
        minus projected (``y`` down, as in the image).

    Raises
    ------
    ValueError
        If ``position`` or ``object_points`` do not match the fit's cameras.

    """
    pos, obj = _check(fit, position, object_points)
    used = _adjusted_views(fit, pos, obj)
    res = _residuals(fit, pos, obj, used)
    return {cam.name: r for cam, r in zip(fit.cameras, res, strict=True)}


def _coverage(pos_c: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Corners seen per cell of the image's ``GRID x GRID`` grid, ``(row, column)``."""
    w, h = size
    x, y = pos_c[:, 0].ravel(), pos_c[:, 1].ravel()
    ok = np.isfinite(x) & np.isfinite(y)
    counts, _, _ = np.histogram2d(y[ok], x[ok], bins=[GRID, GRID], range=[[0, h], [0, w]])
    return counts.astype(int)


def _tilts(fit: CalibrationResult, obj: np.ndarray, used: np.ndarray) -> list[np.ndarray]:
    """Degrees from face-on of each camera's views in the adjustment."""
    poses = np.asarray(fit.board_poses, np.float64)
    centres = poses[:, :3, :3] @ obj.mean(0) + poses[:, :3, 3]  # frame, 3 (world)
    normals = poses[:, :3, 2]
    out = []
    for c, cam in enumerate(fit.cameras):
        rays = centres[used[c]] - cam.center
        cos = np.abs((normals[used[c]] * rays).sum(1)) / np.linalg.norm(rays, axis=1)
        out.append(np.degrees(np.arccos(np.clip(cos, 0.0, 1.0))))
    return out


def _words(items: list[str]) -> str:
    """Join words as ``a``, ``a and b``, ``a, b and c``."""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _findings(fit: CalibrationResult, coverage: list, tilts: list) -> list[Finding]:
    """Return :func:`diagnose`'s findings from each camera's coverage and tilts."""
    out = []
    for c, cam in enumerate(fit.cameras):
        empty = [
            CELL_NAMES[i][j] for i in range(GRID) for j in range(GRID) if not coverage[c][i, j]
        ]
        if empty:
            corners = [e for e in empty if "-" in e]  # the image corners first: distortion
            where = _words(corners + [e for e in empty if "-" not in e])
            out.append(
                Finding(
                    cam.name,
                    f"the {where} of the image never saw a corner",
                    "wave the board there, close to the image's edges"
                    + (" and corners (lens distortion is largest there)" if corners else ""),
                )
            )
        n_tilted = int((tilts[c] > TILT_DEG).sum())
        if n_tilted < MIN_TILTED:
            out.append(
                Finding(
                    cam.name,
                    f"too few tilted views ({n_tilted} of {len(tilts[c])} adjusted views "
                    f"more than {TILT_DEG:g} degrees from face-on; {MIN_TILTED} wanted)",
                    f"tilt the board towards and away from {cam.name}, and sideways, "
                    "by 30-45 degrees",
                )
            )
        rms = float(fit.per_camera_rms.get(cam.name, np.nan))
        if rms > RMS_PX:
            out.append(
                Finding(
                    cam.name,
                    f"its corners reproject {rms:.2f} px RMS (more than {RMS_PX:g} px)",
                    f"record more slow, sharp board views across {cam.name}'s image, "
                    "with good light (motion blur and misread corners raise it)",
                )
            )
    return out


def diagnose(
    fit: CalibrationResult,
    position: np.ndarray,
    object_points: np.ndarray,
    sizes: list[tuple[int, int]],
) -> list[Finding]:
    """Say what is wrong with a calibration recording, per camera, and what to record.

    Three checks per camera:

    * **coverage**: the image is cut into a ``GRID x GRID`` grid; each cell
      where no corner was ever seen (in any frame) is named;
    * **tilt**: fewer than ``MIN_TILTED`` of the camera's views in the bundle
      adjustment are more than ``TILT_DEG`` degrees from face-on (the board's
      normal against the camera's line of sight to its centre);
    * **error**: the camera's RMS reprojection error is above ``RMS_PX``.

    Parameters
    ----------
    fit : CalibrationResult
        The calibration.
    position : numpy.ndarray
        Corner pixels ``(view, time, 2, corner)`` the fit was made from, NaN
        where not found; views in the order of ``fit.cameras``.
    object_points : numpy.ndarray
        ``(corner, 3)`` corner coordinates on the board.
    sizes : list of tuple of int
        ``(width, height)`` per camera.

    Returns
    -------
    list of Finding
        Empty when the recording is good.

    Raises
    ------
    ValueError
        If the inputs do not match the fit's cameras.

    """
    pos, obj = _check(fit, position, object_points)
    if len(sizes) != len(fit.cameras):
        raise ValueError(f"sizes: {len(sizes)} given for {len(fit.cameras)} cameras")
    used = _adjusted_views(fit, pos, obj)
    coverage = [_coverage(pos[c], sizes[c]) for c in range(len(fit.cameras))]
    return _findings(fit, coverage, _tilts(fit, obj, used))


# The page.


def _heat_map(name: str, pos_c: np.ndarray, size: tuple[int, int], counts: np.ndarray):
    """Where the camera saw corners: a 2-D histogram in image coordinates, y down."""
    from bokeh.models import ColorBar, LinearColorMapper, Range1d
    from bokeh.palettes import Viridis256
    from bokeh.plotting import figure

    w, h = size
    cols = HEAT_COLUMNS
    rows = max(1, round(cols * h / w))
    x, y = pos_c[:, 0].ravel(), pos_c[:, 1].ravel()
    ok = np.isfinite(x) & np.isfinite(y)
    hist, _, _ = np.histogram2d(y[ok], x[ok], bins=[rows, cols], range=[[0, h], [0, w]])
    fig = figure(
        title=f"{name}: corners seen ({int(ok.sum())}), {w}x{h}",
        x_range=Range1d(0, w),
        y_range=Range1d(h, 0),  # y down, as in the image
        frame_width=PANEL_PX,
        frame_height=max(40, round(PANEL_PX * h / w)),
        x_axis_label="x (px)",
        y_axis_label="y (px, down)",
        tools="pan,wheel_zoom,box_zoom,reset,save",
    )
    mapper = LinearColorMapper(
        palette=Viridis256, low=0.5, high=max(1.0, float(hist.max())), low_color="#e8e8e8"
    )
    # Row 0 of the image is drawn at data y=0, which the reversed range puts at the top.
    fig.image(image=[hist.astype(np.float32)], x=0, y=0, dw=w, dh=h, color_mapper=mapper)
    fig.add_layout(ColorBar(color_mapper=mapper, title="corners", width=10), "right")
    for k in range(1, GRID):
        fig.line([k * w / GRID] * 2, [0, h], line_color="grey", line_dash="dashed")
        fig.line([0, w], [k * h / GRID] * 2, line_color="grey", line_dash="dashed")
    empty = np.argwhere(counts == 0)
    if len(empty):
        cw, ch = w / GRID, h / GRID
        fig.quad(
            left=empty[:, 1] * cw,
            right=(empty[:, 1] + 1) * cw,
            top=empty[:, 0] * ch,
            bottom=(empty[:, 0] + 1) * ch,
            fill_color=None,
            line_color="crimson",
            line_width=2,
            legend_label="never saw a corner",
        )
        fig.legend.location = "top_left"
        fig.legend.background_fill_alpha = 0.6
    return fig


def _residual_plot(name: str, res: np.ndarray, rms: float):
    """Plot the residual vectors ``(dx, dy)`` as points, with a circle at their RMS."""
    from bokeh.models import Range1d
    from bokeh.plotting import figure

    shown = res
    if len(res) > MAX_RESIDUALS:
        rng = np.random.default_rng(0)
        shown = res[np.sort(rng.choice(len(res), MAX_RESIDUALS, replace=False))]
    reach = 1.0
    if len(res):
        reach = max(3 * rms, float(np.percentile(np.abs(res), 99.5)), 0.1) * 1.15
    title = f"{name}: residuals, RMS {rms:.3f} px ({len(res)} corners"
    title += f", {len(shown)} drawn)" if len(shown) < len(res) else ")"
    fig = figure(
        title=title,
        x_range=Range1d(-reach, reach),
        y_range=Range1d(reach, -reach),  # y down, as in the image
        frame_width=PANEL_PX,
        frame_height=PANEL_PX,
        x_axis_label="dx (px), observed - projected",
        y_axis_label="dy (px, down)",
        tools="pan,wheel_zoom,box_zoom,reset,save",
    )
    fig.scatter(
        shown[:, 0].astype(np.float32),
        shown[:, 1].astype(np.float32),
        size=3,
        alpha=0.35,
        line_color=None,
    )
    fig.circle(
        x=0,
        y=0,
        radius=rms,
        fill_color=None,
        line_color="crimson",
        line_width=2,
        legend_label=f"RMS {rms:.3f} px",
    )
    fig.legend.location = "top_left"
    fig.legend.background_fill_alpha = 0.6
    return fig


def _rig_axes(fit: CalibrationResult) -> np.ndarray:
    """Rows ``across, depth, up``: up is the cameras' mean image-up, depth their mean view."""
    rots = np.stack([cam.rotation_matrix for cam in fit.cameras])
    up = -rots[:, 1].mean(0)  # each camera's y row points down its image, in the world
    if np.linalg.norm(up) < 1e-9:
        up = np.array([0.0, 0.0, 1.0])
    up /= np.linalg.norm(up)
    view = rots[:, 2].mean(0)
    depth = view - (view @ up) * up
    if np.linalg.norm(depth) < 1e-6:  # all looking straight down or up
        depth = np.cross(up, [1.0, 0.0, 0.0] if abs(up[0]) < 0.9 else [0.0, 1.0, 0.0])
    depth /= np.linalg.norm(depth)
    return np.stack([np.cross(depth, up), depth, up])


def _equal_ranges(views: list[tuple[np.ndarray, np.ndarray]], width: int, height: int):
    """Ranges with one world unit per pixel shared by every view, each view centred."""
    from bokeh.models import Range1d

    spans = []
    for x, y in views:
        spans.append(max((np.ptp(x) * 1.25 + 1e-9) / width, (np.ptp(y) * 1.25 + 1e-9) / height))
    scale = max(spans)
    out = []
    for x, y in views:
        cx, cy = (x.min() + x.max()) / 2, (y.min() + y.max()) / 2
        out.append(
            (
                Range1d(cx - scale * width / 2, cx + scale * width / 2),
                Range1d(cy - scale * height / 2, cy + scale * height / 2),
            )
        )
    return out


def _rig_plots(fit: CalibrationResult, obj: np.ndarray) -> list[Figure]:
    """Plot cameras (centres, viewing directions) and board centres from above and the side."""
    from bokeh.palettes import Category10_10
    from bokeh.plotting import figure

    axes = _rig_axes(fit)
    centres = np.stack([cam.center for cam in fit.cameras]) @ axes.T
    looks = np.stack([cam.rotation_matrix[2] for cam in fit.cameras]) @ axes.T
    poses = np.asarray(fit.board_poses, np.float64).reshape(-1, 4, 4)
    boards = (poses[:, :3, :3] @ obj.mean(0) + poses[:, :3, 3]) @ axes.T
    everything = np.concatenate([centres, boards])
    reach = 0.25 * max(float(np.ptp(everything, axis=0).max()), 1e-9)
    ends = centres + reach * looks
    pts = np.concatenate([everything, ends])
    labels = ("across", "depth", "up")
    pairs = [(0, 1, "top view (looking down)"), (1, 2, "side view")]
    height = round(RIG_PX * 0.75)
    ranges = _equal_ranges([(pts[:, i], pts[:, j]) for i, j, _ in pairs], RIG_PX, height)
    figs = []
    for (i, j, title), (xr, yr) in zip(pairs, ranges, strict=True):
        fig = figure(
            title=f"rig, {title}",
            x_range=xr,
            y_range=yr,
            frame_width=RIG_PX,
            frame_height=height,
            x_axis_label=f"{labels[i]} (world units)",
            y_axis_label=f"{labels[j]} (world units)",
            tools="pan,wheel_zoom,box_zoom,reset,save",
        )
        fig.scatter(
            boards[:, i], boards[:, j], size=4, color="grey", alpha=0.6, legend_label="board"
        )
        for c, cam in enumerate(fit.cameras):
            colour = Category10_10[c % 10]
            fig.line([centres[c, i], ends[c, i]], [centres[c, j], ends[c, j]], color=colour)
            fig.scatter([centres[c, i]], [centres[c, j]], size=11, marker="square", color=colour)
            fig.text(
                [centres[c, i]],
                [centres[c, j]],
                text=[cam.name],
                x_offset=8,
                y_offset=-4,
                text_font_size="11px",
                text_color=colour,
            )
        fig.legend.location = "top_left"
        fig.legend.background_fill_alpha = 0.6
        figs.append(fig)
    return figs


def _camera_rows(fit, used, res, tilts, coverage) -> list[list[str]]:
    """Return the per-camera table: RMS, views, tilted views, empty cells, rejected views."""
    rows = []
    for c, cam in enumerate(fit.cameras):
        reasons = Counter(why for name, _, why in fit.rejected if name == cam.name)
        rejected = "; ".join(f"{why}: {n}" for why, n in reasons.most_common()) or "-"
        empty = [CELL_NAMES[i][j] for i, j in np.argwhere(coverage[c] == 0)]
        rms = fit.per_camera_rms.get(cam.name, np.nan)
        rows.append(
            [
                cam.name,
                f"{rms:.3f}",
                str(fit.n_views.get(cam.name, "-")),
                str(int(used[c].sum())),
                f"{int((tilts[c] > TILT_DEG).sum())}",
                f"{len(res[c])}",
                ", ".join(empty) or "-",
                rejected,
            ]
        )
    return rows


def write_calibration_report(
    path: str | Path,
    fit: CalibrationResult,
    position: np.ndarray,
    object_points: np.ndarray,
    sizes: list[tuple[int, int]],
    *,
    title: str | None = None,
) -> Path:
    """Write the calibration report, one self-contained HTML page; return its path.

    The page has a summary (overall RMS, frames adjusted, the verdict: "good",
    or the :func:`diagnose` findings with their fixes, and the fit's warnings),
    a table per camera (RMS, views used, tilted views, image cells never
    covered, rejected views by reason), per camera a heat map of where corners
    were seen and a scatter of the residual vectors with a circle at the RMS,
    and the rig (camera centres, viewing directions and board centres) from
    above and from the side, with equal axis scales. Bokeh's JavaScript is
    inlined: it opens offline.

    Parameters
    ----------
    path : str or pathlib.Path
        The HTML file to write (replaced whole, never left half written).
    fit : CalibrationResult
        The calibration.
    position : numpy.ndarray
        Corner pixels ``(view, time, 2, corner)`` the fit was made from, NaN
        where not found; views in the order of ``fit.cameras``.
    object_points : numpy.ndarray
        ``(corner, 3)`` corner coordinates on the board.
    sizes : list of tuple of int
        ``(width, height)`` per camera.
    title : str, optional
        The page's title; default "mocapflow calibration".

    Returns
    -------
    pathlib.Path
        The page's path.

    Raises
    ------
    ValueError
        If the inputs do not match the fit's cameras.

    """
    from bokeh.embed import file_html
    from bokeh.layouts import column, row
    from bokeh.models import Div
    from bokeh.resources import INLINE

    path = Path(path)
    title = title or "mocapflow calibration"
    pos, obj = _check(fit, position, object_points)
    if len(sizes) != len(fit.cameras):
        raise ValueError(f"sizes: {len(sizes)} given for {len(fit.cameras)} cameras")
    sizes = [(int(w), int(h)) for w, h in sizes]
    used = _adjusted_views(fit, pos, obj)
    res = _residuals(fit, pos, obj, used)
    tilts = _tilts(fit, obj, used)
    coverage = [_coverage(pos[c], sizes[c]) for c in range(len(fit.cameras))]
    findings = _findings(fit, coverage, tilts)
    verdict = (
        "<p><b>Verdict: good.</b> Every camera saw corners all over its image, enough "
        f"tilted views, and reprojects within {RMS_PX:g} px.</p>"
        if not findings
        else f"<p><b>Verdict: {len(findings)} finding(s)</b>; what to record again:</p>"
        + bullets([str(f) for f in findings], "")
    )
    summary = (
        f"<h1>{html.escape(title)}</h1>"
        f"<p>{len(fit.cameras)} cameras; RMS reprojection error {fit.rms:.3f} px over "
        f"{fit.n_frames} adjusted frames (board poses); {len(fit.rejected)} board views "
        "rejected.</p>" + verdict + "<h3>Warnings</h3>" + bullets(list(fit.warnings), "None.")
    )
    header = [
        "camera",
        "RMS (px)",
        "board views",
        "views adjusted",
        f"tilted > {TILT_DEG:g} deg",
        "corners adjusted",
        "cells never covered",
        "rejected views",
    ]
    parts = [
        Div(text=summary, width=1100),
        Div(text="<h2>Cameras</h2>" + table(_camera_rows(fit, used, res, tilts, coverage), header)),
    ]
    for c, cam in enumerate(fit.cameras):
        rms = float(fit.per_camera_rms.get(cam.name, np.nan))
        parts.append(Div(text=f"<h3>{html.escape(cam.name)}</h3>"))
        parts.append(
            row(
                _heat_map(cam.name, pos[c], sizes[c], coverage[c]),
                _residual_plot(cam.name, res[c], rms),
            )
        )
    parts.append(
        Div(
            text="<h2>Rig</h2><p>Camera centres (squares) with their viewing directions, and "
            "the adjusted board poses' centres (grey); up is the cameras' mean image-up "
            "direction, depth their mean viewing direction. Both views share one scale.</p>",
            width=1100,
        )
    )
    parts.append(row(*_rig_plots(fit, obj)))
    page = file_html(column(*parts), resources=INLINE, title=title)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(path)
    logger.info("calibration report: %s (%d findings)", path, len(findings))
    return path
