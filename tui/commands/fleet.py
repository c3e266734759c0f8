"""``nodedoc fleet REPORT.json|DIR|- ...``: many nodes' reports merged, grouped by cause, the fix once per group.

Exit status as ``check``: 0 no warning in the fleet, 1 a warning, 2 a critical, 3 a node could not be
checked (or nodedoc could not run); 2 wins over 3, 3 over 1.
"""

from __future__ import annotations

import argparse
import sys

from probes.api import Severity
from tui.fleet import Fleet, merge, read_reports, render
from tui.options import output_file
from tui.report import write_private


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("fleet", help="merge many nodes' JSON reports: findings grouped by cause")
    parser.add_argument(
        "inputs", nargs="+", metavar="REPORT", help="report files, directories of them, or - (JSON lines)"
    )
    parser.add_argument("--format", choices=("text", "md", "html", "json"), default="text")
    parser.add_argument(
        "--output", type=output_file, metavar="FILE", help="write here (mode 0600) instead of stdout"
    )
    parser.add_argument(
        "--min-severity", choices=("info", "warning", "critical"), default="warning", help="default: warning"
    )
    parser.add_argument("--tui", action="store_true", help="walk the merged report in the troubleshooter")
    parser.set_defaults(func=run)


def exit_code(fleet: Fleet) -> int:
    ranks = {g.severity for g in fleet.groups}
    if "critical" in ranks:
        return 2
    if fleet.not_checked:
        return 3
    return 1 if "warning" in ranks else 0


def run(args: argparse.Namespace) -> int:
    fleet = merge(read_reports(args.inputs, sys.stdin), Severity(args.min_severity))
    if args.tui:
        from tui.fleet_app import FleetApp

        FleetApp(fleet).run()
        return exit_code(fleet)
    text = render(fleet, args.format)
    if args.output:
        write_private(args.output, text)
    else:
        sys.stdout.write(text)
    return exit_code(fleet)
