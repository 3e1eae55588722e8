"""The run report a lab keeps: one self-contained HTML page about a store (Bokeh, inline).

Beside Dask's performance report (how the cluster spent its time), this one
says what was recorded and what came out, in sections:

* Summary: the run's facts, the 3-D figures, the failures and warnings;
* Views: each view's frames, status, frames per second of its tasks and
  detection rate over time;
* 3-D: the skeletons played over time with the cameras
  (:mod:`mocapflow.player`, plotly, inline), and rendered frames when given;
* Quality: each view's reprojection error (its 2-D points against the 3-D
  ones projected through its camera) and each person's;
* Kinematics, after ``kinematics``: the main joint angles (left against right)
  and the IK marker error under them.

A view has one colour everywhere (:func:`mocapflow.palette.view_colours`), and
a person too (:func:`mocapflow.palette.person_colours`). The page needs nothing
from the network.
"""

from __future__ import annotations

import base64
import html
import logging
import warnings
from pathlib import Path

import numpy as np

from . import ledger
from . import store as _store
from .page import STYLE, bullets, facts, section, swatch, table
from .palette import person_colours, view_colours
from .quality import doubt_line, people_line
from .schema import ANGLES, IK, POINTS3D

__all__ = ["run_report_path", "view_errors", "write_run_report"]

logger = logging.getLogger(__name__)

#: Points along time in the plots (frames are binned to this many).
BINS = 200


def run_report_path(store: Path) -> Path:
    """Where a store's run report goes: ``<store stem>.run.html`` beside it."""
    return store.with_name(store.name.removesuffix(".zarr") + ".run.html")


def _binned(values: np.ndarray, time: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Means over at most :data:`BINS` equal bins of frames."""
    edges = np.linspace(0, len(values), min(BINS, len(values)) + 1).astype(int)
    centres = np.array([time[a:b].mean() for a, b in zip(edges[:-1], edges[1:], strict=True)])
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN bin is NaN, as meant
        means = np.array(
            [
                np.nanmean(values[a:b]) if b > a else np.nan
                for a, b in zip(edges[:-1], edges[1:], strict=True)
            ]
        )
    return centres, means


def _over_time(title: str, unit: str, y_label: str):
    """Return an empty Bokeh figure for a quantity over the recording's time."""
    from bokeh.plotting import figure

    return figure(title=title, x_axis_label=unit, y_axis_label=y_label, width=900, height=300)


def _view_rows(s: dict, records: dict) -> list[list]:
    """Return the views table: status, frames, decoded, frames/s per task, detection rate."""
    rates: dict = {}
    for r in records.values():
        n, secs = rates.get(r.get("view"), (0, 0.0))
        rates[r.get("view")] = (n + r.get("n_decoded", 0), secs + r.get("seconds", 0.0))
    rows = []
    for v in s["views"]:
        n, secs = rates.get(v["view"], (0, 0.0))
        rate = f"{n / secs:.0f}" if secs else "-"
        found = f"{v['detected_pct']:.1f}%" if "detected_pct" in v else "-"
        rows.append([v["view"], v["status"], v["frames"], v["decoded"], rate, found])
    return rows


def _notes(s: dict) -> list[str]:
    """Failures, warnings, stale groups and damage, one line each."""
    attrs = s["attrs"]
    notes = [f"{v['view']}: {v['error']}" for v in s["views"] if v.get("error")]
    notes += [f"warning: {w}" for w in attrs.get("warnings", [])]
    if sync := attrs.get("sync"):
        from .sync import said

        offsets = ", ".join(
            f"{v} {said(e.get('offset') if e.get('offset') is not None else np.nan)} "
            f"({e.get('method')})"
            for v, e in sync.get("views", {}).items()
        )
        ref = sync.get("reference")
        notes.append(f"views aligned by their offsets, frames of {ref}: {offsets}")
    notes += [f"stale: {k}: {why}" for k, why in s["stale"].items()]
    notes += [f"damaged: {p}" for p in s["problems"]]
    notes += [
        f"{group}: {who} cannot be trusted: {doubt_line(d)}"
        for group, g in s["groups"].items()
        for who, d in g.get("doubts", {}).items()
    ]
    return notes


def _legend_outside(fig) -> None:
    """Put a figure's legend right of the plot, where it hides no line; a click hides a line."""
    if fig.legend:
        legend = fig.legend[0]
        legend.click_policy = "hide"
        fig.add_layout(legend, "right")


def _detection_plot(store: Path, unit: str, colours: dict[str, str]):
    """Plot the detection rate per view over time, each view in its colour.

    None for a store without confidences.
    """
    tracks = _store.open_arrays(store)
    if "confidence" not in set(tracks.array_keys()):
        return None
    time = tracks["time"][:]
    confidence = tracks["confidence"]
    views = [str(v) for v in tracks["view"][:]]
    shifts = _view_clocks(store, tracks, views, time)
    title = "detection rate per view" + (" (on the reference's clock)" if shifts else "")
    fig = _over_time(title, unit, "% of keypoints found")
    for i, view in enumerate(views):
        found = np.isfinite(confidence[i]).reshape(len(time), -1).mean(1)
        x, y = _binned(100 * found, shifts[i] if shifts else time)
        fig.line(x, y, legend_label=view, color=colours.get(view, "#7f7f7f"), line_width=2)
    _legend_outside(fig)
    return fig


def _view_clocks(store: Path, tracks, views: list[str], time: np.ndarray) -> list | None:
    """Each view's frames' times on the reference's clock, when the store records offsets."""
    from .schema import FRAME_TIME
    from .sync import read_sync

    record = read_sync(store)
    if not record or FRAME_TIME not in set(tracks.array_keys()) or not record.get("fps"):
        return None
    frame_time = tracks[FRAME_TIME][:]
    offsets = record.get("offsets") or {}
    return [
        np.where(np.isfinite(frame_time[i]), frame_time[i], time)
        + (offsets.get(v) or 0.0) / record["fps"]
        for i, v in enumerate(views)
    ]


def _error_plot(store: Path, unit: str):
    """Plot the 3-D points' reprojection error (median over keypoints) over time, per person."""
    points = _store.open_group(store, POINTS3D)
    err = points.reprojection_error.transpose("time", "individual", "keypoint").values
    fig = _over_time("reprojection error (median over keypoints)", unit, "pixels")
    people = [str(p) for p in points.individual.values]
    colours = person_colours(people)
    for i, who in enumerate(people):
        with np.errstate(invalid="ignore"):
            per_frame = np.array(
                [np.nanmedian(e) if np.isfinite(e).any() else np.nan for e in err[:, i]]
            )
        x, y = _binned(per_frame, points.time.values)
        label = {"legend_label": who} if len(people) > 1 else {}
        fig.line(x, y, color=colours[who], line_width=2, **label)
    _legend_outside(fig)
    return fig


#: At most this many frames, evenly spread, are reprojected for the error per view.
VIEW_ERROR_FRAMES = 6000


def view_errors(store: str | Path) -> tuple[dict[str, np.ndarray], np.ndarray, str | None]:
    """Return each view's reprojection error per frame: its 2-D points against the 3-D ones.

    The ``points3d`` group's points are projected through each view's camera
    (the group's ``cameras`` attribute, as fitted to the videos) and compared
    with the view's own 2-D points of at least the triangulation's
    ``min_confidence``, on the 3-D time axis (the views aligned by the store's
    offsets) and with the view's left/right labels swapped where the
    triangulation swapped them. With several detections per view (or several
    people), each person's point is compared with the view's nearest detection
    of the same keypoint, as :mod:`mocapflow.render` colours it.

    Parameters
    ----------
    store : str or pathlib.Path
        A store with a whole ``points3d`` group.

    Returns
    -------
    errors : dict of str to numpy.ndarray
        Per view, the median over keypoints in each frame (px; NaN where none).
    time : numpy.ndarray
        The frames' times (at most :data:`VIEW_ERROR_FRAMES`, evenly spread).
    reason : str or None
        Why there are no figures, when there are none.

    """
    from .calib.camera import Camera
    from .sync import align, stored_alignment
    from .triangulate import left_right_pairs

    points = _store.open_group(store, POINTS3D)
    tracks = _store.open_tracks(store)
    table = points.attrs.get("cameras") or {}
    if not table:
        return (
            {},
            np.zeros(0),
            (
                "the 3-D group records no cameras (triangulated by an earlier mocapflow): "
                "triangulate again for the error per view"
            ),
        )
    tracks = align(tracks, stored_alignment(store, tracks))
    n = int(points.sizes["time"])
    if int(tracks.sizes["time"]) != n:
        return {}, np.zeros(0), "the 2-D and 3-D time axes differ: no error per view"
    frames = np.unique(np.linspace(0, n - 1, min(n, VIEW_ERROR_FRAMES)).astype(int))
    xyz = points.position.isel(time=frames).transpose("individual", "time", "keypoint", "space")
    xyz = np.asarray(xyz.values, np.float64)  # (person, time, keypoint, 3)
    swapped_views = [str(v) for v in points.lr_swapped.view.values]
    swapped = points.lr_swapped.isel(time=frames)
    swapped = swapped.transpose("view", "individual", "time", "keypoint").values
    min_conf = float((points.attrs.get("triangulation") or {}).get("min_confidence", 0.0))
    pairs = left_right_pairs([str(k) for k in points.keypoint.values])
    left, right = pairs[:, 0], pairs[:, 1]
    known = np.isfinite(xyz).all(-1)  # (person, time, keypoint)
    errors = {}
    for view in map(str, tracks.view.values):
        if view not in table:
            continue
        one = tracks.sel(view=view).isel(time=frames)
        pos = one.position.transpose("time", "keypoint", "individual", "space").values
        all_uv = np.asarray(pos, np.float64)  # (time, keypoint, slot, 2)
        all_conf = np.asarray(
            one.confidence.transpose("time", "keypoint", "individual").values, np.float64
        )
        camera = Camera.from_dict(table[view])
        per_person = []
        for j in range(xyz.shape[0]):
            uv, conf = all_uv.copy(), all_conf.copy()
            if view in swapped_views and len(pairs):  # the labels as the triangulation used
                sw = swapped[swapped_views.index(view), j][:, left][..., None]
                uv[:, left], uv[:, right] = (
                    np.where(sw[..., None], uv[:, right], uv[:, left]),
                    np.where(sw[..., None], uv[:, left], uv[:, right]),
                )
                conf[:, left], conf[:, right] = (
                    np.where(sw, conf[:, right], conf[:, left]),
                    np.where(sw, conf[:, left], conf[:, right]),
                )
            reprojected = camera.project(np.where(known[j][..., None], xyz[j], 0.0))
            d = np.linalg.norm(reprojected[:, :, None] - uv, axis=-1)  # (time, keypoint, slot)
            with np.errstate(invalid="ignore"):
                d = np.where(np.isfinite(d) & (conf >= min_conf), d, np.inf).min(axis=-1)
            per_person.append(np.where(known[j] & np.isfinite(d), d, np.nan))
        d = np.concatenate(per_person, axis=1)  # (time, keypoint x person)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a frame without points is NaN
            errors[view] = np.nanmedian(d, axis=1)
    return errors, np.asarray(points.time.values[frames], np.float64), None


def _view_error_plot(errors: dict, time: np.ndarray, unit: str, colours: dict[str, str]):
    """Plot each view's reprojection error (median over keypoints) over time, in its colour."""
    fig = _over_time("reprojection error per view (median over keypoints)", unit, "pixels")
    for view, per_frame in errors.items():
        x, y = _binned(per_frame, time)
        fig.line(x, y, legend_label=view, color=colours.get(view, "#7f7f7f"), line_width=2)
    _legend_outside(fig)
    return fig


def _view_error_rows(errors: dict, colours: dict[str, str]) -> list[list[str]]:
    """Per view: the median and 90th percentile over frames of its error, and frames measured."""
    rows = []
    for view, per_frame in errors.items():
        finite = per_frame[np.isfinite(per_frame)]
        median = f"{np.median(finite):.1f} px" if finite.size else "-"
        p90 = f"{np.percentile(finite, 90):.1f} px" if finite.size else "-"
        rows.append([swatch(colours.get(view, "#7f7f7f"), view), median, p90, str(finite.size)])
    return rows


#: The angles the report plots, left against right.
MAIN_ANGLES = ("hip_flexion", "knee_flexion", "ankle_flexion", "shoulder_flexion", "elbow_flexion")
#: Left and right, in every kinematics plot.
SIDE_COLOURS = {"left": "#1f77b4", "right": "#d62728"}


def _kinematics_plots(store: Path, unit: str, records: dict) -> list:
    """Plot the main joint angles (left against right) and, under them, the IK marker error."""
    from bokeh.models import Span

    figures = []
    if ANGLES in records and _store.has_group(store, ANGLES):
        angles = _store.open_group(store, ANGLES)
        people = [str(p) for p in angles.individual.values]
        for joint in MAIN_ANGLES:
            fig = _over_time(joint.replace("_", " "), unit, "degrees")
            fig.height = 220
            for i, who in enumerate(people):
                for side, colour in SIDE_COLOURS.items():
                    values = angles[f"{side}_{joint}"].values[:, i]
                    x, y = _binned(values, angles.time.values)
                    label = f"{who} {side}" if len(people) > 1 else side
                    dash = "solid" if i == 0 else "dashed"
                    fig.line(x, y, color=colour, line_dash=dash, legend_label=label)
            fig.legend.location = "top_left"
            figures.append(fig)
    if IK in records and _store.has_group(store, IK):
        ik = _store.open_group(store, IK)
        fig = _over_time("OpenSim IK: marker error per frame (RMS)", unit, "mm")
        fig.height = 220
        for i, who in enumerate(map(str, ik.individual.values)):
            x, y = _binned(ik.marker_rms.values[:, i], ik.time.values)
            fig.line(x, y, line_dash="solid" if i == 0 else "dashed", legend_label=who)
        threshold = float(ik.attrs.get("flag_mm", 0)) or None
        if threshold:
            fig.add_layout(Span(location=threshold, dimension="width", line_color="grey",
                                line_dash="dotted"))  # fmt: skip
        figures.append(fig)
    return figures


def _gather(store: Path) -> dict:
    """Read what the report says of a store, once: facts, tables, notes and figures."""
    s = ledger.summary(store)
    attrs = s["attrs"]
    damaged = {p.group for p in s["problems"]}
    views = [v["view"] for v in s["views"]] or [
        str(v.get("name")) for v in attrs.get("views", []) if isinstance(v, dict)
    ]
    colours = view_colours(views)
    return {
        "summary": s,
        "unit": attrs.get("time_unit", "frames"),
        "views": views,
        "colours": colours,
        "facts": (
            f"{attrs.get('recording', '')}; tracker {attrs.get('tracker')} "
            f"{attrs.get('tracker_params', {})}; {attrs.get('start_time', '-')} to "
            f"{attrs.get('end_time', '-')}; cluster: {attrs.get('cluster', {}).get('reason', '-')}"
        ),
        "fact_rows": [
            ["recording", str(attrs.get("recording", "-"))],
            ["tracker", f"{attrs.get('tracker', '-')} {attrs.get('tracker_params', {}) or ''}"],
            ["started", str(attrs.get("start_time", "-"))],
            ["ended", str(attrs.get("end_time", "-"))],
            ["cluster", str(attrs.get("cluster", {}).get("reason", "-"))],
        ],
        "rows": [
            [swatch(colours.get(r[0], "#7f7f7f"), r[0]), *r[1:]]
            for r in _view_rows(s, ledger.done_chunks(store))
        ],
        "notes": _notes(s),
        "tracks_whole": None not in damaged,
        "points_whole": POINTS3D in s["groups"] and POINTS3D not in damaged,
        "player_group": next((g for g in ledger.complete_groups(store) if g not in damaged), None),
        "figures": [
            f"{g}: {v['triangulated'] * 100:.1f}% triangulated, reprojection error median "
            f"{v['median_error_px']:.1f} px, p90 {v['p90_error_px']:.1f} px, bone length CV "
            f"median {v['bone_cv_median']:.3f}"
            for g, v in s["groups"].items()
        ]
        + [f"{g}: {people_line(v['people'])}" for g, v in s["groups"].items() if v.get("people")],
    }


#: Image types the report embeds, by suffix.
_IMAGE_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
                ".webp": "image/webp", ".gif": "image/gif"}  # fmt: skip


def _thumbnails_html(thumbnails: dict[str, list[Path]], colours: dict[str, str]) -> str:
    """Return the "Rendered frames" part: each view's images, inline (base64), under its name."""
    parts = ["<h3>Rendered frames</h3>"]
    for view, paths in thumbnails.items():
        images = []
        for path in map(Path, paths):
            kind = _IMAGE_TYPES.get(path.suffix.lower())
            if kind is None or not path.is_file():
                logger.warning("run report: %s left out (no such image)", path)
                continue
            data = base64.b64encode(path.read_bytes()).decode("ascii")
            alt = html.escape(f"{view}: {path.name}")
            images.append(f"<img src='data:{kind};base64,{data}' alt='{alt}' title='{alt}'>")
        if images:
            parts.append(
                f"<p>{swatch(colours.get(view, '#7f7f7f'), view)}</p>"
                f"<div class='thumbs'>{''.join(images)}</div>"
            )
    return "".join(parts) if len(parts) > 1 else ""


#: The page: Bokeh's own file template, with the report's style and its parts in order
#: (HTML, or a Bokeh root embedded by name).
_TEMPLATE = """
{% block preamble %}<style>{{ style }}</style>{% endblock %}
{% block contents %}<main>
{%- for kind, value in blocks -%}
{%- if kind == "root" %}<div class="plot">{{ embed(roots[value]) }}</div>
{%- else %}{{ value }}{% endif -%}
{%- endfor -%}
</main>{% endblock %}
"""


def _player_part(store: Path, group: str, views: list[str]) -> str:
    """Return the 3-D player's HTML (:mod:`mocapflow.player`) for one group of the store."""
    from .player import player_html, prepare

    points = _store.open_group(store, group)
    if not int(points.sizes["time"]):
        return f"<p>{html.escape(group)} holds no frames: nothing to play.</p>"
    skeleton = ledger.root_attrs(store).get("skeleton")
    player = prepare(points, views, points.attrs.get("skeleton") or skeleton, group=group)
    return player_html(player)


def write_run_report(store: str | Path, thumbnails: dict[str, list[Path]] | None = None) -> Path:
    """Write the run report of a store; return its path.

    The page has five sections: Summary (the run's facts, failures and
    warnings, the 3-D figures), Views (each in its colour of
    :func:`mocapflow.palette.view_colours`: the table and the detection rate),
    3-D (the player of :mod:`mocapflow.player`, and rendered frames when
    given), Quality (the reprojection error per view and per person) and, after
    ``kinematics``, Kinematics. Damaged parts are named, never read.

    Parameters
    ----------
    store : str or pathlib.Path
        The store.
    thumbnails : dict of str to list of pathlib.Path, optional
        Per view, images (PNG, JPEG, WebP or GIF) of rendered frames, embedded
        in the 3-D section under "Rendered frames" (the page stays one file);
        default, those of the store's last render (:func:`mocapflow.ledger.render_record`).

    Returns
    -------
    pathlib.Path
        :func:`run_report_path` of the store.

    """
    from bokeh.embed import file_html
    from bokeh.resources import INLINE

    store = Path(store)
    if thumbnails is None:  # the last render's, when there was one (mocapflow render)
        thumbnails = ledger.render_record(store).get("thumbnails") or None
    got = _gather(store)
    colours, unit = got["colours"], got["unit"]
    blocks: list[tuple[str, str]] = []
    models = []

    def plot(fig) -> None:
        fig.name = f"plot{len(models)}"
        models.append(fig)
        blocks.append(("root", fig.name))

    def text(value: str) -> None:
        blocks.append(("html", value))

    text(f"<h1>mocapflow run: {html.escape(store.name)}</h1>")
    text(section("Summary", "summary"))
    text(facts(got["fact_rows"]))
    if got["figures"]:
        text(bullets(got["figures"], ""))
    text("<h3>Failures, warnings and damage</h3>")
    text(bullets(got["notes"], "No failures, warnings or damage."))

    text(section("Views", "views"))
    header = ["view", "status", "frames", "decoded", "frames/s per task", "detected"]
    text(table(got["rows"], header, raw={0}))
    if got["tracks_whole"] and (fig := _detection_plot(store, unit, colours)) is not None:
        plot(fig)

    text(section("3-D", "3d"))
    if got["player_group"]:
        try:
            text(_player_part(store, got["player_group"], got["views"]))
        except ImportError:
            text("<p>The 3-D player needs plotly: pip install plotly</p>")
        except Exception as exc:  # the report ends every run: a failure here is said
            logger.warning("run report: no 3-D player: %s", exc)
            text(f"<p>No 3-D player: {html.escape(str(exc))}</p>")
    elif got["points_whole"] or got["summary"]["groups"]:
        text("<p>No whole 3-D group to play (see Failures, warnings and damage).</p>")
    else:
        text("<p>No 3-D points: triangulate the store (mocapflow triangulate STORE -c CALIB).</p>")
    if thumbnails:
        text(_thumbnails_html(thumbnails, colours))

    text(section("Quality", "quality"))
    if got["points_whole"]:
        try:
            errors, times, reason = view_errors(store)
        except Exception as exc:  # as the player: said, not raised
            logger.warning("run report: no error per view: %s", exc)
            errors, times, reason = {}, np.zeros(0), f"no error per view: {exc}"
        if errors:
            text(
                "<p class='note'>Each view's 2-D points (at least the triangulation's "
                "confidence) against the 3-D points of <code>points3d</code> projected through "
                "its camera.</p>"
            )
            plot(_view_error_plot(errors, times, unit, colours))
            text(table(_view_error_rows(errors, colours), ["view", "median", "p90", "frames"],
                       raw={0}))  # fmt: skip
        elif reason:
            text(f"<p class='note'>{html.escape(reason)}</p>")
        plot(_error_plot(store, unit))
    else:
        text("<p>No 3-D points to measure.</p>")

    records = ledger.group_records(store) if got["points_whole"] else {}
    if any(g in records for g in (ANGLES, IK)):
        text(section("Kinematics", "kinematics"))
        for fig in _kinematics_plots(store, unit, records):
            plot(fig)

    if not models:  # a store with nothing to plot (framestats, every view failed)
        from bokeh.models import Div

        models.append(Div(text="", name="empty"))  # Bokeh's page needs one model; not placed
    path = run_report_path(store)
    tmp = path.with_name(path.name + ".partial")
    page = file_html(
        models,
        resources=INLINE,
        title=f"mocapflow: {store.name}",
        template=_TEMPLATE,
        template_variables={"blocks": blocks, "style": STYLE},
    )
    tmp.write_text(page)
    tmp.replace(path)
    return path
