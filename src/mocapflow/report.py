"""The run report a lab keeps: one self-contained HTML page about a store (Bokeh, inline).

Beside Dask's performance report (how the cluster spent its time), this one
says what was recorded and what came out: each view's frames, status, frames
per second of its tasks and detection rate over time, the failures and
warnings, and for 3-D runs the reprojection error over time and the bones'
stability; after ``kinematics``, the main joint angles (left against right) and
the IK marker error under them.
"""

from __future__ import annotations

import html
import warnings
from pathlib import Path

import numpy as np

from . import ledger
from . import store as _store
from .page import bullets, table
from .quality import doubt_line, people_line
from .schema import ANGLES, IK, POINTS3D

__all__ = ["run_report_path", "write_run_report"]

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


def _detection_plot(store: Path, unit: str):
    """Plot the detection rate per view over time; None for a store without confidences."""
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
        fig.line(x, y, legend_label=view)
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
    several = points.sizes["individual"] > 1
    for i, who in enumerate(map(str, points.individual.values)):
        with np.errstate(invalid="ignore"):
            per_frame = np.array(
                [np.nanmedian(e) if np.isfinite(e).any() else np.nan for e in err[:, i]]
            )
        x, y = _binned(per_frame, points.time.values)
        fig.line(x, y, **({"legend_label": who} if several else {}))
    return fig


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
    return {
        "summary": s,
        "unit": attrs.get("time_unit", "frames"),
        "facts": (
            f"{attrs.get('recording', '')}; tracker {attrs.get('tracker')} "
            f"{attrs.get('tracker_params', {})}; {attrs.get('start_time', '-')} to "
            f"{attrs.get('end_time', '-')}; cluster: {attrs.get('cluster', {}).get('reason', '-')}"
        ),
        "rows": _view_rows(s, ledger.done_chunks(store)),
        "notes": _notes(s),
        "tracks_whole": None not in damaged,
        "points_whole": POINTS3D in s["groups"] and POINTS3D not in damaged,
        "figures": [
            f"{g}: {v['triangulated'] * 100:.1f}% triangulated, reprojection error median "
            f"{v['median_error_px']:.1f} px, p90 {v['p90_error_px']:.1f} px, bone length CV "
            f"median {v['bone_cv_median']:.3f}"
            for g, v in s["groups"].items()
        ]
        + [f"{g}: {people_line(v['people'])}" for g, v in s["groups"].items() if v.get("people")],
    }


def write_run_report(store: str | Path) -> Path:
    """Write the run report of a store; return its path.

    Damaged parts are named, never read.
    """
    from bokeh.embed import file_html
    from bokeh.layouts import column
    from bokeh.models import Div
    from bokeh.resources import INLINE

    store = Path(store)
    got = _gather(store)
    header = ["view", "status", "frames", "decoded", "frames/s per task", "detected"]
    parts = [
        Div(
            text=f"<h1>mocapflow run: {html.escape(store.name)}</h1>"
            f"<p>{html.escape(got['facts'])}</p>"
        ),
        Div(text=table(got["rows"], header)),
        Div(text=bullets(got["notes"], "No failures, warnings or damage.")),
    ]
    if got["tracks_whole"] and (fig := _detection_plot(store, got["unit"])) is not None:
        parts.append(fig)
    if got["points_whole"]:
        parts.append(_error_plot(store, got["unit"]))
        parts.append(Div(text=bullets(got["figures"], "")))
        records = ledger.group_records(store)
        if any(g in records for g in (ANGLES, IK)):
            parts.append(Div(text="<h2>Kinematics</h2>"))
            parts += _kinematics_plots(store, got["unit"], records)
    path = run_report_path(store)
    tmp = path.with_name(path.name + ".partial")
    tmp.write_text(file_html(column(*parts), resources=INLINE, title=f"mocapflow: {store.name}"))
    tmp.replace(path)
    return path
