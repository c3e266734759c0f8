"""``nodedoc check``: run the probes headless and report, worst first.

Exit status: 0 nothing worse than info, 1 a warning, 2 a critical finding, 3 nodedoc could not run.
"""

from __future__ import annotations

import argparse
import sys

from probes.errors import NodedocError
from probes.registry import run_probes, select
from tui.options import add_node_options, node_from_args, output_file
from tui.report import render, report_of, write_private


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


def run(args: argparse.Namespace) -> int:
    try:
        refs = select(args.probe)
    except ValueError as exc:
        raise NodedocError(str(exc)) from None
    node = node_from_args(args)
    node.options["quick"] = args.quick
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
