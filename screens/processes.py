"""The runtime's process tree (containerd, shims, runc, runc init); the selected process's pipes with
capacity, bytes waiting and peers; each uid's pipe pages against fs.pipe-user-pages-soft."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.message import Message
from textual.widgets import DataTable, Static

from probes.errors import NodedocError
from tui.untrusted import neutralise
from tui.widgets import NodeScreen, node_text

PIPE_WCHANS = (
    "pipe_write",
    "anon_pipe_write",
    "pipe_wait_writable",
    "pipe_read",
    "anon_pipe_read",
    "pipe_wait",
)


def age_text(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit}"
    return f"{seconds:.0f}s"


def blocked(proc: dict[str, Any]) -> bool:
    """A runc init asleep in a pipe call: the seed-003 hang, shown in words not only colour."""
    return (
        proc["kind"] == "runc-init" and proc.get("wchan", "") in PIPE_WCHANS and proc["state"] in ("S", "D")
    )


class ProcessesScreen(NodeScreen):
    TITLE_TEXT = "Processes"
    BINDINGS = [Binding("r", "refresh", "Refresh", id="procs.refresh")]

    @dataclass
    class Loaded(Message):
        scan: dict[str, Any] | str

    def compose(self) -> ComposeResult:
        yield from self.compose_top()
        yield Static("scanning /proc…", id="procs-status", classes="status-line")
        yield DataTable(id="proc-table", cursor_type="row")
        with Horizontal(id="proc-bottom"):
            yield DataTable(id="pipe-table", cursor_type="row", show_cursor=False)
            yield Static("", id="pipe-users", classes="section")
        yield from self.compose_bottom()

    def on_mount(self) -> None:
        self.scan: dict[str, Any] = {}
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
            self.post_message(self.Loaded(self.session.processes()))
        except NodedocError as exc:
            self.post_message(self.Loaded(str(exc)))

    @on(Loaded)
    def _loaded(self, message: Loaded) -> None:
        self.query_one("#proc-table").set_class(False, "-stale")
        if isinstance(message.scan, str):
            self.query_one("#procs-status", Static).update(
                node_text(f"processes not available: {message.scan}", style="yellow")
            )
            return
        self.scan = message.scan
        procs = self.scan["processes"]
        runtime = {p["pid"] for p in procs}
        table = self.query_one("#proc-table", DataTable)
        table.clear()
        for p in procs:
            depth = sum(1 for a in p.get("ancestors", []) if a in runtime)
            hung = blocked(p)
            style = "bold red" if hung else ""
            table.add_row(
                str(p["pid"]),
                Text("  " * depth + ("└ " if depth else "") + neutralise(p["comm"]), style=style),
                Text(p["state"] + (" BLOCKED" if hung else ""), style=style),
                node_text(p.get("wchan") or "-"),
                age_text(p["age_s"]),
                node_text((p.get("container_id") or "-")[:13]),
                key=str(p["pid"]),
            )
        limits = self.scan["limits"]
        hung = sum(1 for p in procs if blocked(p))
        self.query_one("#procs-status", Static).update(
            Text.assemble(
                f"{len(procs)} runtime processes · {self.scan['pipes']} pipes · soft limit "
                f"{limits['soft_pages']} pages · shrunk pipe = {limits['shrunk_bytes']} B",
                (f" · {hung} runc init BLOCKED on a pipe" if hung else "", "bold red"),
            )
        )
        self._users()
        if procs:
            self._pipes(procs[0]["pid"])

    @on(DataTable.RowHighlighted, "#proc-table")
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key.value is not None:
            self._pipes(int(event.row_key.value))

    def _pipes(self, pid: int) -> None:
        proc = next((p for p in self.scan.get("processes", []) if p["pid"] == pid), None)
        table = self.query_one("#pipe-table", DataTable)
        table.clear()
        table.border_title = f"pipes of {pid}"
        shrunk = self.scan["limits"]["shrunk_bytes"]
        for pipe in (proc or {}).get("pipes", []):
            full = (
                pipe["capacity"] is not None
                and pipe["bytes_waiting"] is not None
                and pipe["bytes_waiting"] >= pipe["capacity"]
            )
            cap = "?" if pipe["capacity"] is None else str(pipe["capacity"])
            if pipe["capacity"] == shrunk:
                cap += " shrunk"
            peers = ", ".join(f"{p['comm']}[{p['pid']}]" for p in pipe["peers"][:2]) or "-"
            table.add_row(
                str(pipe["fd"]),
                pipe["end"],
                Text(cap, style="yellow" if "shrunk" in cap else ""),
                Text(
                    ("?" if pipe["bytes_waiting"] is None else str(pipe["bytes_waiting"]))
                    + (" FULL" if full else ""),
                    style="bold red" if full else "",
                ),
                node_text(peers),
            )
        if not (proc or {}).get("pipes"):
            table.add_row("-", Text("no pipes", style="dim"), "", "", "")

    def _users(self) -> None:
        out = Text()
        for user in self.scan["users"][:6]:
            over = user["over_soft"]
            out.append(
                f"uid {user['uid']:<6} {user['pages']:>5}/{user['soft_limit']} pages {user['pipes']} pipes",
                style="bold red" if over else "",
            )
            out.append(" OVER SOFT" if over else "", style="bold red")
            out.append("\n")
        self.query_one("#pipe-users", Static).update(out or "no pipes")
