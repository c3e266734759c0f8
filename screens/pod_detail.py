"""One pod: sandbox status, CRI's IPs beside the namespace's, containers, snapshot, processes, verbose info."""

from __future__ import annotations

import json

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Collapsible, DataTable, Static

from probes.api import Finding, ProbeResult, Remedy, Severity, sort_worst_first
from probes.errors import NodedocError
from probes.readers.cri.sandboxes import ContainerView, SandboxView
from probes.readers.disk.catalog import SnapshotRow
from probes.readers.procfs.netns import PodNetwork
from probes.readers.procfs.procs import RuntimeProcess
from tui.format import age_of_ns, remedy_text, short_id
from tui.messages import ContainersRead, PodNetworkRead, ProcessesRead, SnapshotChainRead, Unavailable
from tui.redact import redacted
from tui.untrusted import neutralise_data
from tui.widgets import NodeScreen, node_text, state_text


def snapshot_fixes(results: list[ProbeResult], snapshot_ids: set[int]) -> list[Finding]:
    """The snapshots probe's warnings and criticals about this pod's layers: the same fix the findings show."""
    out = []
    for f in (f for r in results for f in r.findings):
        ids = {f.subject.get("snapshot_id"), *(f.subject.get("snapshot_ids") or [])}
        if f.severity.rank >= Severity.WARNING.rank and ids & snapshot_ids:
            out.append(f)
    return sort_worst_first(out)


def fix_lines(findings: list[Finding]) -> list[Text]:
    """The first step of these findings, as the findings screen has it, each distinct step once (f shows all)."""
    steps: dict[str, tuple[list[str], Remedy]] = {}
    for f in neutralise_data(findings):  # steps quote image names and paths from the node
        if f.remediation:
            step = f.remediation[0]
            steps.setdefault(step.command or step.text, ([], step))[0].append(f.id)
    lines = []
    for ids, step in steps.values():
        lines.append(
            Text.assemble(("fix ", "bold"), (", ".join(ids), "bold"), (f"  {remedy_text(step)}", "dim"))
        )
        if step.command:
            lines.append(Text(f"  $ {step.command}", style="bold cyan"))
    if lines:
        lines.append(Text("  every step, and the alternatives: f (findings)", style="dim"))
    return lines


def network_table(row: PodNetwork) -> Table | Text:
    """CRI's IPs beside the namespace's real addresses, with a verdict a person reads without colour."""
    if row.error:
        return node_text(f"namespace not readable: {row.error}", style="yellow")
    cri, real = set(row.cri_ips), set(row.netns_ips or [])
    grid = Table(box=None, pad_edge=False, show_header=True, header_style="bold")
    grid.add_column("ADDRESS")
    grid.add_column("CRI")
    grid.add_column("NAMESPACE")
    grid.add_column("VERDICT")
    for ip in sorted(cri | real):
        both = ip in cri and ip in real
        verdict = "ok" if both else "MISSING in namespace" if ip in cri else "not reported by CRI"
        grid.add_row(
            node_text(ip),
            "yes" if ip in cri else "no",
            "yes" if ip in real else "no",
            Text(verdict, style="green" if both else "bold red"),
        )
    if not cri and not real:
        grid.add_row("-", "no", "no", Text("no addresses at all", style="bold red"))
    return grid


class PodDetailScreen(NodeScreen):
    TITLE_TEXT = "Pod"
    BINDINGS = [
        Binding("r", "refresh", "Refresh", id="pod.refresh"),
        Binding("escape", "app.go_back", "Back"),
    ]

    def __init__(self, view: SandboxView) -> None:
        super().__init__()
        self.view = view

    def compose(self) -> ComposeResult:
        yield from self.compose_top()
        with VerticalScroll(id="pod-body"):
            yield Static(self._status_text(), id="pod-status", classes="section")
            yield Static("reading the namespace…", id="pod-network", classes="section")
            yield DataTable(id="pod-containers", cursor_type="row", show_cursor=False)
            yield Static("reading the snapshot…", id="pod-snapshot", classes="section")
            yield Static("reading processes…", id="pod-procs", classes="section")
            with Collapsible(title="verbose info (JSON, secrets redacted)", id="pod-verbose"):
                yield Static(  # json.dumps escapes control characters; Text keeps brackets from being markup
                    Text(json.dumps(redacted(self.view.info), indent=1, sort_keys=True)),
                    id="pod-verbose-json",
                )
        yield from self.compose_bottom()

    def on_mount(self) -> None:
        for sel, title in (
            ("#pod-network", "Network: CRI vs namespace"),
            ("#pod-containers", "Containers"),
            ("#pod-snapshot", "Snapshot"),
            ("#pod-procs", "Shim and runc"),
        ):
            self.query_one(sel).border_title = title
        table = self.query_one("#pod-containers", DataTable)
        for column in ("NAME", "STATE", "IMAGE", "RESTARTS", "EXIT", "REASON"):
            table.add_column(column, key=column)

    def action_refresh(self) -> None:
        self.refresh_data()

    def refresh_data(self) -> None:
        self.load_runtime()
        self.load_disk()
        self.load_procs()

    # -- workers ---------------------------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="pod-runtime", exit_on_error=False)
    def load_runtime(self) -> None:
        self.post_message(PodNetworkRead(self.session.pod_network(self.view)))
        if not self.session.post_mortem:
            self.post_message(ContainersRead(self.session.containers(self.view.id)))

    @work(thread=True, exclusive=True, group="pod-disk", exit_on_error=False)
    def load_disk(self) -> None:
        try:
            catalog = self.session.snapshot_catalog()
        except NodedocError as exc:
            self.post_message(Unavailable("snapshot", str(exc)))
            return
        chain: list[SnapshotRow] = []
        cur = catalog.by_name(self.view.snapshot_key)
        while cur is not None and len(chain) < 64:
            chain.append(cur)
            cur = catalog.by_id(cur.parent_id) if cur.parent_id is not None else None
        self.post_message(SnapshotChainRead(chain))
        committed = [s.id for s in chain if s.kind == "committed"]
        if committed:
            results = self.session.verify(committed)
            verified = {r.id: r for r in results}
            self.post_message(SnapshotChainRead(chain, verified))
            if any(r.status != "ok" for r in results):
                fixes = snapshot_fixes(self.session.probe_results(only=["snapshots"]), set(committed))
                self.post_message(SnapshotChainRead(chain, verified, fixes))

    @work(thread=True, exclusive=True, group="pod-procs", exit_on_error=False)
    def load_procs(self) -> None:
        try:
            self.post_message(ProcessesRead(self.session.processes()))
        except NodedocError as exc:
            self.post_message(Unavailable("processes", str(exc)))

    # -- drawing ---------------------------------------------------------------------------------------

    @on(PodNetworkRead)
    def _network(self, message: PodNetworkRead) -> None:
        self.query_one("#pod-network", Static).update(network_table(message.network))

    @on(ContainersRead)
    def _containers_read(self, message: ContainersRead) -> None:
        self._containers(message.containers)

    @on(SnapshotChainRead)
    def _snapshot_read(self, message: SnapshotChainRead) -> None:
        self._snapshot(message)

    @on(ProcessesRead)
    def _processes_read(self, message: ProcessesRead) -> None:
        self._procs(message.processes.scan.processes)

    @on(Unavailable)
    def _unavailable(self, message: Unavailable) -> None:
        panel = "#pod-snapshot" if message.what == "snapshot" else "#pod-procs"
        self.query_one(panel, Static).update(node_text(f"not available: {message.reason}", style="yellow"))

    def _status_text(self) -> Table:
        v = self.view
        grid = Table.grid(padding=(0, 1))
        grid.add_column(style="bold")
        grid.add_column()
        grid.add_column(style="bold")
        grid.add_column()
        now = self.session.now()
        grid.add_row("pod", node_text(f"{v.namespace}/{v.name}"), "state", state_text(v.state))
        grid.add_row("id", node_text(short_id(v.id)), "age", age_of_ns(v.created_at, now))
        grid.add_row("attempt", str(v.attempt), "handler", node_text(v.runtime_handler or "(default)"))
        netns = v.netns_path or ("host" if v.host_network else "-")
        grid.add_row("pid", str(v.pid or "-"), "netns", node_text(netns))
        if v.status_error:
            grid.add_row("status", node_text(v.status_error, style="bold red"), "", "")
        return grid

    def _containers(self, containers: list[ContainerView]) -> None:
        table = self.query_one("#pod-containers", DataTable)
        table.clear()
        for c in containers:
            exit_code = str(c.exit_code) if c.state == "exited" else "-"
            table.add_row(
                node_text(c.name),
                state_text(c.state),
                node_text(c.image),
                str(c.restarts),
                exit_code,
                node_text(c.reason or c.status_error or "-"),
                key=c.id,
            )
        if not containers:
            table.add_row(Text("no containers", style="dim"), "", "", "", "", "")
        table.styles.height = len(containers) + 3 if containers else 4

    def _snapshot(self, data: SnapshotChainRead) -> None:
        panel = self.query_one("#pod-snapshot", Static)
        chain, verified = data.chain, data.verified
        if not chain:
            panel.update(
                node_text(
                    f"snapshot {self.view.snapshot_key[:13] or '?'} not found under the root",
                    style="bold red",
                )
            )
            return
        grid = Table.grid(padding=(0, 1))
        for _ in range(4):
            grid.add_column()
        for snap in chain:
            if snap.kind != "committed":
                check = Text("rw layer (not verifiable)", style="dim")
            elif verified is None:
                check = Text("verifying…", style="dim")
            else:
                result = verified.get(snap.id)
                status = result.status if result else "?"
                problems = result.check.missing + result.check.changed if result and result.check else []
                check = Text.assemble(state_text(status), node_text(" " + "; ".join(problems[:3])))
            grid.add_row(f"#{snap.id}", snap.kind, node_text(", ".join(snap.images) or "-"), check)
        panel.update(Group(grid, *fix_lines(data.fixes)) if data.fixes else grid)

    def _procs(self, processes: list[RuntimeProcess]) -> None:
        panel = self.query_one("#pod-procs", Static)
        mine = [
            p
            for p in processes
            if p.container_id == self.view.id or (p.kind == "shim" and self.view.id in " ".join(p.cmdline))
        ]
        if not mine:
            panel.update(Text("no shim or runc process found for this sandbox", style="yellow"))
            return
        grid = Table.grid(padding=(0, 1))
        for _ in range(5):
            grid.add_column()
        for p in mine:
            grid.add_row(str(p.pid), p.kind, node_text(p.comm), p.state, node_text(f"wchan {p.wchan or '-'}"))
        panel.update(grid)
