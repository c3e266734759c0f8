"""The start screen: node, runtime, counts, the worst findings, and where to go next.

Each panel fills in as its part of the node answers (runtime first, probes last). When the runtime
cannot be reached the screen says why and offers post-mortem mode on the containerd root.
"""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Static

from probes.api import ProbeResult, ProbeStatus, Severity, sort_worst_first
from probes.errors import NodedocError
from probes.readers.cri.runtime import NODE_CONDITIONS, RuntimeFacts
from tui.messages import (
    CatalogRead,
    ImagesCounted,
    ResultsRead,
    RuntimeLost,
    RuntimeRead,
    SandboxesRead,
    Unavailable,
)
from tui.session import RuntimeUnreachable
from tui.untrusted import neutralise
from tui.widgets import NodeScreen, node_text, severity_text

WORST_SHOWN = 5


class DashboardScreen(NodeScreen):
    TITLE_TEXT = "Dashboard"
    BINDINGS = [
        Binding("m", "post_mortem", "Post-mortem", id="post-mortem"),
    ]

    def compose(self) -> ComposeResult:
        yield from self.compose_top()
        with Vertical(id="dash-body"):
            yield Static("", id="unreachable-panel", classes="panel -hidden")
            with Horizontal(id="dash-top"):
                yield Static("loading…", id="runtime-panel", classes="panel")
                yield Static("loading…", id="counts-panel", classes="panel")
            yield Static("running probes…", id="findings-panel", classes="panel")
            yield Static(self._next_text(), id="next-panel", classes="panel")
        yield from self.compose_bottom()

    def on_mount(self) -> None:
        self.query_one("#runtime-panel").border_title = "Runtime"
        self.query_one("#counts-panel").border_title = "Counts"
        self.query_one("#findings-panel").border_title = "Worst findings"
        self.query_one("#next-panel").border_title = "Where next"
        self.query_one("#unreachable-panel").border_title = "Runtime unreachable"
        self.watch(self.app, "runtime_error", self._show_unreachable)
        # m (post-mortem) is offered only while the runtime is unreachable: the footer follows the state.
        self.watch(self.app, "runtime_state", lambda _state: self.refresh_bindings())

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "post_mortem":
            return self.app.runtime_state == "unreachable"  # type: ignore[attr-defined]
        return True

    def action_post_mortem(self) -> None:
        self.app.action_post_mortem()  # type: ignore[attr-defined]

    def refresh_data(self) -> None:
        #: Pods (ready, not ready) and their containers; the counts only, not the views (500 pods'
        #: verbose statuses are the pods screen's to keep).
        self.pods: tuple[int, int, int] | None = None
        self.images: int | None = None
        #: Snapshots by kind (the counts only).
        self.snapshots: dict[str, int] | None = None
        self.snapshots_unavailable = ""
        self.query_one("#findings-panel", Static).update("running probes…")
        self.load()

    @work(thread=True, exclusive=True, group="dashboard", exit_on_error=False)
    def load(self) -> None:
        """The runtime first, alone: the pods, the disk and the probes are read once it is painted (with no
        runtime, straight away)."""
        session = self.session
        if session.post_mortem:
            self._load_rest(runtime=False)
            return
        try:
            self.post_message(RuntimeRead(session.runtime()))  # its handler starts load_rest
        except RuntimeUnreachable as exc:
            self.post_message(RuntimeLost(str(exc)))
            self._load_rest(runtime=False)

    @work(thread=True, exclusive=True, group="dashboard", exit_on_error=False)
    def load_rest(self, runtime: bool) -> None:
        self._load_rest(runtime)

    def _load_rest(self, runtime: bool) -> None:
        session = self.session
        if runtime:
            try:
                self.post_message(SandboxesRead(session.sandboxes(verbose=False)))  # counts need no more
                self.post_message(ImagesCounted(session.image_count()))
            except RuntimeUnreachable as exc:
                self.post_message(RuntimeLost(str(exc)))
        try:
            self.post_message(CatalogRead(session.snapshot_catalog()))
        except NodedocError as exc:
            self.post_message(Unavailable("snapshots", str(exc)))
        self.post_message(ResultsRead(session.probe_results()))

    @on(RuntimeRead)
    def _runtime_read(self, message: RuntimeRead) -> None:
        self._show_runtime(message.facts)
        # The probes and 500 pods' statuses would hold the interpreter while this paints: after it.
        self.call_after_refresh(self.load_rest, True)

    @on(RuntimeLost)
    def _runtime_lost(self, message: RuntimeLost) -> None:
        self.query_one("#runtime-panel", Static).update(Text("not reachable (see above)", style="bold red"))
        self.app.runtime_lost(message.reason)  # type: ignore[attr-defined]

    @on(SandboxesRead)
    def _sandboxes_read(self, message: SandboxesRead) -> None:
        views = message.sandboxes
        ready = sum(1 for v in views if v.ready)
        self.pods = (ready, len(views) - ready, sum(v.containers for v in views))
        self._show_counts()

    @on(ImagesCounted)
    def _images_counted(self, message: ImagesCounted) -> None:
        self.images = message.count
        self._show_counts()

    @on(CatalogRead)
    def _catalog_read(self, message: CatalogRead) -> None:
        kinds: dict[str, int] = {}
        for row in message.catalog.snapshots:
            kinds[row.kind] = kinds.get(row.kind, 0) + 1
        self.snapshots = kinds
        self._show_counts()

    @on(Unavailable)
    def _unavailable(self, message: Unavailable) -> None:
        self.snapshots_unavailable = message.reason
        self._show_counts()

    @on(ResultsRead)
    def _results_read(self, message: ResultsRead) -> None:
        self._show_findings(message.results)

    def _show_runtime(self, facts: RuntimeFacts) -> None:
        grid = Table.grid(padding=(0, 1))
        grid.add_column(style="bold")
        grid.add_column()
        grid.add_row("runtime", node_text(f"{facts.name} {facts.version}"))
        grid.add_row("CRI", node_text(f"{facts.api_version} ({facts.api_package})"))
        grid.add_row("endpoint", node_text(facts.endpoint))
        for cond in facts.conditions:
            # Only the conditions the kubelet reads make the node NotReady; others are information.
            bad = "bold red" if cond.type in NODE_CONDITIONS else "yellow"
            grid.add_row(
                node_text(cond.type),
                node_text(
                    "true" if cond.status else f"FALSE {cond.reason}", style="green" if cond.status else bad
                ),
            )
        self.query_one("#runtime-panel", Static).update(grid)

    def _show_counts(self) -> None:
        grid = Table.grid(padding=(0, 1))
        grid.add_column(style="bold")
        grid.add_column()
        if self.pods is not None:
            ready, not_ready, containers = self.pods
            grid.add_row(
                "pods",
                Text.assemble(
                    f"{ready} ready, ", (f"{not_ready} not ready", "bold red" if not_ready else "")
                ),
            )
            grid.add_row("containers", str(containers))
        elif self.session.post_mortem or self.app.runtime_state == "unreachable":  # type: ignore[attr-defined]
            grid.add_row("pods", Text("unknown (no runtime)", style="dim"))
        else:
            grid.add_row("pods", "loading…")
        if self.images is not None:
            grid.add_row("images", str(self.images))
        kinds = self.snapshots
        if kinds is not None:
            grid.add_row(
                "snapshots",
                node_text(
                    f"{sum(kinds.values())} ({', '.join(f'{n} {k}' for k, n in sorted(kinds.items()))})"
                ),
            )
        elif self.snapshots_unavailable:
            grid.add_row(
                "snapshots", node_text(f"not available: {self.snapshots_unavailable}", style="yellow")
            )
        self.query_one("#counts-panel", Static).update(grid)

    def _show_findings(self, results: list[ProbeResult]) -> None:
        from tui.report import could_not_run_text  # the report writers: not needed for the first paint

        findings = sort_worst_first([f for r in results for f in r.findings if f.severity is not Severity.OK])
        missing = [r for r in results if r.could_not_run]
        table = Table.grid(padding=(0, 1))
        table.add_column(no_wrap=True)
        table.add_column(ratio=1, no_wrap=True, overflow="ellipsis")
        if missing:
            # As loud as a critical: the verdict is unknown, whatever the other probes found.
            table.add_row(
                Text("UNKN ", style="bold red"),
                Text(could_not_run_text([r.probe for r in missing]), style="bold"),
            )
        for finding in findings[:WORST_SHOWN]:
            table.add_row(severity_text(finding.severity), node_text(finding.title))
        if not findings:
            table.add_row(
                severity_text(Severity.OK),
                "No problems found by the probes that ran." if missing else "No problems found.",
            )
        elif len(findings) > WORST_SHOWN:
            table.add_row("", Text(f"… {len(findings) - WORST_SHOWN} more: press f", style="dim"))
        ran = sum(1 for r in results if r.status is ProbeStatus.OK)
        na = sum(1 for r in results if r.not_applicable)
        table.add_row(
            "",
            Text(
                f"probes: {ran} ran, {na} not applicable, {len(missing)} could not run",
                style="dim",
            ),
        )
        self.query_one("#findings-panel", Static).update(table)

    def _show_unreachable(self, reason: str) -> None:
        panel = self.query_one("#unreachable-panel", Static)
        panel.set_class(not reason, "-hidden")
        self.refresh_bindings()
        if reason:
            panel.update(
                Text.assemble(
                    (neutralise(reason), "bold"),
                    "\nReconnecting automatically. Press ",
                    ("m", "bold reverse"),
                    " for post-mortem mode (read the containerd root from disk).",
                )
            )

    @staticmethod
    def _next_text() -> Text:
        keys = [
            ("p", "pods"),
            ("s", "snapshots"),
            ("x", "processes"),
            ("f", "findings"),
            ("w", "runbooks"),
            ("e", "export"),
            ("?", "help"),
        ]
        out = Text()
        for key, what in keys:
            out.append(f" {key} ", style="bold reverse")
            out.append(f" {what}  ")
        return out
