"""The ``nodedoc`` command line: the TUI when no subcommand is given, else one headless command.

Each subcommand lives in ``tui/commands/<name>.py`` with ``register(subparsers)`` that adds its parser
and sets ``func``. Only the module of the command being run is imported (grpc, rich, textual and the CRI
stubs cost more than the rest of a short command): the others appear in ``--help`` from :data:`COMMANDS`. Errors nodedoc expects (:class:`probes.errors.NodedocError`) end as one line on stderr
and a non-zero exit; nothing prints a traceback unless ``NODEDOC_DEBUG=1``.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from probes.errors import NodedocError
from tui.options import add_node_options

#: Subcommand -> its one-line help, in help order; the module is ``tui.commands.<name>``. The help must be
#: the one the module registers (a test compares them): it is shown without importing the module.
COMMANDS = {
    "pods": "list pod sandboxes with their IPs (crictl pods, plus the network)",
    "check": "run the probes and report findings (exit 0 ok, 1 warning, 2 critical)",
    "snapshots": "list overlayfs snapshots and verify them against their layers",
    "procs": "the runtime's process tree (containerd, shims, runc, runc init) with pipe sizes",
    "runbook": "guided runbooks: from a symptom to a diagnosis",
    "report": "write the findings report to paste into an incident (md, html or json; redacted)",
    "npd": "node-problem-detector plugin: exit 0 ok, 1 problem (one line), 2 unknown",
    "fleet": "merge many nodes' JSON reports: findings grouped by cause",
    "lab": "start or stop a disposable real containerd node in a directory",
    "demo": "start a lab node with a few pods and open the troubleshooter on it",
}

EXIT_CANNOT_RUN = 3


class Parser(argparse.ArgumentParser):
    """argparse with nodedoc's contract for bad input: one line on stderr and exit 3, never usage text."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_CANNOT_RUN, f"{self.prog}: {message} (see {self.prog} --help)\n")


def command_named(argv: Sequence[str], parser: argparse.ArgumentParser) -> str | None:
    """The subcommand in ``argv``: its first word that is not an option or an option's value."""
    takes_value = {flag for action in parser._actions if action.nargs != 0 for flag in action.option_strings}
    words = iter(argv)
    for word in words:
        if word == "--":
            return next(words, None)
        if word in takes_value:
            next(words, None)
        elif not word.startswith("-"):
            return word
    return None


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser for ``argv``: the named command's own parser, the others as names and help only.

    With ``argv`` None every command registers its parser (for tests and documentation).
    """
    parser = Parser(
        prog="nodedoc",
        allow_abbrev=False,  # `lab up --containerd 2` is not an abbreviation of --containerd-root
        description="Troubleshoot a Kubernetes node's container runtime (containerd + runc). "
        "With no command, opens the interactive troubleshooter.",
    )
    add_node_options(parser, top=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    chosen = None if argv is None else command_named(argv, parser)
    for name, help_text in COMMANDS.items():
        if argv is None or name == chosen:
            importlib.import_module(f"tui.commands.{name}").register(sub)
        else:
            sub.add_parser(name, help=help_text, add_help=False)
    return parser


def _fail(message: str, code: int = EXIT_CANNOT_RUN) -> int:
    print(f"nodedoc: {message}", file=sys.stderr)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command in ``argv``; its exit status. Called as the program (``argv`` None: the console
    script, ``python -m tui.cli``), a headless command ends the process itself once its output is flushed:
    tearing down an interpreter that has grpc loaded costs a short command as much CPU as its own CRI
    calls. nodedoc registers nothing to run at exit and closes every file it writes before returning."""
    program = argv is None
    if argv is None:
        argv = sys.argv[1:]
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    code = _run(args)
    if program and args.command is not None:
        _exit_now(code)
    return code


def _run(args: argparse.Namespace) -> int:
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


def _exit_now(code: int) -> NoReturn:
    try:
        sys.stdout.flush()
    except BrokenPipeError:  # nodedoc pods | head: the reader has what it wanted
        pass
    except (OSError, ValueError) as exc:
        code = _fail(f"cannot write the output: {exc}")
    try:
        sys.stderr.flush()
    except (OSError, ValueError):
        pass
    os._exit(code)


if __name__ == "__main__":
    sys.exit(main())
