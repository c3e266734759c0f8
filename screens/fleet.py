"""The fleet: problem groups (finding × cause) worst first with their node counts; the selected group's
nodes, the subject on each, and the fix once. Everything here was read before the screen opened."""

from __future__ import annotations

from rich.console import Group as RichGroup
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static

from tui.fleet import Fleet, Group

SEVERITY_STYLE = {"critical": "bold red", "warning": "yellow", "info": "cyan"}


def group_detail(group: Group) -> RichGroup:
    parts: list = [
        Text.assemble(
            (group.severity.upper(), SEVERITY_STYLE.get(group.severity, "")), " ", (group.title, "bold")
        ),
        Text(f"{group.finding} · cause: {group.cause}", style="dim"),
        Text(""),
        Text(f"{len(group.nodes)} node(s)", style="bold underline"),
    ]
    for node in group.nodes:
        parts.append(Text(f"{node}  {'; '.join(s for s in group.subjects.get(node, []) if s)}"))
    if group.remediation:
        parts += [Text(""), Text(f"Fix (as printed on {group.fix_from})", style="bold underline")]
        for i, step in enumerate(group.remediation, 1):
            note = " (disrupts running pods)" if step.get("disrupts_pods") else ""
            parts.append(Text(f"{i}. {step.get('text', '')}{note}"))
            if step.get("command"):
                parts.append(Text(f"   $ {step['command']}", style="bold cyan"))
    return RichGroup(*parts)


class FleetScreen(Screen[None]):
    BINDINGS = [Binding("q", "app.quit", "Quit", id="fleet.quit")]

    def __init__(self, fleet: Fleet) -> None:
        super().__init__()
        self.fleet = fleet
        #: The group whose nodes and fix the detail pane shows.
        self.shown: Group | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        fleet = self.fleet
        yield Static(
            f"{len(fleet.nodes)} node(s) · {len(fleet.groups)} problem group(s) · "
            f"{len(fleet.not_checked)} not checked",
            id="fleet-summary",
        )
        with Horizontal(id="fleet-body"):
            yield DataTable(id="fleet-groups", cursor_type="row", zebra_stripes=True)
            with VerticalScroll(id="fleet-detail"):
                yield Static(id="fleet-group")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("severity", "finding", "cause", "nodes")
        for n, g in enumerate(self.fleet.groups):
            table.add_row(
                Text(g.severity, style=SEVERITY_STYLE.get(g.severity, "")),
                g.finding,
                g.cause,
                str(len(g.nodes)),
                key=str(n),
            )
        for node, why in self.fleet.not_checked:
            table.add_row(Text("unknown", style="bold magenta"), "not checked", why, node)
        if self.fleet.groups:
            self.show_group(self.fleet.groups[0])
        table.focus()

    def show_group(self, group: Group) -> None:
        self.shown = group
        self.query_one("#fleet-group", Static).update(group_detail(group))

    @on(DataTable.RowHighlighted)
    def show(self, event: DataTable.RowHighlighted) -> None:
        key = event.row_key.value
        if key is not None and key.isdigit():
            self.show_group(self.fleet.groups[int(key)])
