"""The runtime's process tree (containerd, shims, runc, runc init); the selected process's pipes with
capacity, bytes waiting and peers; each uid's pipe pages against fs.pipe-user-pages-soft.

Whether a runc init is hung is the runc probe's verdict on the scan shown, never re-derived here.
"""

from __future__ import annotations

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widgets import DataTable, Static

from probes.errors import NodedocError
from tui.format import human_age
from tui.messages import ProcessesRead, Unavailable
from tui.session import RuntimeProcesses
from tui.untrusted import neutralise
from tui.widgets import NodeScreen, node_text


class ProcessesScreen(NodeScreen):
    TITLE_TEXT = "Processes"
    BINDINGS = [Binding("r", "refresh", "Refresh", id="procs.refresh")]

    def compose(self) -> ComposeResult:
        yield from self.compose_top()
        yield Static("scanning /proc…", id="procs-status", classes="status-line")
        yield DataTable(id="proc-table", cursor_type="row")
        with Horizontal(id="proc-bottom"):
            yield DataTable(id="pipe-table", cursor_type="row", show_cursor=False)
            yield Static("", id="pipe-users", classes="section")
        yield from self.compose_bottom()

    def on_mount(self) -> None:
        self.processes: RuntimeProcesses | None = None
        procs = self.query_one("#proc-table", DataTable)
        for column in ("PID", "PROCESS", "STATE", "WCHAN", "AGE", "CONTAINER"):
            procs.add_column(column, key=column)
        pipes = self.query_one("#pipe-table", DataTable)
        for column in ("FD", "END", "CAP", "WAITING", "PEERS"):
            pipes.add_column(column, key=column)
        pipes.border_title = "pipes"
        self.query_one("#pipe-users").border_title = "pipe pages per uid"

    def action_refresh(self) -> None:
        self.refresh_data()

    def refresh_data(self) -> None:
        self.query_one("#procs-status", Static).update("scanning /proc…")
        self.query_one("#proc-table").set_class(True, "-stale")
        self.load()

    @work(thread=True, exclusive=True, group="procs", exit_on_error=False)
    def load(self) -> None:
        try:
            self.post_message(ProcessesRead(self.session.processes()))
        except NodedocError as exc:
            self.post_message(Unavailable("processes", str(exc)))

    @on(Unavailable)
    def _unavailable(self, message: Unavailable) -> None:
        self.query_one("#proc-table").set_class(False, "-stale")
        self.query_one("#procs-status", Static).update(
            node_text(f"processes not available: {message.reason}", style="yellow")
        )

    @on(ProcessesRead)
    def _loaded(self, message: ProcessesRead) -> None:
        self.query_one("#proc-table").set_class(False, "-stale")
        self.processes = message.processes
        scan = message.processes.scan
        runtime = {p.pid for p in scan.processes}
        table = self.query_one("#proc-table", DataTable)
        table.clear()
        hung = 0
        for p in scan.processes:
            depth = sum(1 for a in p.ancestors if a in runtime)
            blocked = message.processes.blocked_init(p.pid) is not None
            hung += blocked
            style = "bold red" if blocked else ""
            table.add_row(
                str(p.pid),
                Text("  " * depth + ("└ " if depth else "") + neutralise(p.comm), style=style),
                Text(p.state + (" BLOCKED" if blocked else ""), style=style),
                node_text(p.wchan or "-"),
                human_age(p.age_s),
                node_text((p.container_id or "-")[:13]),
                key=str(p.pid),
            )
        limits = scan.limits
        self.query_one("#procs-status", Static).update(
            Text.assemble(
                f"{len(scan.processes)} runtime processes · {scan.pipes} pipes · soft limit "
                f"{limits.soft_pages} pages · shrunk pipe = {limits.shrunk_bytes} B",
                (f" · {hung} runc init BLOCKED on a pipe" if hung else "", "bold red"),
            )
        )
        self._users()
        if scan.processes:
            self._pipes(scan.processes[0].pid)

    @on(DataTable.RowHighlighted, "#proc-table")
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key.value is not None:
            self._pipes(int(event.row_key.value))

    def _pipes(self, pid: int) -> None:
        if self.processes is None:
            return
        scan = self.processes.scan
        proc = scan.by_pid(pid)
        pipes = proc.pipes if proc else []
        table = self.query_one("#pipe-table", DataTable)
        table.clear()
        table.border_title = f"pipes of {pid}"
        for pipe in pipes:
            cap = "?" if pipe.capacity is None else str(pipe.capacity)
            if pipe.capacity == scan.limits.shrunk_bytes:
                cap += " shrunk"
            peers = ", ".join(f"{p.comm}[{p.pid}]" for p in pipe.peers[:2]) or "-"
            table.add_row(
                str(pipe.fd),
                pipe.end,
                Text(cap, style="yellow" if "shrunk" in cap else ""),
                Text(
                    ("?" if pipe.bytes_waiting is None else str(pipe.bytes_waiting))
                    + (" FULL" if pipe.full else ""),
                    style="bold red" if pipe.full else "",
                ),
                node_text(peers),
            )
        if not pipes:
            table.add_row("-", Text("no pipes", style="dim"), "", "", "")

    def _users(self) -> None:
        if self.processes is None:
            return
        out = Text()
        for user in self.processes.scan.users[:6]:
            over = user.over_soft
            out.append(
                f"uid {user.uid:<6} {user.pages:>5}/{user.soft_limit} pages {user.pipes} pipes",
                style="bold red" if over else "",
            )
            out.append(" OVER SOFT" if over else "", style="bold red")
            out.append("\n")
        self.query_one("#pipe-users", Static).update(out or "no pipes")
