"""The ``nodedoc`` command line: the TUI when no subcommand is given, else one headless command.

Each subcommand lives in ``tui/commands/<name>.py`` with ``register(subparsers)`` that adds its parser
and sets ``func``. Errors nodedoc expects (:class:`probes.errors.NodedocError`) end as one line on stderr
and a non-zero exit; nothing prints a traceback unless ``NODEDOC_DEBUG=1``.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from probes.errors import NodedocError
from tui.commands import check, demo, fleet, lab, npd, pods, procs, report, runbook, snapshots
from tui.options import add_node_options

#: Subcommand modules, in help order.
COMMANDS = (pods, check, snapshots, procs, runbook, report, npd, fleet, lab, demo)

EXIT_CANNOT_RUN = 3


class Parser(argparse.ArgumentParser):
    """argparse with nodedoc's contract for bad input: one line on stderr and exit 3, never usage text."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_CANNOT_RUN, f"{self.prog}: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="nodedoc",
        allow_abbrev=False,  # `lab up --containerd 2` is not an abbreviation of --containerd-root
        description="Troubleshoot a Kubernetes node's container runtime (containerd + runc). "
        "With no command, opens the interactive troubleshooter.",
    )
    add_node_options(parser, top=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMANDS:
        module.register(sub)
    return parser


def _fail(message: str, code: int = EXIT_CANNOT_RUN) -> int:
    print(f"nodedoc: {message}", file=sys.stderr)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command is None:
            from tui.commands.tui import run_tui

            return run_tui(args)
        return int(args.func(args) or 0)
    except NodedocError as exc:
        return _fail(str(exc))
    except KeyboardInterrupt:
        return _fail("interrupted", 130)
    except BrokenPipeError:
        return 0
    except Exception as exc:
        if os.environ.get("NODEDOC_DEBUG"):
            raise
        return _fail(f"internal error: {type(exc).__name__}: {exc} (NODEDOC_DEBUG=1 shows the traceback)")


if __name__ == "__main__":
    sys.exit(main())
