"""BulkTable (tui/bulk_table.py) writes DataTable's own row structures and draws cells from kept drawings:
it must leave exactly the table, and paint exactly the lines, that Textual's DataTable does with ``clear()``
and one ``add_row`` per row. Both are driven side by side through the same swaps of rows (a refresh, a
filter narrowing and widening, a new order), with the cursor moved, and compared line by line."""

from __future__ import annotations

import asyncio

from rich.text import Text
from textual.app import App, ComposeResult
from textual.widgets import DataTable

from tui.bulk_table import BulkTable, cell_width

COLUMNS = ("!", "NAME", "STATE", "AGE", "IP")


def row(i: int, age: str = "5m") -> tuple[str, list[object]]:
    """Cells of the kinds the pods table shows: styled Text, plain str (read as markup by DataTable, so
    one carries markup and one an emoji code), wide characters, an empty cell."""
    cells: list[object] = [
        Text("C", style="bold red") if i % 7 == 0 else Text(" "),
        Text(f"pod-{i}" + ("-长名" if i % 5 == 0 else "")),
        Text("ready", style="green") if i % 3 else Text("notready", style="bold red"),
        age if i % 11 else "[b]1h[/b]",
        Text(f"10.0.{i // 250}.{i % 250}") if i % 13 else ":thumbs_up:" if i % 2 else Text(""),
    ]
    return f"id-{i:04d}", cells


class TwoTables(App[None]):
    CSS = "DataTable { height: 12; width: 90; }"

    def compose(self) -> ComposeResult:
        yield DataTable(id="stock", cursor_type="row", zebra_stripes=True)
        yield BulkTable(id="bulk", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        for table in self.query(DataTable):
            for column in COLUMNS:
                table.add_column(column, key=column)

    def show(self, rows: list[tuple[str, list[object]]], cursor: int | None = None) -> None:
        stock = self.query_one("#stock", DataTable)
        stock.clear()
        for key, cells in rows:
            stock.add_row(*cells, key=key)
        bulk = self.query_one("#bulk", BulkTable)
        bulk.show_rows([(key, cells, [cell_width(c) for c in cells]) for key, cells in rows])
        if cursor is not None:
            stock.move_cursor(row=cursor)
            bulk.move_cursor(row=cursor)


def lines(table: DataTable) -> list[list[object]]:
    return [list(table.render_line(y)) for y in range(table.size.height)]


async def assert_same(app: TwoTables, pilot, when: str) -> None:
    stock = app.query_one("#stock", DataTable)
    bulk = app.query_one("#bulk", BulkTable)
    assert [r.key for r in bulk.ordered_rows] == [r.key for r in stock.ordered_rows], when
    assert [bulk.get_row_at(i) for i in range(bulk.row_count)] == [
        stock.get_row_at(i) for i in range(stock.row_count)
    ], when
    assert [c.content_width for c in bulk.ordered_columns] == [
        c.content_width for c in stock.ordered_columns
    ], when
    assert bulk.virtual_size == stock.virtual_size, when
    assert bulk.cursor_coordinate == stock.cursor_coordinate, when
    painted = {}
    for focused in (None, stock, bulk):  # a focused table draws its header and cursor otherwise
        app.set_focus(focused)
        await pilot.pause()
        painted[focused] = (lines(stock), lines(bulk))
    assert painted[None][1] == painted[None][0], f"{when}: neither focused"
    assert painted[bulk][1] == painted[stock][0], f"{when}: focused"


def test_bulk_rows_are_the_tables_add_row_makes() -> None:
    async def run() -> None:
        app = TwoTables()
        async with app.run_test(size=(100, 30)) as pilot:
            everything = [row(i) for i in range(60)]
            steps = [
                ("first read", everything, None),
                ("a refresh, same cells, cursor moved", [row(i) for i in range(60)], 7),
                ("filter narrows", [r for r in everything if "1" in r[0]], 3),
                ("filter narrows to one", [r for r in everything if r[0] == "id-0015"], 0),
                ("filter cleared, other ages", [row(i, age="6m") for i in range(60)], 20),
                ("new order, a pod gone", list(reversed(everything[1:])), 58),
                ("nothing", [], None),
                ("back", everything, 2),
            ]
            for when, rows, cursor in steps:
                app.show(rows, cursor)
                await pilot.pause()
                await assert_same(app, pilot, when)
                for table in app.query(DataTable):  # scrolled half way: other lines, other zebra rows
                    table.scroll_to(y=5, animate=False)
                await pilot.pause()
                await assert_same(app, pilot, when + ", scrolled")

    asyncio.run(run())
