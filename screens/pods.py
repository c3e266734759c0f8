"""Pod sandboxes in a table: live filter, sort by column, refresh and auto-refresh; Enter opens a pod."""

from __future__ import annotations

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.reactive import reactive
from textual.widgets import DataTable, Input, Static

from probes.api import ProbeResult, Severity, worst
from probes.readers.cri.sandboxes import SandboxView
from tui.bulk_table import BulkRow, BulkTable, Cell, cell_width
from tui.format import age_of_ns, human_age
from tui.messages import SandboxesRead
from tui.widgets import NodeScreen, node_text, severity_text, state_text

AUTO_REFRESH_S = 2.0
COLUMNS = ("!", "NAME", "NAMESPACE", "STATE", "AGE", "ATT", "IP", "CTRS")
SORT_KEYS = {
    "!": lambda v, marks: -(marks[v.id].rank if v.id in marks else -1),
    "NAME": lambda v, _m: v.name,
    "NAMESPACE": lambda v, _m: (v.namespace, v.name),
    "STATE": lambda v, _m: (v.state, v.name),
    "AGE": lambda v, _m: -v.created_at,
    "ATT": lambda v, _m: v.attempt,
    "IP": lambda v, _m: tuple(int(p) if p.isdigit() else 0 for p in (v.ips[0] if v.ips else "").split(".")),
    "CTRS": lambda v, _m: v.containers,
}


def pod_marks(results: list[ProbeResult]) -> dict[str, Severity]:
    """The worst non-ok finding about each sandbox id (by id, or by namespace/name)."""
    marks: dict[str, Severity] = {}
    for result in results:
        for f in result.findings:
            subject = f.subject
            if f.severity is Severity.OK or subject.get("kind") != "pod":
                continue
            key = subject.get("id") or f"{subject.get('namespace')}/{subject.get('name')}"
            marks[key] = worst([f]) if key not in marks else max(marks[key], f.severity, key=lambda s: s.rank)
    return marks


def searched(view: SandboxView) -> tuple[str, ...]:
    """What the filter looks in: name, namespace, state, id and IPs."""
    return (view.name, view.namespace, view.state, view.id, *view.ips)


class PodCells:
    """One pod's cells but the mark and the age (which change without a read), made once and kept while
    what they show stays the same, so a filter keystroke or a refresh reuses them, drawings included."""

    __slots__ = ("cells", "haystack", "shows", "widths")

    def __init__(self, view: SandboxView) -> None:
        #: What the cells show: equal on the next read means the same cells.
        self.shows = PodCells.shown(view)
        self.cells: list[Cell] = [
            node_text(view.name),
            node_text(view.namespace),
            state_text(view.state),
            str(view.attempt),
            node_text(", ".join(view.ips))
            if view.ips
            else ("host" if view.host_network else Text("-", style="dim")),
            str(view.containers),
        ]
        self.widths = [cell_width(cell) for cell in self.cells]
        #: What the filter looks in, lower-cased, one field per line (a filter is one line).
        self.haystack = "\n".join(text.lower() for text in searched(view))

    @staticmethod
    def shown(view: SandboxView) -> tuple[object, ...]:
        return (
            view.name,
            view.namespace,
            view.state,
            view.attempt,
            tuple(view.ips),
            view.host_network,
            view.containers,
        )

    def matches(self, needle: str) -> bool:
        """Whether one of the searched fields contains ``needle`` (lower-cased, one line)."""
        return needle in self.haystack


#: The "!" column's cell and width per worst severity (None: no finding), shared by every row.
_MARKS: dict[Severity | None, tuple[Text, int]] = {}
#: Widths of the AGE column's texts seen so far.
_AGE_WIDTHS: dict[str, int] = {}


def mark_cell(severity: Severity | None) -> tuple[Text, int]:
    if severity not in _MARKS:
        mark = severity_text(severity)[:1] if severity else Text(" ")
        _MARKS[severity] = (mark, cell_width(mark))
    return _MARKS[severity]


def age_width(age: str) -> int:
    if age not in _AGE_WIDTHS:
        _AGE_WIDTHS[age] = cell_width(age)
    return _AGE_WIDTHS[age]


class PodsScreen(NodeScreen):
    TITLE_TEXT = "Pods"
    AUTO_FOCUS = "#pod-table"
    BINDINGS = [
        Binding("slash", "start_filter", "Filter", id="pods.filter"),
        Binding("o", "sort_next", "Sort", id="pods.sort"),
        Binding("a", "toggle_auto", "Auto-refresh", id="pods.auto"),
        Binding("r", "refresh", "Refresh", id="pods.refresh"),
        Binding("escape", "clear_filter", "Back", id="pods.back", show=False),
    ]

    filter_text: reactive[str] = reactive("")
    """The live filter: pods whose name, namespace, state, id or IP contain it."""
    auto_refresh: reactive[bool] = reactive(False)
    """Re-read the pods every 2 s."""
    sort_column: reactive[str] = reactive("NAME")
    """The column the table is sorted by."""

    def compose(self) -> ComposeResult:
        yield from self.compose_top()
        yield Input(
            placeholder="filter pods (name, namespace, IP, state)", id="pod-filter", classes="-hidden"
        )
        yield Static("loading pods…", id="pods-status", classes="status-line")
        yield BulkTable(id="pod-table", cursor_type="row", zebra_stripes=True)
        yield from self.compose_bottom()

    def on_mount(self) -> None:
        table = self.query_one(BulkTable)
        for column in COLUMNS:
            table.add_column(column, key=column)
        self.views: list[SandboxView] = list(self.session.last_sandboxes)
        #: Each pod's cells by sandbox id (see PodCells).
        self._cells: dict[str, PodCells] = {}
        self.reverse = False
        self.loading_now = False
        self._timer = self.set_interval(AUTO_REFRESH_S, self._auto_tick, pause=True)
        if self.views:
            self._fill()

    # -- reading -------------------------------------------------------------------------------------

    def action_refresh(self) -> None:
        self.refresh_data()

    def refresh_data(self) -> None:
        self.loading_now = True
        self.query_one(BulkTable).set_class(True, "-stale")
        self._status()
        # Read once the table (the last read, marked stale) is painted: 500 pods' verbose statuses
        # are parsed in the worker, and would share the interpreter with the first paint of the table.
        self.call_after_refresh(self.load)

    @work(thread=True, exclusive=True, group="pods", exit_on_error=False)
    def load(self) -> None:
        try:
            # What the table shows needs no verbose status; opening a pod reads its own (App.open_pod).
            views = self.session.sandboxes(verbose=False)
        finally:
            self.app.call_from_thread(self._done_loading)
        self.post_message(SandboxesRead(views))

    def _done_loading(self) -> None:
        self.loading_now = False
        self._status()

    def _auto_tick(self) -> None:
        if not self.loading_now and self.app.runtime_state == "connected":  # type: ignore[attr-defined]
            self.refresh_data()

    @on(SandboxesRead)
    def _loaded(self, message: SandboxesRead) -> None:
        self.views = message.sandboxes
        table = self.query_one(BulkTable)
        if len(self._cells) > 2 * len(self.views):  # many pods gone since: forget their cells
            ids = {view.id for view in self.views}
            self._cells = {key: cells for key, cells in self._cells.items() if key in ids}
            table.forget_drawings(ids)
        table.set_class(False, "-stale")
        self._fill()

    # -- drawing -------------------------------------------------------------------------------------

    def _fill(self) -> None:
        table = self.query_one(BulkTable)
        selected = None
        if table.row_count:
            selected = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        marks = pod_marks(self.session.last_results)
        now = self.session.now()
        rows = [(view, self._cells_of(view)) for view in self.views]
        if self.filter_text:
            needle = self.filter_text.lower()
            rows = [(view, cells) for view, cells in rows if cells.matches(needle)]
        rows.sort(key=lambda row: SORT_KEYS[self.sort_column](row[0], marks), reverse=self.reverse)
        shown: list[BulkRow] = []
        for view, cells in rows:
            mark, mark_width = mark_cell(marks.get(view.id) or marks.get(f"{view.namespace}/{view.name}"))
            age = age_of_ns(view.created_at, now)
            name, namespace, state, attempt, ips, ctrs = cells.cells
            wn, wns, ws, wa, wi, wc = cells.widths
            cells_now = (mark, name, namespace, state, age, attempt, ips, ctrs)
            shown.append((view.id, cells_now, (mark_width, wn, wns, ws, age_width(age), wa, wi, wc)))
        table.show_rows(shown)
        if selected is not None and selected in table.rows:
            table.move_cursor(row=table.get_row_index(selected))
        self.shown = [view for view, _ in rows]
        self._status()

    def _cells_of(self, view: SandboxView) -> PodCells:
        """The view's cells: those of the last read when they would show the same."""
        cells = self._cells.get(view.id)
        if cells is None or cells.shows != PodCells.shown(view):
            cells = self._cells[view.id] = PodCells(view)
        return cells

    def _status(self) -> None:
        parts = []
        views = getattr(self, "views", [])
        shown = getattr(self, "shown", views)
        parts.append(f"{len(shown)} of {len(views)} pods" if self.filter_text else f"{len(views)} pods")
        if self.loading_now:
            parts.append("refreshing…")
        elif self.session.last_sandboxes_at is not None:
            parts.append(f"read {human_age(self.session.now() - self.session.last_sandboxes_at)} ago")
        parts.append(f"sorted by {self.sort_column}{' ↓' if self.reverse else ''}")
        parts.append("auto-refresh ON (2 s)" if self.auto_refresh else "auto-refresh off (a)")
        if self.filter_text:
            parts.append(f"filter: {self.filter_text!r}")
        # One line of fixed height (.status-line): its text never changes the layout.
        self.query_one("#pods-status", Static).update(" · ".join(parts), layout=False)

    # -- keys ----------------------------------------------------------------------------------------

    def action_start_filter(self) -> None:
        box = self.query_one("#pod-filter", Input)
        box.remove_class("-hidden")
        box.focus()

    @on(Input.Changed, "#pod-filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.filter_text = event.value.strip()

    @on(Input.Submitted, "#pod-filter")
    def _filter_done(self) -> None:
        self.query_one(BulkTable).focus()

    def watch_filter_text(self) -> None:
        if self.is_mounted:
            self._fill()

    def action_clear_filter(self) -> None:
        """Esc: clear and hide the filter when there is one, else go back."""
        box = self.query_one("#pod-filter", Input)
        if box.has_focus or self.filter_text:
            box.value = ""
            box.add_class("-hidden")
            self.query_one(BulkTable).focus()
        else:
            self.app.action_go_back()  # type: ignore[attr-defined]

    def action_sort_next(self) -> None:
        self.sort_column = COLUMNS[(COLUMNS.index(self.sort_column) + 1) % len(COLUMNS)]
        self.reverse = False

    @on(DataTable.HeaderSelected)
    def _header(self, event: DataTable.HeaderSelected) -> None:
        column = str(event.column_key.value)
        self.reverse = not self.reverse if column == self.sort_column else False
        if column == self.sort_column:
            self._fill()
        self.sort_column = column

    def watch_sort_column(self) -> None:
        if self.is_mounted:
            self._fill()

    def action_toggle_auto(self) -> None:
        self.auto_refresh = not self.auto_refresh

    def watch_auto_refresh(self, on: bool) -> None:
        if not self.is_mounted:
            return
        if on:
            self._timer.resume()
        else:
            self._timer.pause()
        self._status()

    @on(DataTable.RowSelected, "#pod-table")
    def _open(self, event: DataTable.RowSelected) -> None:
        view = next((v for v in self.views if v.id == event.row_key.value), None)
        if view is not None:
            self.app.open_pod(view)  # type: ignore[attr-defined]
