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


def matches(view: SandboxView, needle: str) -> bool:
    needle = needle.lower()
    return any(needle in text.lower() for text in (view.name, view.namespace, view.state, view.id, *view.ips))


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
        yield DataTable(id="pod-table", cursor_type="row", zebra_stripes=True)
        yield from self.compose_bottom()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for column in COLUMNS:
            table.add_column(column, key=column)
        self.views: list[SandboxView] = list(self.session.last_sandboxes)
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
        self.query_one(DataTable).set_class(True, "-stale")
        self._status()
        self.load()

    @work(thread=True, exclusive=True, group="pods", exit_on_error=False)
    def load(self) -> None:
        try:
            views = self.session.sandboxes()
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
        self.query_one(DataTable).set_class(False, "-stale")
        self._fill()

    # -- drawing -------------------------------------------------------------------------------------

    def _fill(self) -> None:
        table = self.query_one(DataTable)
        selected = None
        if table.row_count:
            selected = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        marks = pod_marks(self.session.last_results)
        now = self.session.now()
        shown = (
            [v for v in self.views if matches(v, self.filter_text)] if self.filter_text else list(self.views)
        )
        shown.sort(key=lambda v: SORT_KEYS[self.sort_column](v, marks), reverse=self.reverse)
        table.clear()
        for v in shown:
            mark = marks.get(v.id) or marks.get(f"{v.namespace}/{v.name}")
            table.add_row(
                severity_text(mark)[:1] if mark else Text(" "),
                node_text(v.name),
                node_text(v.namespace),
                state_text(v.state),
                age_of_ns(v.created_at, now),
                str(v.attempt),
                node_text(", ".join(v.ips))
                if v.ips
                else ("host" if v.host_network else Text("-", style="dim")),
                str(v.containers),
                key=v.id,
            )
        if selected is not None and selected in table.rows:
            table.move_cursor(row=table.get_row_index(selected))
        self.shown = shown
        self._status()

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
        self.query_one("#pods-status", Static).update(" · ".join(parts))

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
        self.query_one(DataTable).focus()

    def watch_filter_text(self) -> None:
        if self.is_mounted:
            self._fill()

    def action_clear_filter(self) -> None:
        """Esc: clear and hide the filter when there is one, else go back."""
        box = self.query_one("#pod-filter", Input)
        if box.has_focus or self.filter_text:
            box.value = ""
            box.add_class("-hidden")
            self.query_one(DataTable).focus()
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
