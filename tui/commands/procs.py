"""``nodedoc procs``: containerd, its shims, runc and runc inits, with every pipe they hold and pipe budgets."""

from __future__ import annotations

import argparse
import json
import sys

from rich.console import Console
from rich.table import Table
from rich.text import Text

from probes.api import Need
from probes.readers.procfs.pipes import PipeEnd
from probes.readers.procfs.procs import RuntimeProcess, RuntimeScan, scan_runtime
from tui.options import add_node_options, node_from_args
from tui.untrusted import neutralise

#: How many uids the budget table shows (busiest first); JSON has them all.
TOP_USERS = 10


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "procs", help="the runtime's process tree (containerd, shims, runc, runc init) with pipe sizes"
    )
    add_node_options(parser)
    parser.add_argument("-o", "--output", choices=("table", "json"), default="table")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    node = node_from_args(args)
    missing = node.unmet_need(Need.PROCFS)
    if missing is not None:
        raise missing  # one line: a copied tree has no processes, post-mortem mode reads none
    scan = scan_runtime(node.proc_root)
    if args.output == "json":
        json.dump(scan.to_dict(), sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    console = Console()
    console.print(process_table(scan))
    console.print(pipes_table(scan))
    console.print(users_table(scan))
    limits = scan.limits
    console.print(
        f"fs.pipe-user-pages-soft={limits.soft_pages} fs.pipe-user-pages-hard={limits.hard_pages} "
        f"fs.pipe-max-size={limits.max_size}  kernel {limits.kernel}: a shrunken pipe holds "
        f"{limits.shrunk_bytes} bytes ({limits.shrunk_pages} pages), a normal one {limits.default_bytes}"
    )
    console.print(
        f"{scan.scanned} processes, {scan.pipes} pipes read in {scan.duration_ms:.0f} ms; "
        f"skipped {scan.vanished} that exited, {scan.fds_unreadable} whose fds could not be read"
    )
    return 0


def _age(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    if seconds < 172800:
        return f"{seconds / 3600:.0f}h"
    return f"{seconds / 86400:.0f}d"


def _depth(proc: RuntimeProcess, runtime_pids: set[int]) -> int:
    return sum(1 for pid in proc.ancestors if pid in runtime_pids)


def _peers_text(pipe: PipeEnd) -> str:
    peers = ", ".join(f"{p.comm}[{p.pid}]:{p.fd}{p.end[0]}" for p in pipe.peers[:3]) or "-"
    return peers + (f" +{len(pipe.peers) - 3}" if len(pipe.peers) > 3 else "")


def _bytes(value: int | None) -> str:
    return "?" if value is None else str(value)


def process_table(scan: RuntimeScan) -> Table:
    table = Table(
        box=None, pad_edge=False, header_style="bold", title="runtime processes", title_justify="left"
    )
    for column in ("PID", "PPID", "KIND", "COMM", "UID", "STATE", "WCHAN", "AGE", "CONTAINER"):
        wraps = column in ("WCHAN", "CONTAINER")
        table.add_column(
            column,
            no_wrap=not wraps,
            overflow="fold" if wraps else "ellipsis",
            min_width=None if wraps else len(column),
        )
    runtime_pids = {p.pid for p in scan.processes}
    for proc in scan.processes:
        container = proc.container_id[:12] if proc.container_id else ""
        if proc.runc_command:
            container = f"{proc.runc_command} {container}".strip()
        table.add_row(
            "." * _depth(proc, runtime_pids) + str(proc.pid),
            str(proc.ppid),
            proc.kind,
            Text(neutralise(proc.comm)),
            "" if proc.uid is None else str(proc.uid),
            proc.state,
            proc.wchan,
            _age(proc.age_s),
            Text(neutralise(container)),
        )
    if not scan.processes:
        table.add_row("", "", "", "no containerd, shim or runc process is running", "", "", "", "", "")
    return table


def pipes_table(scan: RuntimeScan) -> Table:
    table = Table(box=None, pad_edge=False, header_style="bold", title="their pipes", title_justify="left")
    for column in ("PID", "FD", "END", "PIPE", "SIZE", "WAITING", "OTHER HOLDERS (comm[pid]:fd end)"):
        table.add_column(column, no_wrap=column != "OTHER HOLDERS (comm[pid]:fd end)")
    for proc in scan.processes:
        for pipe in proc.pipes:
            style = (
                "bold red" if pipe.capacity is not None and pipe.capacity <= scan.limits.shrunk_bytes else ""
            )
            table.add_row(
                str(proc.pid),
                str(pipe.fd),
                pipe.end,
                str(pipe.inode),
                _bytes(pipe.capacity),
                _bytes(pipe.bytes_waiting),
                Text(neutralise(_peers_text(pipe))),
                style=style,
            )
    return table


def users_table(scan: RuntimeScan) -> Table:
    table = Table(
        box=None,
        pad_edge=False,
        header_style="bold",
        title="pipe pages per uid (estimate)",
        title_justify="left",
    )
    for column in ("UID", "PIPES", "PAGES", "SOFT LIMIT", "SHRUNKEN", "CAP_SYS_RESOURCE/ADMIN", "OVER"):
        table.add_column(column, no_wrap=True)
    for user in scan.users[:TOP_USERS]:
        over = "hard" if user.over_hard else "soft" if user.over_soft else ""
        table.add_row(
            str(user.uid),
            str(user.pipes),
            str(user.pages),
            str(user.soft_limit or "none"),
            str(user.shrunk_pipes),
            user.privilege,
            over,
        )
    return table
