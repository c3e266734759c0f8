"""``nodedoc`` with no subcommand: the interactive troubleshooter on this node."""

from __future__ import annotations

import argparse

from tui.options import node_from_args


def run_tui(args: argparse.Namespace) -> int:
    from tui.app import NodedocApp
    from tui.session import NodeSession

    NodedocApp(NodeSession(node_from_args(args))).run()
    return 0
