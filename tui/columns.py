"""Aligned text columns for the headless commands, the way crictl prints them (no box, no wrapping).

rich lays a table out by measuring every cell several times: for a few hundred pods that costs more than
asking the runtime for them. This writes each row once; bold headers and a highlighted row only on a tty.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence

BOLD, YELLOW, RESET = "\x1b[1m", "\x1b[33m", "\x1b[0m"


def cell_width(text: str) -> int:
    """Terminal cells ``text`` takes: East Asian wide and full-width characters take two."""
    if text.isascii():
        return len(text)
    return sum(
        0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text
    )


def render_columns(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    highlighted: Sequence[bool] = (),
    colour: bool = False,
) -> str:
    """``headers`` then ``rows``, each column as wide as its widest cell, two spaces apart.

    A row whose ``highlighted`` entry is true is yellow when ``colour`` is on (a pod whose status failed).
    """
    widths = [cell_width(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], cell_width(cell))

    def line(cells: Sequence[str]) -> str:
        padded = [cell + " " * (widths[i] - cell_width(cell)) for i, cell in enumerate(cells)]
        return "  ".join(padded).rstrip()

    out = [f"{BOLD}{line(headers)}{RESET}" if colour else line(headers)]
    for i, row in enumerate(rows):
        mark = colour and i < len(highlighted) and highlighted[i]
        out.append(f"{YELLOW}{line(row)}{RESET}" if mark else line(row))
    return "\n".join(out) + "\n"
