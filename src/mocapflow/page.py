"""HTML pieces the self-contained report pages share (the run report, the calibration report)."""

from __future__ import annotations

import html

__all__ = ["bullets", "table"]


def table(rows: list[list[str]], header: list[str]) -> str:
    """Return an HTML table of ``rows`` under ``header``, every cell escaped."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def bullets(items: list[str], empty: str) -> str:
    """Return an HTML list of ``items``, or a paragraph saying ``empty`` when there are none."""
    if not items:
        return f"<p>{html.escape(empty)}</p>"
    return "<ul>" + "".join(f"<li>{html.escape(i)}</li>" for i in items) + "</ul>"
