"""``nodedoc check``: run the probes headless and report, worst first.

Exit status: 0 nothing worse than info, 1 a warning, 2 a critical finding, 3 nodedoc could not run.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import threading
from typing import TYPE_CHECKING

from probes.errors import NodedocError
from probes.registry import run_probes, select
from tui.options import add_node_options, node_from_args, output_file
from tui.report import render, report_of, write_private

if TYPE_CHECKING:
    from probes.node import NodeContext


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "check", help="run the probes and report findings (exit 0 ok, 1 warning, 2 critical)"
    )
    add_node_options(parser)
    parser.add_argument(
        "--probe",
        action="append",
        default=[],
        metavar="ID",
        help="run only this probe (repeatable); default: all",
    )
    parser.add_argument("--format", choices=("text", "json", "md"), default="text")
    parser.add_argument(
        "--output",
        type=output_file,
        metavar="FILE",
        help="write the report here (mode 0600) instead of stdout",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="verify only the snapshots sandboxes use, not every committed one",
    )
    parser.set_defaults(func=run)


def _inventory(node: NodeContext) -> None:
    with contextlib.suppress(Exception):  # an error is the report's to show: it asks again
        node.container_inventory()


def run(args: argparse.Namespace) -> int:
    try:
        refs = select(args.probe)
    except ValueError as exc:
        raise NodedocError(str(exc)) from None
    node = node_from_args(args)
    node.options["quick"] = args.quick
    if not args.probe:
        # Reading the runtime's binaries is mostly hashing them (their checksums against the package's),
        # which runs on another core: started now, before the probes are even imported, they are read by
        # the time the service, versions, runc and config probes ask.
        node.read_runtime_binaries_ahead()
    if not node.post_mortem:
        # The report's container inventory is CRI calls, mostly waiting on the runtime: asked for now, beside
        # the probes, it is read (once, shared through the node) by the time the report is built.
        threading.Thread(target=_inventory, args=(node,), name="inventory", daemon=True).start()
    report = report_of(node, run_probes(node, refs))
    if args.format != "text":
        text = render(report, args.format)
    else:  # rich only for the terminal text
        from rich.console import Console

        from tui.report.as_text import render_text

        if not args.output:
            render_text(report, Console(highlight=False))
            return report.exit_code
        console = Console(record=True, width=120, file=open("/dev/null", "w"))  # noqa: SIM115
        render_text(report, console)
        text = console.export_text()
    if args.output:
        write_private(args.output, text)
    else:
        sys.stdout.write(text)
    return report.exit_code
