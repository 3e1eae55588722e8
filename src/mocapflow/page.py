"""HTML pieces the self-contained report pages share (the run report, the calibration report)."""

from __future__ import annotations

import html
import re

__all__ = ["STYLE", "bullets", "facts", "section", "swatch", "table"]

#: The report pages' look: readable text, sections, tables with a header row.
STYLE = """
main { max-width: 1000px; margin: 0 auto; padding: 16px 28px 48px;
       font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1d2733; }
main h1 { font-size: 26px; margin: 8px 0 4px; }
main h2 { font-size: 20px; margin: 36px 0 10px; padding-bottom: 4px;
          border-bottom: 2px solid #d5dbe3; }
main h3 { font-size: 16px; margin: 22px 0 6px; }
main p.note { color: #4a5868; margin: 4px 0; }
main code { background: #f0f2f5; padding: 0 4px; border-radius: 3px; }
main table { border-collapse: collapse; margin: 10px 0 14px; font-variant-numeric: tabular-nums; }
main th, main td { padding: 5px 12px; border-bottom: 1px solid #e3e7ec; text-align: left; }
main th { background: #eef1f5; font-weight: 600; border-bottom: 2px solid #c9d1db; }
main tr:nth-child(even) td { background: #f8f9fb; }
main td.num, main th.num { text-align: right; }
main table.facts th { background: none; border-bottom: 1px solid #e3e7ec; width: 9em; }
main .swatch { display: inline-block; width: 12px; height: 12px; border-radius: 2px;
               margin-right: 6px; vertical-align: -1px; }
main .player { border: 1px solid #d5dbe3; border-radius: 6px; padding: 8px; margin: 10px 0; }
main .player .controls { display: flex; align-items: center; gap: 12px; margin-bottom: 6px; }
main .player input[type=range] { flex: 1; }
main .player .controls button { font: inherit; padding: 3px 12px; min-width: 7em; cursor: pointer; }
main .player .time { font-variant-numeric: tabular-nums; min-width: 16em; color: #4a5868; }
main .thumbs { display: flex; flex-wrap: wrap; gap: 8px; margin: 4px 0 12px; }
main .thumbs img { max-width: 300px; max-height: 240px; border: 1px solid #d5dbe3; }
"""

_NUMBER = re.compile(r"^[+-]?\d[\d.,]*\s*(%|px|mm|s)?$")


def table(
    rows: list[list[str]],
    header: list[str],
    *,
    raw: frozenset[int] | set[int] = frozenset(),
    cls: str = "",
) -> str:
    """Return an HTML table of ``rows`` under ``header``, every cell escaped.

    Parameters
    ----------
    rows : list of lists
        The cells; numbers (and numbers with a unit) are aligned right.
    header : list of str
        The column names.
    raw : set of int
        Columns whose cells are HTML already (a colour swatch), not escaped.
    cls : str
        The table's CSS class.

    """

    def cell(i: int, c) -> str:
        text = str(c)
        num = " class='num'" if _NUMBER.match(text) else ""
        return f"<td{num}>{text if i in raw else html.escape(text)}</td>"

    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(cell(i, c) for i, c in enumerate(row)) + "</tr>" for row in rows
    )
    attr = f" class='{html.escape(cls)}'" if cls else ""
    return f"<table{attr}><tr>{head}</tr>{body}</table>"


def facts(rows: list[tuple[str, str]]) -> str:
    """Return a two-column table of named facts (``recording``, ``tracker``...), escaped."""
    body = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>" for k, v in rows
    )
    return f"<table class='facts'>{body}</table>"


def bullets(items: list[str], empty: str) -> str:
    """Return an HTML list of ``items``, or a paragraph saying ``empty`` when there are none."""
    if not items:
        return f"<p>{html.escape(empty)}</p>"
    return "<ul>" + "".join(f"<li>{html.escape(i)}</li>" for i in items) + "</ul>"


def swatch(colour: str, label: str) -> str:
    """Return ``label`` (escaped) after a small square of ``colour``: a view's or a person's."""
    return f"<span class='swatch' style='background:{html.escape(colour)}'></span>" + html.escape(
        label
    )


def section(title: str, anchor: str) -> str:
    """Return a section heading (``<h2>``) that a link can reach by ``#anchor``."""
    return f"<h2 id='{html.escape(anchor)}'>{html.escape(title)}</h2>"
