"""A DataTable whose rows are all replaced at once, for tables that are filtered and refreshed as you type.

``DataTable.add_row`` does the cursor and message work of one row at a time, the table then measures
every cell again on idle, and its cache of drawn cells is keyed by the table's update count, so each
swap of the rows drew every visible cell again. With 500 pods that was a filter keystroke of 100-300 ms.
:class:`BulkTable` sets the same state in one pass with widths the caller measured once, and keeps each
cell's drawing for as long as the cell is shown, styling it for its row and the cursor as DataTable does.

It writes DataTable's own row structures and overrides its cell drawing: that is Textual 8.2's
``DataTable`` (pyproject.toml pins textual below 9), and ``tests/test_bulk_table.py`` checks the table
it leaves behind (rows, widths, every painted line) against ``clear()`` + ``add_row`` on a stock one.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any, Union

from rich.cells import cell_len
from rich.padding import Padding
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual._two_way_dict import TwoWayDict
from textual.widgets import DataTable
from textual.widgets._data_table import ColumnKey, Row, RowKey, default_cell_formatter

#: What a BulkTable cell may be: a str (read as markup, as by DataTable) or a Text.
Cell = Union[str, Text]
#: One row for :meth:`BulkTable.show_rows`: its key, its cells, and each cell's :func:`cell_width`.
BulkRow = tuple[str, Sequence[Cell], Sequence[int]]


def cell_width(cell: Cell) -> int:
    """What DataTable measures for a one-line cell (``measure`` of the renderable its formatter makes),
    without building console options for each cell."""
    text = default_cell_formatter(cell, wrap=False, height=1)
    assert isinstance(text, Text)
    return max((cell_len(line) for line in text.plain.splitlines()), default=0)


class BulkTable(DataTable[Cell]):
    """A DataTable of one-line rows replaced all at once by :meth:`show_rows`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: Each data cell drawn without its row's styles: (row, column) -> (cell, width, lines).
        self._drawn: dict[tuple[RowKey, ColumnKey], tuple[Cell, int, list[list[Segment]]]] = {}

    def show_rows(self, rows: Sequence[BulkRow]) -> None:
        """Replace every row with ``rows``, in display order: what ``clear()`` and an ``add_row`` per row
        leave, column widths included (as there, they only grow)."""
        self.clear()
        columns = self.ordered_columns
        keys = [column.key for column in columns]
        widest = [column.content_width for column in columns]
        locations: dict[RowKey, int] = {}
        data, metadata = self._data, self.rows
        for index, (key, cells, widths) in enumerate(rows):
            row_key = RowKey(key)
            if row_key in locations:
                raise ValueError(f"the row key {key!r} is given twice")
            locations[row_key] = index
            data[row_key] = dict(zip(keys, cells))
            metadata[row_key] = Row(row_key, 1)
            for i, width in enumerate(widths):
                if width > widest[i]:
                    widest[i] = width
        self._row_locations = TwoWayDict(locations)
        for column, width in zip(columns, widest):
            column.content_width = width
        self._require_update_dimensions = True  # the scroll size, on idle as after add_row
        self._update_count += 1
        self.cursor_coordinate = self.cursor_coordinate
        if rows and self.columns and self.show_cursor and self.cursor_type != "none":
            self._highlight_cursor()  # what add_row does when the first row makes a cell available
        self.check_idle()

    def forget_drawings(self, keep: Collection[str]) -> None:
        """Drop the kept drawings of rows whose key is not in ``keep`` (rows that are gone for good)."""
        self._drawn = {key: value for key, value in self._drawn.items() if key[0].value in keep}

    def _render_cell(
        self,
        row_index: int,
        column_index: int,
        base_style: Style,
        width: int,
        cursor: bool = False,
        hover: bool = False,
    ) -> list[list[Segment]]:
        """A data cell as DataTable draws it, from the cell's kept drawing when it has one.

        The drawing of a cell does not change with the row it is in or with the cursor; only the styles
        around it do. They are applied here to the kept drawing the way DataTable's ``Styled`` applies
        them to a fresh one (base + cell meta + component, the cell's own styles, post). Header, row
        labels, fixed rows and columns and rows taller than one line are DataTable's own.
        """
        row_key = self._row_locations.get_key(row_index)
        column_key = self._column_locations.get_key(column_index)
        if (
            row_index < self.fixed_rows
            or column_index < self.fixed_columns
            or row_key is None
            or column_key is None
            or self.rows[row_key].height != 1
        ):
            return super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        cache_key = (
            row_key,
            column_key,
            base_style,
            cursor,
            hover,
            self._show_hover_cursor,
            self._update_count,
            self._pseudo_class_state,
        )
        lines: list[list[Segment]] | None = self._cell_render_cache.get(cache_key)
        if lines is not None:
            return lines
        datum = self._data[row_key][column_key]
        drawn = self._drawn.get((row_key, column_key))
        if (
            drawn is None
            or drawn[1] != width
            or not (drawn[0] is datum or (type(datum) is str and drawn[0] == datum))
        ):
            cell = self._get_row_renderables(row_index).cells[column_index]
            options = self.app.console_options.update_dimensions(width, 1).update(no_wrap=True)
            plain = self.app.console.render_lines(Padding(cell, (0, self.cell_padding)), options)
            drawn = (datum, width, plain)
            self._drawn[(row_key, column_key)] = drawn
        component_style, post_style = self._get_styles_to_render_cell(
            False,
            False,
            False,
            hover,
            cursor,
            self.show_cursor,
            self._show_hover_cursor,
            self.cursor_foreground_priority == "css",
            self.cursor_background_priority == "css",
        )
        pre_style = base_style + Style.from_meta({"row": row_index, "column": column_index}) + component_style
        lines = [list(Segment.apply_style(line, pre_style, post_style)) for line in drawn[2]]
        self._cell_render_cache[cache_key] = lines
        return lines
