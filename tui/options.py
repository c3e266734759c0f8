"""Options every command shares, the NodeContext they describe, and the checks of what they name.

A bad value is an ``argparse.ArgumentTypeError``: the parser (:class:`tui.cli.Parser`) turns it into one
line on stderr and exit 3, before anything touches the node.
"""

from __future__ import annotations

import argparse
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING

from probes.errors import CriError, NodedocError
from probes.readers.cri.endpoint import DEFAULT_TIMEOUT, socket_path

if TYPE_CHECKING:
    from probes.node import NodeContext

#: The longest --timeout accepted: a runtime that needs more than this is down.
MAX_TIMEOUT = 3600.0


def seconds(text: str) -> float:
    """A timeout: a finite number of seconds above 0 (0, negative, nan and inf would never wait or never end)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not (math.isfinite(value) and 0 < value <= MAX_TIMEOUT):
        raise argparse.ArgumentTypeError(f"{text!r}: give seconds above 0 and at most {MAX_TIMEOUT:g}")
    return value


def endpoint(text: str) -> str:
    """A CRI endpoint that names a socket: ``unix:///path`` or a bare path."""
    try:
        path = socket_path(text)
    except CriError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if not path.strip():
        raise argparse.ArgumentTypeError(f"{text!r} names no socket (unix:///run/containerd/containerd.sock)")
    return text


def directory(text: str) -> Path:
    """A directory named on the command line: it must exist (a typo is an error, not a node with no data)."""
    path = Path(text)
    if not path.is_dir():
        raise argparse.ArgumentTypeError(
            f"{text}: {'not a directory' if path.exists() else 'no such directory'}"
        )
    return path


def output_file(text: str) -> str:
    """A file nodedoc will write: not a directory, and in a directory that exists."""
    path = Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a directory: name a file to write")
    if not path.parent.is_dir():
        raise argparse.ArgumentTypeError(f"{text}: directory {path.parent} does not exist")
    return text


def add_node_options(parser: argparse.ArgumentParser, top: bool = False) -> None:
    """--endpoint, --containerd-root, --containerd-state, --containerd-config, --host-root, --timeout.

    Defaults are ``argparse.SUPPRESS`` on subparsers so an option given before the subcommand is kept.
    """
    default = None if top else argparse.SUPPRESS
    group = parser.add_argument_group("node")
    group.add_argument(
        "--endpoint",
        "-r",
        type=endpoint,
        default=default,
        metavar="E",
        help="CRI endpoint (unix:///run/containerd/containerd.sock); else crictl's discovery",
    )
    group.add_argument(
        "--containerd-root",
        type=directory,
        default=default,
        metavar="DIR",
        help="containerd root (alone: post-mortem mode on a copy of /var/lib/containerd)",
    )
    group.add_argument(
        "--containerd-state",
        type=directory,
        default=default,
        metavar="DIR",
        help="containerd state directory (default from the runtime or its config)",
    )
    group.add_argument(
        "--containerd-config",
        default=default,
        metavar="FILE",
        help="containerd's config.toml: a host path, or a path under --host-root as given (default: the running "
        "containerd's --config, else the standard locations)",
    )
    group.add_argument(
        "--host-root",
        type=directory,
        default=None if top else argparse.SUPPRESS,
        metavar="DIR",
        help="the host's / mounted here (nodedoc in a debug pod: --host-root /host)",
    )
    group.add_argument(
        "--node-name",
        default=default,
        metavar="NAME",
        help="the node's Kubernetes name in reports (default: $NODE_NAME, else the host name)",
    )
    group.add_argument(
        "--timeout",
        type=seconds,
        default=DEFAULT_TIMEOUT if top else argparse.SUPPRESS,
        metavar="S",
        help=f"seconds to wait for the runtime (default {DEFAULT_TIMEOUT:g})",
    )


# Where ``kubectl debug node/NAME --profile=sysadmin`` mounts the node's / inside the debug container.
DEBUG_HOST_MOUNT = Path("/host")
# Files that say "this process runs in a container": nodedoc's own image, Docker, Podman.
CONTAINER_MARKERS = (Path("/etc/nodedoc-image"), Path("/.dockerenv"), Path("/run/.containerenv"))


def in_debug_container(mount: Path = DEBUG_HOST_MOUNT) -> bool:
    """True in a container that has a host's root mounted at ``/host`` (a ``kubectl debug node`` pod)."""
    contained = any(marker.exists() for marker in CONTAINER_MARKERS) or "container" in os.environ
    return contained and (mount / "proc").is_dir() and (mount / "etc").is_dir()


def host_root_from_args(args: argparse.Namespace) -> Path:
    """``--host-root`` as given; without it ``/``, unless that would look at a debug container, not the node."""
    given = getattr(args, "host_root", None)
    if given is not None:
        return Path(given)
    if in_debug_container():
        raise NodedocError(
            f"running in a container with the node's / at {DEBUG_HOST_MOUNT}: add --host-root "
            f"{DEBUG_HOST_MOUNT} to look at the node (or --host-root / to look at this container)"
        )
    return Path("/")


def as_host_path(given: str, host_root: Path) -> str:
    """A file named on the command line as the host sees it: a path under ``host_root`` loses that prefix."""
    try:
        inside = Path(given).resolve().relative_to(Path(host_root).resolve())
    except (OSError, ValueError):
        return given  # already a host path
    return "/" + str(inside) if Path(host_root).resolve() != Path("/") else given


def node_from_args(args: argparse.Namespace) -> NodeContext:
    from probes.node import NodeContext

    options = {}
    host_root = host_root_from_args(args)
    if getattr(args, "containerd_config", None):
        options["containerd_config"] = as_host_path(args.containerd_config, host_root)
    return NodeContext(
        options=options,
        endpoint=getattr(args, "endpoint", None),
        containerd_root=getattr(args, "containerd_root", None),
        containerd_state=getattr(args, "containerd_state", None),
        host_root=host_root,
        timeout=getattr(args, "timeout", DEFAULT_TIMEOUT),
        name=getattr(args, "node_name", None),
    )
