"""``nodedoc pods``: every sandbox with its IPs, filtered, as a table or JSON."""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from probes.errors import NodedocError
from tui.columns import RESET, YELLOW, render_columns
from tui.format import age_of_ns, short_id
from tui.options import add_node_options, node_from_args
from tui.untrusted import neutralise

if TYPE_CHECKING:
    from probes.readers.cri.sandboxes import SandboxView


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("pods", help="list pod sandboxes with their IPs (crictl pods, plus the network)")
    add_node_options(parser)
    parser.add_argument("-o", "--output", choices=("table", "wide", "json"), default="table")
    parser.add_argument("--name", metavar="REGEX", help="keep pods whose name matches")
    parser.add_argument("--namespace", metavar="REGEX", help="keep pods whose namespace matches")
    parser.add_argument(
        "--label",
        action="append",
        default=[],
        metavar="K=V",
        help="keep pods with this label (repeatable; all must match)",
    )
    parser.add_argument("--state", choices=("ready", "notready"), help="keep pods in this state")
    parser.add_argument(
        "--verbose",
        "-v",
        action="store_true",
        help="also fetch the runtime's verbose info: sandbox pid, netns path, snapshot key "
        "(implied by -o wide; slower on a busy node)",
    )
    parser.set_defaults(func=run)


def _regex(text: str | None, what: str) -> re.Pattern[str] | None:
    if text is None:
        return None
    try:
        return re.compile(text)
    except re.error as exc:
        raise NodedocError(f"--{what} {text!r} is not a valid regular expression: {exc}") from None


def pod_filter(args: argparse.Namespace) -> Callable[[SandboxView], bool]:
    name, namespace = _regex(args.name, "name"), _regex(args.namespace, "namespace")
    labels = {}
    for item in args.label:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise NodedocError(f"--label {item!r} must be KEY=VALUE")
        labels[key] = value

    def keep(view: SandboxView) -> bool:
        return (
            (name is None or bool(name.search(view.name)))
            and (namespace is None or bool(namespace.search(view.namespace)))
            and all(view.labels.get(k) == v for k, v in labels.items())
            and (args.state is None or view.state == args.state)
        )

    return keep


def run(args: argparse.Namespace) -> int:
    from probes.readers.cri.sandboxes import list_sandboxes

    keep = pod_filter(args)
    node = node_from_args(args)
    verbose = args.verbose or args.output == "wide"
    views = list_sandboxes(node.cri(), verbose=verbose, keep=keep, locate=node.sandbox_locations)
    views = [v for v in views if keep(v)]  # state may have changed between list and status
    if args.output == "json":
        json.dump({"items": [v.to_dict() for v in views]}, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    # Names, labels and IPs come from whoever created the pod: each shown string is made inert.
    wide = args.output == "wide"
    headers = ["POD ID", "NAME", "NAMESPACE", "STATE", "AGE", "ATTEMPT", "IP", "CONTAINERS"]
    if wide:
        headers += ["HANDLER", "PID"]
    rows = []
    for v in views:
        ident = neutralise(v.id)
        row = [
            ident if wide else short_id(ident),
            neutralise(v.name),
            neutralise(v.namespace),
            "Ready" if v.ready else "NotReady",
            age_of_ns(v.created_at),
            str(v.attempt),
            ",".join(neutralise(ip) for ip in v.ips) or ("host" if v.host_network else "-"),
            str(v.containers),
        ]
        if wide:
            row += [neutralise(v.runtime_handler) or "(default)", str(v.pid or "-")]
        rows.append(row)
    colour = sys.stdout.isatty()
    sys.stdout.write(
        render_columns(headers, rows, highlighted=[bool(v.status_error) for v in views], colour=colour)
    )
    for v in views:
        if v.status_error:
            line = f"{short_id(neutralise(v.id))}: status unavailable: {neutralise(v.status_error)}"
            print(f"{YELLOW}{line}{RESET}" if colour else line)
    return 0
