"""``nodedoc`` with no subcommand: the interactive troubleshooter on this node."""

from __future__ import annotations

import argparse
import sys

from probes.errors import NodedocError
from tui.options import node_from_args


def run_tui(args: argparse.Namespace) -> int:
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        # Without a terminal Textual would write escape codes into a pipe and wait for keys forever.
        raise NodedocError(
            "the troubleshooter needs a terminal (stdin and stdout); headless, run `nodedoc check` or "
            "`nodedoc report`"
        )
    from tui.app import NodedocApp
    from tui.session import NodeSession

    NodedocApp(NodeSession(node_from_args(args))).run()
    return 0
