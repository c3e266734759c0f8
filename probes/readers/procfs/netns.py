"""Addresses configured inside a pod's network namespace, read from the host without entering it.

``/proc/<pid>/net`` shows the network namespace of ``pid``: ``fib_trie`` lists IPv4 addresses as
``/32 host LOCAL`` leaves, ``if_inet6`` lists IPv6 addresses with their scope.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from probes.errors import NodedocError

if TYPE_CHECKING:
    from probes.readers.cri.sandboxes import SandboxView


class NetnsUnreadable(NodedocError):
    """The process whose namespace was asked for is gone, or its net files cannot be read."""


@dataclass
class NetnsAddresses:
    pid: int
    ipv4: list[str] = field(default_factory=list)
    ipv6: list[str] = field(default_factory=list)
    interfaces: list[str] = field(default_factory=list)

    @property
    def pod_addresses(self) -> list[str]:
        """Addresses a pod IP can be: not loopback, not link-local."""
        out = []
        for text in [*self.ipv4, *self.ipv6]:
            ip = ipaddress.ip_address(text)
            if not (ip.is_loopback or ip.is_link_local):
                out.append(text)
        return out


def parse_fib_trie(text: str) -> list[str]:
    """Local IPv4 addresses: each ``|-- A.B.C.D`` leaf followed by ``/32 host LOCAL``."""
    found: list[str] = []
    last = ""
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("|--"):
            last = stripped[3:].strip()
        elif "/32 host LOCAL" in stripped and last and last not in found:
            found.append(last)
    return found


def parse_if_inet6(text: str) -> list[str]:
    out = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 6 and len(parts[0]) == 32:
            out.append(str(ipaddress.IPv6Address(bytes.fromhex(parts[0]))))
    return out


def read_netns_addresses(pid: int, proc_root: Path = Path("/proc")) -> NetnsAddresses:
    base = proc_root / str(pid) / "net"
    try:
        fib = (base / "fib_trie").read_text()
    except FileNotFoundError:
        raise NetnsUnreadable(f"process {pid} is gone ({base / 'fib_trie'} does not exist)") from None
    except OSError as exc:
        raise NetnsUnreadable(f"cannot read {base / 'fib_trie'}: {exc.strerror or exc}") from None
    try:
        inet6 = (base / "if_inet6").read_text()
    except OSError:
        inet6 = ""  # IPv6 disabled in the namespace
    try:
        dev = (base / "dev").read_text().splitlines()[2:]
        interfaces = [line.split(":", 1)[0].strip() for line in dev if ":" in line]
    except OSError:
        interfaces = []
    return NetnsAddresses(
        pid=pid, ipv4=parse_fib_trie(fib), ipv6=parse_if_inet6(inet6), interfaces=interfaces
    )


@dataclass
class PodNetwork:
    """CRI's IPs for one sandbox beside the addresses really configured in its namespace.

    ``netns_ips`` is None when the namespace could not be read; ``error`` then says why.
    """

    id: str
    name: str
    namespace: str
    pid: int | None
    netns_path: str
    cri_ips: list[str]
    netns_ips: list[str] | None = None
    interfaces: list[str] = field(default_factory=list)
    error: str = ""

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "namespace": self.namespace,
            "pid": self.pid,
            "netns_path": self.netns_path,
            "cri_ips": list(self.cri_ips),
            "netns_ips": self.netns_ips,
            "error": self.error,
        }
        if self.netns_ips is not None:
            data["interfaces"] = list(self.interfaces)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PodNetwork:
        return cls(
            id=str(data.get("id") or ""),
            name=str(data.get("name") or ""),
            namespace=str(data.get("namespace") or ""),
            pid=data.get("pid"),
            netns_path=str(data.get("netns_path") or ""),
            cri_ips=list(data.get("cri_ips") or []),
            netns_ips=None if data.get("netns_ips") is None else list(data["netns_ips"]),
            interfaces=list(data.get("interfaces") or []),
            error=str(data.get("error") or ""),
        )


def compare_pod(view: SandboxView, proc_root: Path) -> PodNetwork:
    """CRI's IPs beside the namespace's real addresses, for one sandbox (the network probe and pod screen)."""
    row = PodNetwork(
        id=view.id,
        name=view.name,
        namespace=view.namespace,
        pid=view.pid,
        netns_path=view.netns_path,
        cri_ips=list(view.ips),
    )
    if view.pid is None:
        row.error = "the runtime reports no sandbox pid"
        return row
    try:
        addrs = read_netns_addresses(view.pid, proc_root)
    except NetnsUnreadable as exc:
        row.error = str(exc)
        return row
    row.netns_ips = addrs.pod_addresses
    row.interfaces = addrs.interfaces
    return row
