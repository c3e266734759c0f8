"""All findings grouped by severity; the selected one's evidence, remediation (c copies) and references."""

from __future__ import annotations

import json

from rich.console import Group
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Static, Tree

from probes.api import Finding, ProbeResult, ProbeStatus, Severity, sort_worst_first
from tui.format import remedy_text, subject_text
from tui.messages import ResultsRead
from tui.untrusted import neutralise, neutralise_data
from tui.widgets import SEVERITY_MARK, NodeScreen, node_text, severity_text


def finding_detail(f: Finding) -> Group:
    f = neutralise_data(f)  # subjects, evidence and summaries carry names written on the node
    parts: list = [
        Text.assemble(severity_text(f.severity), " ", (f.title, "bold")),
        Text(f"{f.id} · {subject_text(f.subject)} · probe {f.probe}", style="dim"),
        Text(""),
        Text(f.summary),
    ]
    if f.evidence:
        parts += [Text(""), Text("Evidence", style="bold underline")]
        for key, value in f.evidence.items():
            shown = value if isinstance(value, str) else json.dumps(value, default=str)
            parts.append(Text.assemble((f"{key}: ", "bold"), shown))
    if f.remediation:
        parts += [Text(""), Text("Remediation (c copies the commands)", style="bold underline")]
        for i, step in enumerate(f.remediation, 1):
            parts.append(Text(f"{i}. {remedy_text(step)}"))
            if step.command:
                parts.append(Text(f"   $ {step.command}", style="bold cyan"))
    if f.references:
        parts += [Text(""), Text("References", style="bold underline")]
        parts += [Text(f"- {ref}") for ref in f.references]
    return Group(*parts)


class FindingsScreen(NodeScreen):
    TITLE_TEXT = "Findings"
    BINDINGS = [
        Binding("c", "copy_commands", "Copy cmds", id="findings.copy"),
        Binding("r", "refresh", "Re-run probes", id="findings.refresh"),
    ]

    def compose(self) -> ComposeResult:
        yield from self.compose_top()
        with Horizontal(id="findings-body"):
            yield Tree("findings", id="finding-tree")
            with VerticalScroll(id="finding-pane"):
                yield Static("running probes…", id="finding-detail")
        yield from self.compose_bottom()

    def on_mount(self) -> None:
        self.selected: Finding | None = None
        self.query_one(Tree).show_root = False
        self.query_one("#finding-pane").border_title = "detail"

    def on_screen_resume(self) -> None:
        if self.session.last_results and self.loaded_for is not self.session:
            self.loaded_for = self.session
            self._show(self.session.last_results)
            return
        super().on_screen_resume()

    def action_refresh(self) -> None:
        self.refresh_data()

    def refresh_data(self) -> None:
        self.query_one("#finding-detail", Static).update("running probes…")
        self.load()

    @work(thread=True, exclusive=True, group="findings", exit_on_error=False)
    def load(self) -> None:
        self.post_message(ResultsRead(self.session.probe_results()))

    @on(ResultsRead)
    def _loaded(self, message: ResultsRead) -> None:
        self._show(message.results)

    def _show(self, results: list[ProbeResult]) -> None:
        tree = self.query_one(Tree)
        tree.clear()
        findings = sort_worst_first([f for r in results for f in r.findings])
        first = None
        for severity in (Severity.CRITICAL, Severity.WARNING, Severity.INFO, Severity.OK):
            group = [f for f in findings if f.severity is severity]
            if not group:
                continue
            word, style = SEVERITY_MARK[severity]
            branch = tree.root.add(Text(f"{severity.value.upper()} ({len(group)})", style=style), expand=True)
            for f in group:
                leaf = branch.add_leaf(
                    Text.assemble(severity_text(f.severity), " ", neutralise(f.title)), data=f
                )
                first = first or leaf
        not_ran = [r for r in results if r.status is not ProbeStatus.OK]
        if not_ran:
            branch = tree.root.add(Text(f"NOT RUN ({len(not_ran)})", style="dim"), expand=True)
            for r in not_ran:
                branch.add_leaf(node_text(f"{r.probe}: {r.status.value}: {r.reason}", style="dim"))
        tree.root.expand()
        if first is not None and first.data is not None:
            tree.move_cursor(first)
            self._select(first.data)
        else:
            self.query_one("#finding-detail", Static).update("No findings.")

    @on(Tree.NodeHighlighted, "#finding-tree")
    def _highlighted(self, event: Tree.NodeHighlighted) -> None:
        if isinstance(event.node.data, Finding):
            self._select(event.node.data)

    def _select(self, finding: Finding) -> None:
        self.selected = finding
        self.query_one("#finding-detail", Static).update(finding_detail(finding))

    def action_copy_commands(self) -> None:
        commands = [s.command for s in (self.selected.remediation if self.selected else []) if s.command]
        if not commands:
            self.notify("This finding has no commands to copy.", timeout=2)
            return
        # A command built from a name on the node could carry a newline or an escape that a paste into a
        # shell would run or the terminal would obey: the clipboard gets the same inert text the screen shows.
        safe = [neutralise(c) for c in commands]
        self.app.copy_to_clipboard("\n".join(safe))
        if safe != commands:
            self.notify(
                "Copied with control characters shown as escapes (\\x..): check the names before running it.",
                severity="warning",
                timeout=6,
            )
            return
        self.notify(f"Copied {len(commands)} command(s) to the clipboard.", timeout=2)
