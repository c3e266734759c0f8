"""Options every command shares, and the NodeContext they describe."""

from __future__ import annotations

import argparse
from pathlib import Path

from probes.node import NodeContext
from probes.readers.cri.client import DEFAULT_TIMEOUT


def add_node_options(parser: argparse.ArgumentParser, top: bool = False) -> None:
    """--endpoint, --containerd-root, --containerd-state, --containerd-config, --host-root, --timeout.

    Defaults are ``argparse.SUPPRESS`` on subparsers so an option given before the subcommand is kept.
    """
    default = None if top else argparse.SUPPRESS
    group = parser.add_argument_group("node")
    group.add_argument(
        "--endpoint",
        "-r",
        default=default,
        metavar="E",
        help="CRI endpoint (unix:///run/containerd/containerd.sock); else crictl's discovery",
    )
    group.add_argument(
        "--containerd-root",
        type=Path,
        default=default,
        metavar="DIR",
        help="containerd root (alone: post-mortem mode on a copy of /var/lib/containerd)",
    )
    group.add_argument(
        "--containerd-state",
        type=Path,
        default=default,
        metavar="DIR",
        help="containerd state directory (default from the runtime or its config)",
    )
    group.add_argument(
        "--containerd-config",
        default=default,
        metavar="FILE",
        help="containerd's config.toml, a host path (default: the running containerd's --config, else the "
        "standard locations)",
    )
    group.add_argument(
        "--host-root",
        type=Path,
        default=Path("/") if top else argparse.SUPPRESS,
        metavar="DIR",
        help="the host's / mounted here (nodedoc in a debug pod)",
    )
    group.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT if top else argparse.SUPPRESS,
        metavar="S",
        help=f"seconds to wait for the runtime (default {DEFAULT_TIMEOUT:g})",
    )


def node_from_args(args: argparse.Namespace) -> NodeContext:
    options = {}
    if getattr(args, "containerd_config", None):
        options["containerd_config"] = args.containerd_config
    return NodeContext(
        options=options,
        endpoint=getattr(args, "endpoint", None),
        containerd_root=getattr(args, "containerd_root", None),
        containerd_state=getattr(args, "containerd_state", None),
        host_root=getattr(args, "host_root", Path("/")),
        timeout=getattr(args, "timeout", DEFAULT_TIMEOUT),
    )
