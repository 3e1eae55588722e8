"""The run report's 3-D player: every person's skeleton over time, and the cameras (plotly).

Bokeh draws no 3-D, so the player is a plotly scene (its JavaScript inlined:
the page works offline) driven by a few lines of JavaScript of its own: a
play/pause button, a time slider and the frame's time under it; plotly gives
the orbit (turntable about the world's up axis) and the zoom. A link to the
page ending in ``#frame=N`` opens the player at the recording's frame ``N``.

A long recording would make a page too heavy to open, so the player shows at
most :data:`MAX_FRAMES` frames, every k-th (:func:`decimation`), with
coordinates rounded to the millimetre, and says so on the page; the store
holds every frame.
"""

from __future__ import annotations

import html
import json
import logging
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .palette import person_colours, view_colours

if TYPE_CHECKING:
    import xarray as xr

__all__ = ["MAX_FRAMES", "Player", "decimation", "ordinal", "player_html", "prepare", "up_vector"]

logger = logging.getLogger(__name__)

#: Most frames the player holds; a longer recording is shown every k-th frame.
MAX_FRAMES = 300
#: Shortest time (ms) between two shown frames while playing.
MIN_DELAY_MS = 33
#: The scene's background: a test finds the player in a screenshot by it.
SCENE_BACKGROUND = "#f4f6f9"
#: The element the player is drawn in.
DIV_ID = "player3d"


def ordinal(n: int) -> str:
    """Return ``1st``, ``2nd``, ``3rd``, ``4th``... ``11th``, ``12th``, ``21st``..."""
    if 10 <= n % 100 <= 20:
        return f"{n}th"
    return f"{n}{ {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th') }"


def decimation(n_frames: int, limit: int = MAX_FRAMES) -> tuple[int, str]:
    """Return the step between shown frames and the sentence that says so on the page.

    Parameters
    ----------
    n_frames : int
        Frames in the 3-D group.
    limit : int
        Most frames shown.

    Returns
    -------
    step : int
        Every ``step``-th frame is shown (1: all of them).
    sentence : str
        E.g. ``showing every 120th frame (300 of 36000) for display; the store
        holds them all``.

    """
    step = max(1, math.ceil(n_frames / max(1, limit)))
    shown = len(range(0, n_frames, step))
    if step == 1:
        return 1, f"showing all {n_frames} frames"
    return step, (
        f"showing every {ordinal(step)} frame ({shown} of {n_frames}) for display; "
        "the store holds them all"
    )


#: A guessed up direction within this angle (degrees) of a world axis is that axis.
SNAP_DEG = 15.0


def _axis_name(up: np.ndarray) -> str:
    i = int(np.argmax(np.abs(up)))
    return ("-" if up[i] < 0 else "+") + "xyz"[i]


def up_vector(
    up_axis: str | None, camera_ups: np.ndarray | None = None
) -> tuple[np.ndarray, str | None]:
    """Return the world's up direction, and a note when it is a guess.

    Parameters
    ----------
    up_axis : str or None
        The 3-D group's ``up_axis`` attribute: ``+z``, ``-y``, ``y``...
    camera_ups : numpy.ndarray, optional
        ``(camera, 3)``: each camera's image up (its -y) in world coordinates.

    Returns
    -------
    up : numpy.ndarray
        Unit vector, world coordinates.
    note : str or None
        Said on the page when the calibration does not say which way is up.
        Then the calibration's -y is drawn up: image rows grow downwards, so a
        camera standing level sees its -y up, and a calibration whose world is
        its first camera's has -y up. With the cameras known, their images' -y
        on average is drawn up (the world axis nearest it, when within
        :data:`SNAP_DEG`), so a world of any orientation stands upright.

    """
    text = (up_axis or "").strip().lower()
    if len(text) in (1, 2) and text[-1] in "xyz" and text[:-1] in ("", "+", "-"):
        up = np.zeros(3)
        up["xyz".index(text[-1])] = -1.0 if text.startswith("-") else 1.0
        return up, None
    said = f" ({up_axis!r} is no axis)" if up_axis else ""
    lead = f"the calibration does not say which way is up{said}"
    mean = np.zeros(3) if camera_ups is None or not len(camera_ups) else camera_ups.mean(0)
    if np.linalg.norm(mean) < 1e-6:
        return np.array([0.0, -1.0, 0.0]), f"{lead}: drawn with its -y up"
    mean = mean / np.linalg.norm(mean)
    axis = _axis_name(mean)
    snapped, _ = up_vector(axis)
    if np.degrees(np.arccos(np.clip(mean @ snapped, -1, 1))) <= SNAP_DEG:
        return snapped, f"{lead}: drawn with {axis} up, the cameras' up (their images' -y)"
    where = ", ".join(f"{v:.2f}" for v in mean)
    return mean, f"{lead}: drawn with the cameras' up (their images' -y) up: ({where})"


@dataclass(frozen=True)
class Player:
    """What the player draws, ready for the page.

    Attributes
    ----------
    group : str
        The 3-D group shown.
    frames : numpy.ndarray
        The shown frames' indices in the group.
    times : numpy.ndarray
        Their times (``unit``).
    unit : str
        ``seconds`` or ``frames``.
    people : list of str
        The group's individuals, in order.
    positions : numpy.ndarray
        ``(person, shown frame, keypoint, 3)`` mm, rounded to integers, NaN where missing.
    bones : numpy.ndarray
        ``(bone, 2)`` keypoint indices.
    cameras : list of tuple
        ``(view, centre, axis end)``: the camera's centre and a point along its
        optical axis, world mm.
    colours : dict of str to str
        Per person and per view.
    up : numpy.ndarray
        The world's up direction.
    notes : list of str
        Said above the player: the frames shown, a guessed up axis.
    fps : float or None
        The recording's frame rate: playing keeps to it where the page can.

    """

    group: str
    frames: np.ndarray
    times: np.ndarray
    unit: str
    people: list[str]
    positions: np.ndarray
    bones: np.ndarray
    cameras: list[tuple[str, np.ndarray, np.ndarray]]
    colours: dict[str, str]
    up: np.ndarray
    notes: list[str]
    fps: float | None


def _bones(keypoints: list[str], skeleton: list | None) -> np.ndarray:
    index = {k: i for i, k in enumerate(keypoints)}
    pairs = [(index[a], index[b]) for a, b in skeleton or () if a in index and b in index]
    return np.array(pairs, dtype=np.int64).reshape(-1, 2)


def _cameras(table: dict, views: list[str], length: float) -> list:
    """Each camera's centre and a point ``length`` mm along its optical axis, store order."""
    from .calib.camera import Camera

    out = []
    for name in [v for v in views if v in table] + [v for v in table if v not in views]:
        try:
            cam = Camera.from_dict(table[name])
        except (KeyError, TypeError, ValueError) as exc:  # a hand-edited record: skip it
            logger.warning("camera %s left out of the 3-D player: %s", name, exc)
            continue
        centre = cam.center
        axis = cam.rotation_matrix.T @ np.array([0.0, 0.0, 1.0])
        out.append((str(name), centre, centre + length * axis))
    return out


def _camera_ups(table: dict) -> np.ndarray:
    """Return each camera's image up (its -y) in world coordinates, ``(camera, 3)``."""
    from .calib.camera import Camera

    ups = []
    for record in table.values():
        try:
            ups.append(Camera.from_dict(record).rotation_matrix.T @ np.array([0.0, -1.0, 0.0]))
        except (KeyError, TypeError, ValueError):  # said by _cameras
            continue
    return np.array(ups).reshape(-1, 3)


def prepare(
    points: xr.Dataset,
    views: list[str],
    skeleton: list | None = None,
    *,
    group: str = "",
    limit: int = MAX_FRAMES,
) -> Player:
    """Read what the player shows from a 3-D group: the shown frames only.

    Parameters
    ----------
    points : xarray.Dataset
        The 3-D group (``position`` in mm; attributes ``up_axis``, ``cameras``,
        ``skeleton``).
    views : list of str
        The store's views, in the store's order (their colours).
    skeleton : list of pairs of str, optional
        Bones; default the group's ``skeleton`` attribute.
    group : str
        The group's name, said on the page.
    limit : int
        Most frames shown (:func:`decimation`).

    Returns
    -------
    Player

    """
    n = int(points.sizes["time"])
    step, sentence = decimation(n, limit)
    frames = np.arange(0, n, step)
    position = points.position.isel(time=frames).transpose(
        "individual", "time", "keypoint", "space"
    )
    values = np.round(np.asarray(position.values, np.float64))
    keypoints = [str(k) for k in points.keypoint.values]
    people = [str(p) for p in points.individual.values]
    skeleton = skeleton if skeleton is not None else points.attrs.get("skeleton")
    finite = values[np.isfinite(values).all(-1)]
    spread = np.percentile(finite, [1, 99], axis=0) if len(finite) else np.zeros((2, 3))
    extent = float((spread[1] - spread[0]).max())  # the people's size, a few wild points aside
    table = points.attrs.get("cameras") or {}
    cameras = _cameras(table, views, max(extent, 500.0) * 0.25)
    up, up_note = up_vector(points.attrs.get("up_axis"), _camera_ups(table))
    notes = [sentence] + ([up_note] if up_note else [])
    if not cameras:
        notes.append("the group records no cameras (triangulated before they were recorded)")
    colours = {**view_colours(views), **person_colours(people)}
    fps = points.attrs.get("fps")
    return Player(
        group=group,
        frames=frames,
        times=np.asarray(points.time.values[frames], np.float64),
        unit=str(points.attrs.get("time_unit", "frames")),
        people=people,
        positions=values,
        bones=_bones(keypoints, skeleton),
        cameras=cameras,
        colours=colours,
        up=up,
        notes=notes,
        fps=float(fps) if fps else None,
    )


def _ranges(player: Player) -> list[list[float]]:
    """Return fixed axis ranges over every shown frame and camera (the scene does not jump)."""
    pts = player.positions.reshape(-1, 3)
    pts = pts[np.isfinite(pts).all(-1)]
    if len(pts):  # a few wild points do not shrink the body to a dot
        lo, hi = np.percentile(pts, 0.5, axis=0), np.percentile(pts, 99.5, axis=0)
    else:
        lo, hi = np.full(3, -1000.0), np.full(3, 1000.0)
    for _, centre, end in player.cameras:
        lo, hi = np.minimum(lo, np.minimum(centre, end)), np.maximum(hi, np.maximum(centre, end))
    pad = 0.05 * max(float((hi - lo).max()), 100.0)
    return [[float(a - pad), float(b + pad)] for a, b in zip(lo, hi, strict=True)]


def _eye(up: np.ndarray) -> dict:
    """Return a viewpoint from the side and a little above, in plotly's scene units."""
    side = np.ones(3) - np.abs(up)  # the two horizontal axes
    eye = 0.95 * side + 0.35 * up
    return dict(zip("xyz", map(float, eye), strict=True))


def figure(player: Player):
    """Return the plotly figure of the first shown frame (the JavaScript moves it)."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for who in player.people:
        fig.add_trace(
            go.Scatter3d(
                x=[], y=[], z=[], name=who, mode="lines+markers",
                line={"color": player.colours[who], "width": 6},
                marker={"color": player.colours[who], "size": 3 if len(player.bones) else 5},
                hoverinfo="name",
            )
        )  # fmt: skip
    for name, centre, end in player.cameras:
        colour = player.colours.get(name, "#7f7f7f")
        fig.add_trace(
            go.Scatter3d(
                x=[centre[0], end[0]], y=[centre[1], end[1]], z=[centre[2], end[2]],
                name=name, mode="lines+markers+text", text=[name, ""],
                textposition="top center", textfont={"color": colour, "size": 13},
                marker={"color": colour, "size": [7, 0], "symbol": "diamond"},
                line={"color": colour, "width": 4}, hoverinfo="name", legendgroup="cameras",
                legendgrouptitle={"text": "cameras"} if name == player.cameras[0][0] else None,
            )
        )  # fmt: skip
    ranges = _ranges(player)
    size = [b - a for a, b in ranges]
    scale = max(size)
    axis = {"backgroundcolor": SCENE_BACKGROUND, "gridcolor": "#d5dbe3", "showspikes": False}
    fig.update_layout(
        scene={
            **{f"{c}axis": {**axis, "range": r, "title": {"text": f"{c} (mm)"}}
               for c, r in zip("xyz", ranges, strict=True)},
            # "data" aspect with fixed ranges: one mm is one mm along every axis
            "aspectmode": "manual",
            "aspectratio": dict(zip("xyz", (s / scale for s in size), strict=True)),
            "camera": {"up": dict(zip("xyz", map(float, player.up), strict=True)),
                       "eye": _eye(player.up)},
            "dragmode": "turntable",
        },
        margin={"l": 0, "r": 0, "t": 0, "b": 0},
        height=640,
        legend={"itemsizing": "constant", "x": 0.01, "y": 0.99, "bgcolor": "rgba(255,255,255,0.6)"},
        uirevision="keep",
        paper_bgcolor="white",
    )  # fmt: skip
    return fig


def _frames_json(player: Player) -> str:
    """``[person][frame]`` flat lists ``x0, y0, z0, x1...`` of integers (null: missing)."""
    out = []
    for person in player.positions:
        flat = person.reshape(len(person), -1)
        out.append(
            [[int(v) if math.isfinite(v) else None for v in frame] for frame in flat.tolist()]
        )
    return json.dumps(out, separators=(",", ":"))


_SCRIPT = """
(function () {
  const P = %(data)s;
  const gd = document.getElementById(P.div);
  const slider = document.getElementById(P.div + "-slider");
  const button = document.getElementById(P.div + "-play");
  const label = document.getElementById(P.div + "-time");
  let current = 0, playing = false, busy = false;
  function coords(flat) {
    const x = [], y = [], z = [];
    const put = (i) => { x.push(flat[3 * i]); y.push(flat[3 * i + 1]); z.push(flat[3 * i + 2]); };
    const gap = () => { x.push(null); y.push(null); z.push(null); };
    const used = new Set();
    for (const [a, b] of P.bones) { put(a); put(b); gap(); used.add(a); used.add(b); }
    for (let i = 0; i < flat.length / 3; i++) { if (!used.has(i)) { put(i); gap(); } }
    return [x, y, z];
  }
  function say(i) {
    const t = P.times[i];
    const when = P.unit === "seconds" ? t.toFixed(2) + " s" : "";
    label.textContent = "frame " + P.frames[i] + (when ? " \\u00b7 " + when : "") +
      " (" + (i + 1) + " of " + P.frames.length + " shown)";
  }
  function show(i) {
    current = Math.max(0, Math.min(P.frames.length - 1, i));
    slider.value = current;
    say(current);
    const xs = [], ys = [], zs = [], traces = [];
    P.people.forEach((_, p) => {
      const [x, y, z] = coords(P.positions[p][current]);
      xs.push(x); ys.push(y); zs.push(z); traces.push(p);
    });
    if (!traces.length) return Promise.resolve();
    return Plotly.restyle(gd, {x: xs, y: ys, z: zs}, traces);
  }
  function step() {
    if (!playing) return;
    const next = (current + 1) %% P.frames.length;
    const started = performance.now();
    show(next).then(() => {
      const spent = performance.now() - started;
      setTimeout(step, Math.max(0, P.delay - spent));
    });
  }
  function play(on) {
    playing = on;
    button.textContent = on ? "\\u23f8 pause" : "\\u25b6 play";
    if (on) step();
  }
  function fromHash(scroll) {
    const m = /(?:^|[#&;,])frame=(\\d+)/.exec(window.location.hash);
    if (!m) return false;
    const wanted = parseInt(m[1], 10);
    let best = 0;
    P.frames.forEach((f, i) => {
      if (Math.abs(f - wanted) < Math.abs(P.frames[best] - wanted)) best = i;
    });
    play(false);
    show(best);
    if (scroll) gd.parentElement.scrollIntoView();
    return true;
  }
  Plotly.newPlot(gd, P.figure.data, P.figure.layout, P.config).then(() => {
    slider.max = P.frames.length - 1;
    slider.addEventListener("input", () => {
      play(false);
      show(parseInt(slider.value, 10));
    });
    button.addEventListener("click", () => play(!playing));
    window.addEventListener("hashchange", () => fromHash(true));
    if (!fromHash(false)) show(0);
    gd.dataset.ready = "1";
  });
})();
"""


def player_html(player: Player) -> str:
    """Return the player's HTML: plotly's JavaScript, the scene, its controls and the data.

    The page needs nothing from the network: plotly's JavaScript is inlined.
    """
    import plotly.io as pio
    from plotly.offline import get_plotlyjs

    fig = json.loads(pio.to_json(figure(player), validate=False))
    delay = 1000.0 * (int(player.frames[1] - player.frames[0]) if len(player.frames) > 1 else 1)
    delay = max(MIN_DELAY_MS, delay / player.fps) if player.fps else 100.0
    data = {
        "div": DIV_ID,
        "figure": fig,
        "config": {"responsive": True, "displaylogo": False, "scrollZoom": True},
        "frames": player.frames.tolist(),
        "times": [round(float(t), 4) for t in player.times],
        "unit": player.unit,
        "people": player.people,
        "bones": player.bones.tolist(),
        "delay": round(delay),
    }
    text = json.dumps(data, separators=(",", ":"))
    # the positions are written as they are (no float formatting on the way)
    text = text[:-1] + ',"positions":' + _frames_json(player) + "}"
    script = _SCRIPT % {"data": text.replace("</", "<\\/")}
    notes = "".join(f"<p class='note'>{html.escape(n)}</p>" for n in player.notes)
    people = ", ".join(
        f"<span class='swatch' style='background:{player.colours[p]}'></span>{html.escape(p)}"
        for p in player.people
    )
    return (
        f"<p>The skeleton of every person in <code>{html.escape(player.group)}</code> "
        f"({people}), with the cameras (their optical axes drawn short). Drag to orbit, "
        "scroll to zoom; a link to this page ending in <code>#frame=N</code> sets the player "
        "to the recording's frame N.</p>"
        f"{notes}"
        f"<div class='player'>"
        f"<div class='controls'><button id='{DIV_ID}-play' type='button'>&#9654; play</button>"
        f"<input id='{DIV_ID}-slider' type='range' min='0' max='0' value='0' step='1' "
        f"aria-label='frame'>"
        f"<span id='{DIV_ID}-time' class='time'></span></div>"
        f"<div id='{DIV_ID}' class='scene'></div></div>"
        f"<script>{get_plotlyjs()}</script>"
        f"<script>{script}</script>"
    )
