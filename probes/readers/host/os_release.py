"""Which node this is: its hostname, kernel and operating system, from the host's own files."""

from __future__ import annotations

import platform
import socket
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class NodeFacts:
    hostname: str
    kernel: str
    os: str

    def to_dict(self) -> dict[str, str]:
        return {"hostname": self.hostname, "kernel": self.kernel, "os": self.os}


def read_node_facts(host_root: Path, proc_root: Path | None = None) -> NodeFacts:
    """``/etc/hostname`` and ``/etc/os-release``'s PRETTY_NAME under ``host_root``, and the kernel.

    ``proc_root`` is given when ``host_root`` is another tree than this machine's (a mount or a copy): the
    kernel is then what that tree's procfs says, never this machine's.
    """
    os_name = ""
    try:
        for line in (host_root / "etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                os_name = line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    hostname = ""
    try:
        hostname = (host_root / "etc/hostname").read_text().strip()
    except OSError:
        pass
    if proc_root is None:
        return NodeFacts(hostname=hostname or socket.gethostname(), kernel=platform.release(), os=os_name)
    try:
        kernel = (proc_root / "sys/kernel/osrelease").read_text().strip()
    except OSError:
        kernel = "unknown (no procfs under the host root)"
    return NodeFacts(hostname=hostname or "unknown", kernel=kernel, os=os_name)
