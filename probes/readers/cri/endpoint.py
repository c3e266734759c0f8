"""What a CRI endpoint names, without grpc: the command line checks an endpoint before it talks to it."""

from __future__ import annotations

from probes.errors import CriError

#: Seconds to wait for the runtime unless told otherwise.
DEFAULT_TIMEOUT = 2.0


def socket_path(endpoint: str) -> str:
    """The filesystem path of a ``unix://`` endpoint (a bare path is taken as one too)."""
    if endpoint.startswith("unix://"):
        path = endpoint[len("unix://") :]
        if not path:
            raise CriError(f"endpoint {endpoint!r} names no socket (unix:///run/containerd/containerd.sock)")
        return path
    if "://" in endpoint:
        raise CriError(f"unsupported endpoint {endpoint!r}: nodedoc speaks CRI over unix sockets only")
    return endpoint
