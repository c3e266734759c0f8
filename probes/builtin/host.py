"""Kernel and filesystem conditions containerd depends on: overlay and d_type, sysctls, cgroups, free space.

Sysctls and /proc/filesystems are read from ``<host root>/proc`` when a host root is given and has one,
else from this procfs. A check whose condition does not apply (ip_forward without a bridge CNI, a sysctl the
kernel does not have) is left out, not reported as a problem.
"""

from __future__ import annotations

import ctypes
import os
from pathlib import Path
from typing import Any

from probes.api import (
    CHANGES_MACHINE,
    NO_CRICTL,
    SHARED_SETTING,
    SHOWS_ONLY,
    Finding,
    Need,
    Outcome,
    Probe,
    Remedy,
    Severity,
    untested,
)
from probes.errors import NodedocError
from probes.knowledge import known_issues
from probes.node import NodeContext
from probes.readers.host.containerd_config import read_cni
from probes.readers.host.kubelet_config import read as read_kubelet
from probes.shell import quote

PIPE_USER_PAGES_SOFT_DEFAULT = 16384
SYSCTL_FILE = "/etc/sysctl.d/90-nodedoc.conf"
#: The lab test that lowers fs.pipe-user-pages-soft, runs the printed restore, and sees the finding gone.
PROVEN_PIPE_DEFAULT = "tests/test_remedies_lab.py::test_lowered_pipe_limit_restored_as_printed"
#: The kubelet's default hard eviction thresholds (nodefs 10 %, imagefs 15 %, inodes 5 %).
SPACE_WARN, SPACE_CRIT, INODES_WARN, INODES_CRIT = 0.15, 0.05, 0.05, 0.01


def proc_dir(node: NodeContext) -> Path:
    """The host's procfs: ``<host root>/proc`` unless named (never this machine's for a foreign root)."""
    return node.proc_root


def read_sysctl(node: NodeContext, name: str) -> str | None:
    """A sysctl's value (``fs.may_detach_mounts``), None when this kernel does not have it."""
    try:
        return (proc_dir(node) / "sys" / name.replace(".", "/")).read_text().strip()
    except OSError:
        return None


def reports_d_type(directory: Path) -> bool | None:
    """Whether the filesystem fills in d_type for this directory's entries (None: could not tell)."""
    # The C library this process already has loaded (dlopen(NULL)): ctypes.util.find_library would run
    # /sbin/ldconfig to find it, and nodedoc runs no program.
    libc = ctypes.CDLL(None, use_errno=True)
    libc.opendir.restype = ctypes.c_void_p
    libc.readdir.restype = ctypes.c_void_p
    libc.readdir.argtypes = [ctypes.c_void_p]
    libc.closedir.argtypes = [ctypes.c_void_p]
    handle = libc.opendir(os.fsencode(directory))
    if not handle:
        return None
    try:
        seen = False
        while True:
            entry = libc.readdir(handle)
            if not entry:
                break
            seen = True
            d_type = ctypes.c_ubyte.from_address(
                entry + 18
            ).value  # glibc struct dirent64: ino, off, reclen, type
            if d_type != 0:
                return True
        return False if seen else None
    finally:
        libc.closedir(handle)


def existing_ancestor(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


class HostProbe(Probe):
    id = "host"
    title = "Kernel and filesystems"
    description = (
        "overlay and d_type, fs.may_detach_mounts, fs.pipe-user-pages-soft, cgroup version and "
        "controllers, ip_forward and bridge-nf-call-iptables with a bridge CNI, free space and inodes."
    )
    needs = frozenset({Need.HOST_FILES, Need.PROCFS})

    def run(self, node: NodeContext) -> Outcome:
        facts: dict[str, Any] = {"proc": str(proc_dir(node))}
        try:
            config = node.containerd_config()
        except NodedocError:
            config = None
        findings = self._overlay(node, config, facts)
        findings += self._sysctls(node, facts)
        findings += self._cgroups(node, facts)
        findings += self._bridge(node, config, facts)
        findings += self._space(node, config, facts)
        return Outcome(findings=findings, facts=facts)

    def _containerd_dirs(self, node: NodeContext, config: Any) -> tuple[Path, Path]:
        def pick(getter: Any, fallback: str) -> Path:
            try:
                return Path(getter())
            except NodedocError:
                return node.host_path(fallback)

        root = config.root() if config else "/var/lib/containerd"
        state = config.state() if config else "/run/containerd"
        return pick(node.root, root), pick(node.state, state)

    def _overlay(self, node: NodeContext, config: Any, facts: dict[str, Any]) -> list[Finding]:
        snapshotter = config.snapshotter().value if config else "overlayfs"
        if snapshotter != "overlayfs":
            return []
        entry = known_issues.issue("kernel-overlay-missing")
        try:
            filesystems = (proc_dir(node) / "filesystems").read_text()
        except OSError:
            return []
        overlay = any(line.split()[-1:] == ["overlay"] for line in filesystems.splitlines())
        facts["overlay"] = overlay
        found = []
        if not overlay:
            release = read_sysctl(node, "kernel.osrelease") or os.uname().release  # the node's kernel
            module = node.host_path(f"/lib/modules/{release}/kernel/fs/overlayfs")
            loadable = module.is_dir() and any(module.glob("overlay.ko*"))
            found.append(
                self.finding(
                    "host.overlay-missing",
                    Severity.INFO if loadable else Severity.CRITICAL,
                    "overlay is not in /proc/filesystems",
                    "The overlay module is not loaded"
                    + (
                        " but is installed (the kernel loads it at the first mount)."
                        if loadable
                        else " and not installed: containers fail with `no such device`."
                    ),
                    subject={"filesystem": "overlay"},
                    evidence={"proc_filesystems": "no overlay", "module": str(module)},
                    remediation=list(entry.remediation),
                    references=list(entry.references),
                )
            )
        root, _ = self._containerd_dirs(node, config)
        target = existing_ancestor(root / "io.containerd.snapshotter.v1.overlayfs")
        d_type = reports_d_type(target)
        facts["d_type"] = {"dir": str(target), "supported": d_type}
        if d_type is False:
            found.append(
                self.finding(
                    "host.d-type",
                    Severity.CRITICAL,
                    "The snapshotter's filesystem does not support d_type",
                    f"{target} reports no file types in its directory entries (XFS made without ftype=1): the overlayfs "
                    "snapshotter refuses to load.",
                    subject={"dir": str(target)},
                    evidence={"dir": str(target), "d_type": False},
                    remediation=[
                        untested(
                            "Confirm on XFS",
                            f"xfs_info $(df --output=target {quote(target)} | tail -1) | grep ftype",
                            SHOWS_ONLY,
                        ),
                        untested(
                            "Move containerd's root to a filesystem made with ftype=1",
                            "mkfs.xfs -n ftype=1 <new device>",
                            CHANGES_MACHINE,
                            disrupts_pods=True,
                        ),
                    ],
                    references=list(entry.references),
                )
            )
        return found

    def _sysctls(self, node: NodeContext, facts: dict[str, Any]) -> list[Finding]:
        found = []
        detach = read_sysctl(node, "fs.may_detach_mounts")
        facts["fs.may_detach_mounts"] = detach
        if detach is not None and detach != "1":
            entry = known_issues.issue("kernel-may-detach-mounts")
            found.append(
                self.finding(
                    "host.may-detach-mounts",
                    Severity.WARNING,
                    "fs.may_detach_mounts is 0",
                    "This kernel has fs.may_detach_mounts and it is off: removing containers fails with "
                    "`device or resource busy` and pods stay Terminating.",
                    subject={"sysctl": "fs.may_detach_mounts"},
                    evidence={"fs.may_detach_mounts": detach},
                    remediation=list(entry.remediation),
                    references=list(entry.references),
                )
            )
        soft = read_sysctl(node, "fs.pipe-user-pages-soft")
        facts["fs.pipe-user-pages-soft"] = soft
        if soft is not None and soft.isdigit() and 0 < int(soft) < PIPE_USER_PAGES_SOFT_DEFAULT:
            entry = known_issues.issue("runc-seccomp-pipe-deadlock")
            found.append(
                self.finding(
                    "host.pipe-user-pages-soft",
                    Severity.WARNING,
                    "fs.pipe-user-pages-soft is lowered",
                    f"fs.pipe-user-pages-soft = {soft} (default {PIPE_USER_PAGES_SOFT_DEFAULT}): a uid past it gets "
                    "1–2 page pipes, which hangs runc 1.0.0-rc93 init and slows anything piping much data.",
                    subject={"sysctl": "fs.pipe-user-pages-soft"},
                    evidence={"fs.pipe-user-pages-soft": soft, "default": PIPE_USER_PAGES_SOFT_DEFAULT},
                    remediation=[
                        Remedy(
                            "Restore the default now and at boot",
                            f"sysctl -w fs.pipe-user-pages-soft={PIPE_USER_PAGES_SOFT_DEFAULT} && echo "
                            f"'fs.pipe-user-pages-soft = {PIPE_USER_PAGES_SOFT_DEFAULT}' >> {SYSCTL_FILE}",
                            proven=PROVEN_PIPE_DEFAULT,
                        ),
                        untested(
                            "Find where it was lowered",
                            "grep -r pipe-user-pages /etc/sysctl.conf /etc/sysctl.d",
                            SHOWS_ONLY,
                        ),
                    ],
                    references=list(entry.references),
                )
            )
        return found

    def _cgroups(self, node: NodeContext, facts: dict[str, Any]) -> list[Finding]:
        cgroup = node.host_path("/sys/fs/cgroup")
        if (cgroup / "cgroup.controllers").is_file():
            version = "v2"
            controllers = (cgroup / "cgroup.controllers").read_text().split()
        else:
            version = "v1 (hybrid)" if (cgroup / "unified").is_dir() else "v1"
            controllers = []
            try:
                for line in (proc_dir(node) / "cgroups").read_text().splitlines()[1:]:
                    parts = line.split()
                    if len(parts) == 4 and parts[3] == "1":
                        controllers.append(parts[0])
            except OSError:
                pass
        if not cgroup.is_dir() or not controllers:
            return []
        facts["cgroup"] = {"version": version, "controllers": controllers}
        missing = [c for c in ("cpu", "memory", "pids") if c not in controllers]
        if missing:
            return [
                self.finding(
                    "host.cgroup-controllers",
                    Severity.WARNING,
                    f"cgroup controllers missing: {', '.join(missing)}",
                    f"cgroup {version} without {', '.join(missing)}: container limits on them are not enforced and the "
                    "kubelet refuses to start without cpu/memory.",
                    subject={"cgroup": version},
                    evidence={"controllers": controllers},
                    remediation=[
                        untested(
                            "Enable them on the kernel command line (then reboot)",
                            "grep -o 'cgroup[^ ]*' /proc/cmdline",
                            SHOWS_ONLY,
                        )
                    ],
                )
            ]
        return [
            self.finding(
                "host.cgroup",
                Severity.INFO,
                f"cgroup {version}",
                f"cgroup {version} with {', '.join(controllers)}"
                + (
                    "; cgroup v1 is in maintenance in Kubernetes since 1.31."
                    if version.startswith("v1")
                    else "."
                ),
                subject={"cgroup": version},
                evidence={"controllers": controllers},
            )
        ]

    def _bridge(self, node: NodeContext, config: Any, facts: dict[str, Any]) -> list[Finding]:
        conf_dir = config.cni_conf_dir().value if config else "/etc/cni/net.d"
        networks = read_cni(node.host_root, conf_dir)
        bridge = next((n for n in networks[:1] if "bridge" in n.types), None)
        if bridge is None:
            return []
        kubelet = read_kubelet(node.host_root).present
        found = []
        forward = read_sysctl(node, "net.ipv4.ip_forward")
        facts["net.ipv4.ip_forward"] = forward
        if forward == "0":
            found.append(
                self.finding(
                    "host.ip-forward",
                    Severity.INFO if bridge.bridge_gateway else Severity.WARNING,
                    "net.ipv4.ip_forward is off with a bridge CNI",
                    f"{bridge.file} uses the bridge plugin and forwarding is off: pods cannot reach beyond the node"
                    + (
                        " until the plugin turns it on at the next pod start (isGateway)."
                        if bridge.bridge_gateway
                        else "."
                    ),
                    subject={"sysctl": "net.ipv4.ip_forward", "cni_config": bridge.file},
                    evidence={"net.ipv4.ip_forward": forward, "isGateway": bridge.bridge_gateway},
                    remediation=[
                        untested(
                            "Turn it on now and at boot",
                            "sysctl -w net.ipv4.ip_forward=1 && echo "
                            f"'net.ipv4.ip_forward = 1' >> {SYSCTL_FILE}",
                            SHARED_SETTING,
                        )
                    ],
                )
            )
        nf = read_sysctl(node, "net.bridge.bridge-nf-call-iptables")
        facts["net.bridge.bridge-nf-call-iptables"] = nf
        if kubelet and nf != "1":
            found.append(
                self.finding(
                    "host.bridge-nf-call-iptables",
                    Severity.WARNING,
                    "Bridged pod traffic bypasses iptables",
                    f"net.bridge.bridge-nf-call-iptables is {nf or 'absent (br_netfilter not loaded)'} with a bridge CNI: "
                    "Service traffic between pods on this node skips kube-proxy's rules.",
                    subject={"sysctl": "net.bridge.bridge-nf-call-iptables", "cni_config": bridge.file},
                    evidence={"net.bridge.bridge-nf-call-iptables": nf},
                    remediation=[
                        untested(
                            "Load br_netfilter and turn it on now and at boot",
                            "modprobe br_netfilter && echo br_netfilter > /etc/modules-load.d/k8s.conf && "
                            "sysctl -w net.bridge.bridge-nf-call-iptables=1 && echo "
                            f"'net.bridge.bridge-nf-call-iptables = 1' >> {SYSCTL_FILE}",
                            CHANGES_MACHINE,
                        )
                    ],
                )
            )
        return found

    def _space(self, node: NodeContext, config: Any, facts: dict[str, Any]) -> list[Finding]:
        found = []
        root, state = self._containerd_dirs(node, config)
        facts["filesystems"] = {}
        for label, path in (("root", root), ("state", state)):
            where = existing_ancestor(path)
            try:
                st = os.statvfs(where)
            except OSError:
                continue
            space = st.f_bavail / st.f_blocks if st.f_blocks else 1.0
            inodes = st.f_favail / st.f_files if st.f_files else 1.0
            free_gib = st.f_bavail * st.f_frsize / 2**30
            facts["filesystems"][label] = {
                "path": str(path),
                "measured_at": str(where),
                "free_ratio": round(space, 3),
                "free_gib": round(free_gib, 1),
                "inodes_free_ratio": round(inodes, 3),
            }
            problems = []
            severity = Severity.OK
            if space < SPACE_CRIT:
                severity, problems = Severity.CRITICAL, [f"{space:.0%} space free"]
            elif space < SPACE_WARN:
                severity, problems = Severity.WARNING, [f"{space:.0%} space free"]
            if inodes < INODES_CRIT:
                severity, problems = Severity.CRITICAL, [*problems, f"{inodes:.1%} inodes free"]
            elif inodes < INODES_WARN:
                severity = max(severity, Severity.WARNING, key=lambda s: s.rank)
                problems.append(f"{inodes:.1%} inodes free")
            subject = {"filesystem": label, "path": str(path)}
            evidence = facts["filesystems"][label]
            if problems:
                found.append(
                    self.finding(
                        "host.disk-space",
                        severity,
                        f"containerd {label} filesystem is nearly full",
                        f"{where}: {', '.join(problems)} ({free_gib:.1f} GiB); the kubelet evicts pods below "
                        "its thresholds and image pulls and container starts fail when it is full.",
                        subject=subject,
                        evidence=evidence,
                        remediation=[
                            untested("Remove unused images", "crictl rmi --prune", NO_CRICTL),
                            untested(
                                "See what uses the space",
                                f"du -xsh {quote(where)}/* | sort -h | tail",
                                SHOWS_ONLY,
                            ),
                        ],
                    )
                )
            else:
                found.append(
                    self.finding(
                        "host.disk-space",
                        Severity.OK,
                        f"containerd {label} filesystem has room",
                        f"{where}: {space:.0%} space and {inodes:.0%} inodes free ({free_gib:.1f} GiB).",
                        subject=subject,
                        evidence=evidence,
                    )
                )
        return found
