"""Calibration boards: how they are described, found, and what to check when they are not.

Boards are described by ``--board``, a ``board.toml`` or caliscope's
``charuco.toml``; :func:`board_tracker` gives the tracker that finds one.

A board is a dict of parameters with a ``type``: ``charuco`` (the default;
squares, square length, marker ratio, dictionary, the legacy pattern, inverted
colours) or ``checkerboard`` (inner corners and square length, as Pose2Sim's
demo uses). Lengths are in the world unit, mm.
"""

from __future__ import annotations

import logging
import tomllib
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ..errors import CalibrationError, UsageError
from ..trackers import Charuco, Checkerboard, TrackerError, get_tracker

__all__ = [
    "BOARD_DEFAULTS",
    "BOARD_TYPES",
    "BoardProbe",
    "board_tracker",
    "probe_board",
    "sample_indices",
    "read_board",
]

logger = logging.getLogger(__name__)

#: FreeMoCap's default board; ``square_length`` in the world unit (mm).
BOARD_DEFAULTS = {
    "squares_x": 7,
    "squares_y": 5,
    "square_length": 120.0,
    "marker_ratio": 0.8,
    "dictionary": "DICT_4X4_250",
    "legacy": False,
    "inverted": False,
}
#: Each board type's parameters and their defaults (the tracker of the same name takes them).
BOARD_TYPES = {
    "charuco": BOARD_DEFAULTS,
    "checkerboard": {"corners_x": 4, "corners_y": 7, "square_length": 60.0, "inverted": False},
}
#: A sampled frame counts as showing the board with this many corners (fit.MIN_CORNERS).
PROBE_CORNERS = 6
#: caliscope's length units, in mm.
_UNITS_MM = {"inch": 25.4, "cm": 10.0, "mm": 1.0, "m": 1000.0}
#: ArUco families tried when no board is found (each family's largest pool holds the others).
_FAMILIES = (
    "DICT_4X4_1000",
    "DICT_5X5_1000",
    "DICT_6X6_1000",
    "DICT_7X7_1000",
    "DICT_ARUCO_ORIGINAL",
    "DICT_APRILTAG_36h11",
)


def _from_caliscope(table: dict, path: Path) -> dict:
    """Read caliscope's ``charuco.toml`` (columns, rows, aruco_scale, square size in cm)."""
    units = _UNITS_MM.get(str(table.get("units", "inch")))
    if units is None:
        raise CalibrationError(f"{path}: unknown units {table.get('units')!r}; use inch or cm")
    columns, rows = int(table["columns"]), int(table["rows"])
    override = table.get("square_size_override_cm")
    if override:
        square = float(override) * 10.0
    else:  # caliscope fits the squares to the sheet
        square = min(float(table["board_width"]) / columns, float(table["board_height"]) / rows)
        square *= units
    return {
        "type": "charuco",
        "squares_x": columns,
        "squares_y": rows,
        "square_length": square,
        "marker_ratio": float(table.get("aruco_scale", 0.75)),
        "dictionary": str(table.get("dictionary", "DICT_4X4_50")),
        "legacy": bool(table.get("legacy_pattern", False)),
        "inverted": bool(table.get("inverted", False)),
    }


def read_board(path: str | Path) -> dict:
    """Read a board: mocapflow's ``board.toml`` or caliscope's ``charuco.toml``.

    ``board.toml`` holds a ``[board]`` table (or top-level keys) with ``type``
    and the parameters of :data:`BOARD_TYPES`, e.g.::

        [board]
        type = "charuco"
        squares_x = 4
        squares_y = 5
        square_length = 54.0   # mm
        marker_ratio = 0.75
        dictionary = "DICT_4X4_1000"
        inverted = true

    Parameters
    ----------
    path : str or pathlib.Path
        The file.

    Returns
    -------
    dict
        The board's parameters, with ``type``.

    Raises
    ------
    CalibrationError
        If the file is missing or not a board description.

    """
    path = Path(path)
    try:
        table = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise CalibrationError(f"{path}: board file not found; give an existing .toml") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, OSError) as exc:
        raise CalibrationError(f"{path}: not a readable board TOML ({exc})") from None
    try:
        if "columns" in table and "rows" in table:
            return _from_caliscope(table, path)
        board = dict(table.get("board", table))
    except (KeyError, TypeError, ValueError) as exc:
        raise CalibrationError(f"{path}: incomplete board description ({exc})") from None
    board.setdefault("type", "charuco")
    if board["type"] not in BOARD_TYPES:
        raise CalibrationError(
            f"{path}: board type {board['type']!r} unknown; use one of {', '.join(BOARD_TYPES)}"
        )
    return board


def board_tracker(board: dict | str | Path | None = None) -> Charuco | Checkerboard:
    """Return the tracker that finds a board (FreeMoCap's ChArUco board by default).

    Parameters
    ----------
    board : dict, path or None
        Parameters (with an optional ``type``; values may be text, as the
        command line gives them), or a board file (see :func:`read_board`).

    Raises
    ------
    UsageError
        If a parameter is unknown or invalid (the message names it).

    """
    if isinstance(board, str | Path):
        board = read_board(board)
    params = dict(board or {})
    kind = str(params.pop("type", "charuco"))
    if kind not in BOARD_TYPES:
        raise UsageError(f"--board type={kind}: choose one of {', '.join(BOARD_TYPES)}")
    params = {**BOARD_TYPES[kind], **params}
    unknown = set(params) - set(BOARD_TYPES[kind])
    if unknown:
        raise UsageError(
            f"--board: unknown {kind} board parameter(s) {sorted(unknown)}; "
            f"valid: type, {', '.join(sorted(BOARD_TYPES[kind]))}"
        )
    try:
        return get_tracker(kind, **params)
    except TrackerError as exc:
        message = str(exc).replace(f"tracker '{kind}': ", "").replace("-p ", "")
        raise UsageError(f"--board: {message}") from None


@dataclass(frozen=True)
class BoardProbe:
    """What a sample of frames showed of the board.

    Attributes
    ----------
    tracker : Charuco or Checkerboard
        The tracker to use: the one given, or its inverted twin when only that
        one found the board.
    found : dict of str to int
        Per view, sampled frames where the board was found.
    sampled : dict of str to int
        Per view, frames sampled.
    inverted : bool
        Whether the board was found only with its colours inverted.

    """

    tracker: Charuco | Checkerboard
    found: dict[str, int]
    sampled: dict[str, int]
    inverted: bool = False


def _count(tracker, frames: np.ndarray) -> int:
    """Frames in which the tracker finds at least :data:`PROBE_CORNERS` corners."""
    if len(frames) == 0:
        return 0
    pos = tracker(frames)["position"][..., 0]
    return int((np.isfinite(pos).all(axis=1).sum(axis=1) >= PROBE_CORNERS).sum())


def _alternatives(tracker) -> list[tuple[str, object]]:
    """Boards a user may have meant instead: (what to change, its tracker)."""
    inv = not tracker.inverted
    alts: list[tuple[str, object]] = [
        (f"inverted={str(inv).lower()}", replace(tracker, inverted=inv))
    ]
    if isinstance(tracker, Checkerboard):
        swapped = replace(tracker, corners_x=tracker.corners_y, corners_y=tracker.corners_x)
        for x, y in (
            (tracker.corners_x + 1, tracker.corners_y + 1),
            (tracker.corners_x - 1, tracker.corners_y - 1),
        ):
            if min(x, y) >= 2:
                alts.append(
                    (
                        f"corners_x={x} corners_y={y} (squares counted?)",
                        replace(tracker, corners_x=x, corners_y=y),
                    )
                )
        if swapped != tracker:
            alts.append(("corners_x and corners_y swapped", swapped))
        return alts
    alts.append(
        (f"legacy={str(not tracker.legacy).lower()}", replace(tracker, legacy=not tracker.legacy))
    )
    for family in _FAMILIES:
        if family.rsplit("_", 1)[0] != tracker.dictionary.rsplit("_", 1)[0]:
            for invert in (tracker.inverted, inv):
                note = f"dictionary={family}" + (
                    f" inverted={str(invert).lower()}" if invert != tracker.inverted else ""
                )
                alts.append((note, replace(tracker, dictionary=family, inverted=invert)))
    if tracker.squares_x != tracker.squares_y:
        swapped = replace(tracker, squares_x=tracker.squares_y, squares_y=tracker.squares_x)
        alts.append((f"squares_x={tracker.squares_y} squares_y={tracker.squares_x}", swapped))
    return alts


def _describe(tracker) -> str:
    p = tracker.params()
    if isinstance(tracker, Checkerboard):
        return f"a checkerboard of {p['corners_x']}x{p['corners_y']} inner corners"
    return (
        f"a {p['squares_x']}x{p['squares_y']} ChArUco board of {p['dictionary']}"
        + (", legacy pattern" if p["legacy"] else "")
        + (", inverted colours" if p["inverted"] else "")
    )


def probe_board(samples: dict[str, np.ndarray], tracker, source: str | Path) -> BoardProbe:
    """Look for the board in a few frames of each view before tracking them all.

    When the board as described is found in no sampled frame, its inverted
    twin is tried (printed boards with white corners, as caliscope supports):
    if that finds it, it is used and a warning says so. Otherwise the
    alternatives a user may have meant (another dictionary, the legacy pattern,
    squares swapped, corners counted as squares) are tried and the error names
    how many frames each would have found.

    Parameters
    ----------
    samples : dict of str to numpy.ndarray
        Per view, a few gray frames ``(n, h, w)``.
    tracker : Charuco or Checkerboard
        The board as described.
    source : str or pathlib.Path
        The recording, named in messages.

    Returns
    -------
    BoardProbe
        The tracker to use and what was found.

    Raises
    ------
    CalibrationError
        If no board is found in any sampled frame, naming what to check.

    """
    sampled = {name: len(frames) for name, frames in samples.items()}
    found = {name: _count(tracker, frames) for name, frames in samples.items()}
    if sum(found.values()):
        return BoardProbe(tracker, found, sampled)
    total = sum(sampled.values())
    alts = _alternatives(tracker)
    flipped = alts[0][1]
    found_inv = {name: _count(flipped, frames) for name, frames in samples.items()}
    if sum(found_inv.values()):
        logger.warning(
            "%s: the board was found only with its colours inverted (in %d of %d sampled "
            "frames): calibrating with inverted=%s; say so in the board file to skip this check",
            source,
            sum(found_inv.values()),
            total,
            str(flipped.inverted).lower(),
        )
        return BoardProbe(flipped, found_inv, sampled, inverted=True)
    tried = [(alts[0][0], 0)]
    for note, alt in alts[1:]:
        n = sum(_count(alt, frames) for frames in samples.values())
        tried.append((note, n))
    hits = sorted((t for t in tried if t[1]), key=lambda t: -t[1])
    if hits:
        best = "; ".join(f"{note} in {n}" for note, n in hits[:3])
        hint = f"it is found with {best} of the {total} frames"
    else:
        hint = (
            "no alternative found it either ("
            + ", ".join(note for note, _ in tried[:4])
            + ", ...); check that the board is in view, lit and in focus"
        )
    raise CalibrationError(
        f"{source}: {_describe(tracker)} was found in none of {total} sampled frames; check the "
        f"dictionary, the board's size, inverted colours and the legacy pattern: {hint}"
    )


def sample_indices(n_frames: int, n: int) -> list[int]:
    """Return ``n`` frame indices spread evenly over a video, ends excluded."""
    n = max(1, min(n, n_frames))
    return sorted({int(i) for i in np.linspace(0, n_frames - 1, n + 2)[1:-1].round()} or {0})
