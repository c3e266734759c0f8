"""``nodedoc report``: run the probes and write the findings report (Markdown, HTML or JSON).

Redacted by default (container env values, tokens, passwords, registry credentials); ``--no-redact``
keeps them. A file named with ``--output`` is written readable only by its owner (0600).
"""

from __future__ import annotations

import argparse
import sys

from probes.errors import NodedocError
from probes.registry import run_probes, select
from tui.options import add_node_options, node_from_args, output_file
from tui.report import render, report_of, write_private
from tui.runbook import load_session_document


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "report", help="write the findings report to paste into an incident (md, html or json; redacted)"
    )
    add_node_options(parser)
    parser.add_argument("--format", choices=("md", "html", "json"), default="md")
    parser.add_argument(
        "--output", "-o", type=output_file, metavar="FILE", help="write here (mode 0600) instead of stdout"
    )
    parser.add_argument(
        "--runbook-session",
        metavar="FILE",
        help="include a walkthrough saved by `nodedoc runbook run --save` (path, answers, notes, times)",
    )
    parser.add_argument(
        "--no-redact",
        action="store_true",
        help="keep container env values, tokens and passwords in the report (it says so at the top)",
    )
    parser.add_argument(
        "--probe", action="append", default=[], metavar="ID", help="run only this probe (repeatable)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        refs = select(args.probe)
    except ValueError as exc:
        raise NodedocError(str(exc)) from None
    session = load_session_document(args.runbook_session) if args.runbook_session else None
    node = node_from_args(args)
    report = report_of(node, run_probes(node, refs), walkthrough=session, redact=not args.no_redact)
    text = render(report, args.format)
    if args.output:
        write_private(args.output, text)
        print(
            f"report written to {args.output} ({report.redaction.values} value(s) redacted)", file=sys.stderr
        )
    else:
        sys.stdout.write(text)
    return 0
