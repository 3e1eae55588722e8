"""One palette for views and people, used everywhere they are drawn.

The run report's plots, the 3-D player's camera markers and the rendered
videos' captions give a view the same colour, so a legend tells ``cam01`` from
``cam04`` wherever it is read. The colours are Tableau's 10 (Bokeh's
``Category10_10``, matplotlib's ``tab10``), then the lighter ten of Tableau 20
for more views; after twenty they repeat. People have colours of their own
(:data:`PEOPLE`).
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["COLOURS", "PEOPLE", "person_colours", "rgb", "view_colours"]

#: Tableau 10, then the lighter half of Tableau 20.
COLOURS = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
    "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5",
    "#c49c94", "#f7b6d2", "#c7c7c7", "#dbdb8d", "#9edae5",
)  # fmt: skip


#: People: ColorBrewer's Dark2 (Bokeh's ``Dark2_8``), apart from the views' colours, so a
#: person is not taken for a camera in the 3-D player.
PEOPLE = ("#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#666666")


def _assign(names: Iterable[str], colours: tuple[str, ...] = COLOURS) -> dict[str, str]:
    return {str(n): colours[i % len(colours)] for i, n in enumerate(names)}


def view_colours(views: Iterable[str]) -> dict[str, str]:
    """Return each view's colour (``#rrggbb``), by its position in the store's view order.

    Parameters
    ----------
    views : iterable of str
        The store's views, in the store's order (not a subset: a view keeps its
        colour whichever others are drawn beside it).

    Returns
    -------
    dict of str to str
        View name to colour.
    """
    return _assign(views)


def person_colours(people: Iterable[str]) -> dict[str, str]:
    """Return each person's colour (``#rrggbb``, :data:`PEOPLE`), in the 3-D group's order."""
    return _assign(people, PEOPLE)


def rgb(colour: str) -> tuple[int, int, int]:
    """Return ``#rrggbb`` as ``(r, g, b)`` in 0-255 (for drawing on frames)."""
    value = colour.lstrip("#")
    return int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16)
