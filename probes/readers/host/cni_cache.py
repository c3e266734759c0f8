"""What CNI configured for a sandbox, from libcni's result cache (``/var/lib/cni/results``).

containerd's CRI plugin calls CNI through libcni, which keeps each ADD's result in
``<cache dir>/results/<network>-<sandbox id>-<ifname>`` (a ``cniCacheV1`` JSON document) until DEL.
It holds the address with its prefix length, the gateway and the routes the plugin set up: what it
takes to put a lost address back exactly as CNI made it.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from probes.shell import quote

CACHE_DIR = "/var/lib/cni"


@dataclass(frozen=True)
class CniRoute:
    dst: str
    gateway: str = ""


@dataclass(frozen=True)
class CniAttachment:
    """One interface CNI configured in a sandbox's namespace."""

    network: str
    ifname: str
    netns: str
    addresses: tuple[str, ...] = ()  # with prefix length: ``10.88.0.7/24``
    gateways: tuple[str, ...] = ()
    routes: tuple[CniRoute, ...] = ()
    path: str = ""

    def holds(self, ip: str) -> bool:
        return any(a.split("/", 1)[0] == ip for a in self.addresses)


@dataclass
class CniCache:
    attachments: list[CniAttachment] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def read_cni_results(results_dir: Path, sandbox_id: str) -> CniCache:
    """Every cached CNI result for ``sandbox_id`` (loopback included); unreadable files become problems."""
    out = CniCache()
    try:
        names = sorted(p for p in results_dir.iterdir() if f"-{sandbox_id}-" in p.name)
    except OSError as exc:
        out.problems.append(f"cannot list {results_dir}: {exc.strerror or exc}")
        return out
    for path in names:
        try:
            doc = json.loads(path.read_text())
            out.attachments.append(_attachment(doc, path))
        except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
            out.problems.append(f"cannot read {path}: {exc}")
    return out


def _attachment(doc: dict[str, Any], path: Path) -> CniAttachment:
    result = doc.get("result") or {}
    ips = result.get("ips") or []
    addresses = tuple(str(ipaddress.ip_interface(ip["address"])) for ip in ips)
    gateways = tuple(str(ip.get("gateway") or "") for ip in ips)
    routes = tuple(
        CniRoute(dst=str(ipaddress.ip_network(r["dst"], strict=False)), gateway=str(r.get("gw") or ""))
        for r in result.get("routes") or []
    )
    return CniAttachment(
        network=str(doc.get("networkName") or ""),
        ifname=str(doc.get("ifName") or ""),
        netns=str(doc.get("netns") or ""),
        addresses=addresses,
        gateways=gateways,
        routes=routes,
        path=str(path),
    )


def restore_commands(attachment: CniAttachment, netns_path: str, lost: set[str]) -> list[str]:
    """``ip`` commands run in ``netns_path`` that put the ``lost`` addresses back as CNI configured them,
    with the routes of their family (a route's gateway defaults to its address's gateway, as in CNI). The
    namespace path, interface name and gateway come from the runtime and CNI's cache: each is quoted."""
    enter = f"nsenter --net={quote(netns_path)}"
    dev = quote(attachment.ifname)
    commands = []
    families = set()
    for address, gateway in zip(attachment.addresses, attachment.gateways):
        iface = ipaddress.ip_interface(address)
        if str(iface.ip) not in lost:
            continue
        family = "-4" if iface.version == 4 else "-6"
        families.add((iface.version, gateway))
        brd = " brd +" if iface.version == 4 else ""
        commands.append(f"{enter} ip {family} addr add {quote(address)}{brd} dev {dev}")
    for route in attachment.routes:
        version = ipaddress.ip_network(route.dst).version
        gateway = route.gateway or next((g for v, g in families if v == version and g), "")
        if not any(v == version for v, _ in families) or not gateway:
            continue
        family = "-4" if version == 4 else "-6"
        commands.append(
            f"{enter} ip {family} route replace {quote(route.dst)} via {quote(gateway)} dev {dev}"
        )
    return commands
