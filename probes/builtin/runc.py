"""runc inits hung on a shrunken pipe, pipe budgets, and shims that a containerd restart would take down.

Seed 003: once uid 0's pipes exceed ``fs.pipe-user-pages-soft``, new pipes made without CAP_SYS_RESOURCE
get 2 pages; runc 1.0.0-rc93 writes its seccomp filter into such a pipe before anyone reads it, and its
``runc init`` blocks for ever. kubelet's PLEG stalls and the node goes NotReady.
"""

from __future__ import annotations

import os
import socket
from typing import Any, ClassVar

from probes.api import (
    NO_KUBELET,
    NO_SYSTEMD,
    NOT_AFFECTED,
    Finding,
    Need,
    Outcome,
    Probe,
    Remedy,
    Severity,
    untested,
)
from probes.errors import NodedocError
from probes.knowledge.known_issues import known_issues_for
from probes.knowledge.remedies.upgrade import issue_steps, upgrade_in_place
from probes.node import NodeContext
from probes.readers.host import binaries
from probes.readers.host.packages import PackageRecord
from probes.readers.procfs.pipe_accounting import UserPipeUsage
from probes.readers.procfs.pipes import PipeEnd
from probes.readers.procfs.procs import RuntimeProcess, RuntimeScan
from probes.versions import try_parse

THRESHOLD_ENV = "NODEDOC_RUNC_INIT_THRESHOLD"
#: wchan of a task sleeping in a pipe write or read (anon_pipe_* from Linux 6.16, pipe_wait before 5.6).
PIPE_WRITE_WCHANS = frozenset({"pipe_write", "anon_pipe_write", "pipe_wait_writable"})
PIPE_READ_WCHANS = frozenset({"pipe_read", "anon_pipe_read", "pipe_wait_readable"})
PIPE_WCHANS = PIPE_WRITE_WCHANS | PIPE_READ_WCHANS | {"pipe_wait"}

RUNC_ISSUES = [
    "https://github.com/opencontainers/runc/issues/2865",
    "https://github.com/opencontainers/runc/issues/2828",
    "https://github.com/opencontainers/runc/pull/2871",
]
SYSCTL_DOC = "https://docs.kernel.org/admin-guide/sysctl/fs.html#pipe-user-pages-soft"
SHIM_ISSUES = [
    "https://github.com/containerd/containerd/issues/3200",
    "https://github.com/containerd/containerd/issues/7076",
]
SYSCTL_FILE = "/etc/sysctl.d/90-pipe-user-pages.conf"
UPGRADE_FOR_THE_HANG = (
    "Upgrade runc: 1.0.0-rc94 fixed the hang (it drains the pipe while writing); new containers use the new "
    "binary at once"
)
#: The knowledge base's entry for the rc93 seccomp pipe deadlock (probes/knowledge/data/known_issues.toml).
PIPE_HANG_ISSUE = "runc-seccomp-pipe-deadlock"
#: The lab test that runs seed 003's steps as printed, then starts a new container with no init left blocked.
PROVEN_PIPES = "tests/test_remedies_lab.py::test_hung_init_cleared_as_printed"


def suggested_soft_limit(pages_used: int, current: int | None) -> int:
    """A soft limit with room: twice the busiest uid's pages, at least the kernel default, in 1024s."""
    want = max(16384, 2 * pages_used, 2 * (current or 0))
    return -(-want // 1024) * 1024


def raise_soft_limit_steps(pages_used: int, current: int | None) -> list[Remedy]:
    value = suggested_soft_limit(pages_used, current)
    return [
        Remedy(
            "Raise the soft limit now (0 removes it): new pipes get the full size again; pipes already "
            "created keep theirs",
            f"sysctl -w fs.pipe-user-pages-soft={value}",
            proven=PROVEN_PIPES,
        ),
        Remedy(
            "Keep it across reboots",
            f"echo 'fs.pipe-user-pages-soft = {value}' > {SYSCTL_FILE} && sysctl -p {SYSCTL_FILE}",
            proven=PROVEN_PIPES,
        ),
    ]


def init_threshold(default: float) -> float:
    """Seconds a runc init may wait on a pipe before it counts as hung (``NODEDOC_RUNC_INIT_THRESHOLD``)."""
    try:
        return float(os.environ[THRESHOLD_ENV])
    except (KeyError, ValueError):
        return default


def blocked_pipe(proc: RuntimeProcess) -> PipeEnd | None:
    """The pipe a process sleeping in a pipe wait is most likely stuck on: a full one it writes, an empty
    one it reads, else its smallest."""
    if proc.wchan in PIPE_WRITE_WCHANS:
        candidates = [p for p in proc.pipes if p.end == "write"]
        stuck = [p for p in candidates if p.full]
    elif proc.wchan in PIPE_READ_WCHANS:
        candidates = [p for p in proc.pipes if p.end == "read"]
        stuck = [p for p in candidates if p.bytes_waiting == 0]
    else:
        candidates, stuck = proc.pipes, []
    pool = stuck or candidates or proc.pipes
    return min(pool, key=lambda p: (p.capacity or 0, p.fd), default=None)


#: A shim younger than this may be containerd's child only because it is being started.
SHIM_SETTLE_S = 2.0


def _passing_child(shim: RuntimeProcess) -> bool:
    """containerd runs ``shim ... start`` and ``shim ... delete`` as its own children for a moment, and such a
    process that has exited shows as a zombie with no command line until containerd reaps it; none of these
    is a shim that will die with containerd."""
    if not shim.cmdline or shim.state == "Z" or shim.age_s < SHIM_SETTLE_S:
        return True
    return shim.cmdline[-1] in ("start", "delete")


def _process_evidence(proc: RuntimeProcess) -> dict[str, Any]:
    return {
        "pid": proc.pid,
        "comm": proc.comm,
        "cmdline": " ".join(proc.cmdline),
        "uid": proc.uid,
        "state": proc.state,
        "wchan": proc.wchan,
        "age_s": round(proc.age_s, 1),
        "parents": proc.ancestors,
        "container_id": proc.container_id,
        "container_id_from": proc.container_id_from,
    }


def runc_version(node: NodeContext) -> tuple[str | None, str]:
    """The version of the runc containerd's shims run, read from the binary (never run), and the binary's
    host path; (None, reason) if unknown."""
    path, configured = node.containerd_runc()
    if path is None:
        where = f"BinaryName {configured!r}" if configured else "containerd's PATH"
        return None, f"no runc binary found ({where})"
    binary = node.binary("runc", path)
    if binary.version is None:
        return None, binary.error
    return binary.version_text, path


def address_served(path: str) -> bool:
    """Whether something accepts connections on the unix socket a shim reports to."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        try:
            sock.connect(path)
        except OSError:
            return False
    return True


class RuncProbe(Probe):
    id = "runc"
    title = "runc inits and pipes"
    description = (
        "Finds runc init processes hung writing into pipes the kernel shrank (fs.pipe-user-pages-soft), "
        "uids over their pipe budget, shims a containerd restart would kill, and affected runc versions."
    )
    needs = frozenset({Need.PROCFS})
    timeout = 20.0
    #: Seconds a runc init may sleep in a pipe read or write before it is reported as hung.
    init_blocked_after: ClassVar[float] = 30.0

    def run(self, node: NodeContext) -> Outcome:
        scan = node.runtime_scan()
        threshold = init_threshold(self.init_blocked_after)
        findings = [
            *self.blocked_inits(scan, threshold, self._upgrade(node)),
            *self.over_soft_limit(scan),
            *self.shrunk_pipes(scan),
            *self.unreparented_shims(scan),
            *self.containerd_missing(scan, node),
        ]
        facts: dict[str, Any] = {"scan": scan.to_dict(), "init_blocked_after_s": threshold}
        version_findings, facts["runc"] = self.version_affected(node)
        findings += version_findings
        return Outcome(findings=findings, facts=facts)

    # -- runc init ------------------------------------------------------------------------------------

    def blocked_inits(
        self, scan: RuntimeScan, threshold: float, upgrade: Remedy | None = None
    ) -> list[Finding]:
        found = []
        for proc in scan.of_kind("runc-init"):
            if proc.wchan not in PIPE_WCHANS or proc.state not in ("S", "D") or proc.age_s < threshold:
                continue
            pipe = blocked_pipe(proc)
            user = next((u for u in scan.users if u.uid == proc.uid), None)
            direction = "writing into" if proc.wchan in PIPE_WRITE_WCHANS else "waiting on"
            size = f"{pipe.capacity} bytes" if pipe and pipe.capacity is not None else "unknown size"
            evidence = _process_evidence(proc)
            if pipe is not None:
                evidence.update(
                    pipe_fd=pipe.fd,
                    pipe_end=pipe.end,
                    pipe_inode=pipe.inode,
                    pipe_capacity=pipe.capacity,
                    pipe_bytes_waiting=pipe.bytes_waiting,
                    pipe_peers=[p.to_dict() for p in pipe.peers],
                    pipe_shrunk=pipe.capacity == scan.limits.shrunk_bytes,
                )
            evidence.update(
                pipe_user_pages_soft=scan.limits.soft_pages, uid_pipe_pages=user.pages if user else None
            )
            shrunk = (
                pipe is not None and pipe.capacity is not None and pipe.capacity < scan.limits.default_bytes
            )
            summary = (
                f"{proc.comm} (pid {proc.pid}, container {proc.container_id or 'unknown'}) has been {direction} "
                f"pipe {pipe.inode if pipe else '?'} ({size}) for up to {proc.age_s:.0f}s, wchan {proc.wchan}."
            )
            if shrunk:
                summary += (
                    f" The pipe is smaller than the default {scan.limits.default_bytes} bytes: uid {proc.uid}'s "
                    "pipes exceed fs.pipe-user-pages-soft, so the kernel shrank it (runc 1.0.0-rc93 hangs here)."
                )
            found.append(
                self.finding(
                    "runc.init-blocked",
                    Severity.CRITICAL,
                    f"runc init {proc.pid} hung on a pipe",
                    summary,
                    subject={
                        "kind": "process",
                        "name": str(proc.pid),
                        "pid": proc.pid,
                        "container_id": proc.container_id,
                    },
                    evidence=evidence,
                    remediation=self._init_remedies(proc, user, scan, upgrade),
                    references=[*RUNC_ISSUES, SYSCTL_DOC],
                )
            )
        return found

    @staticmethod
    def _upgrade(node: NodeContext) -> Remedy | None:
        """The upgrade of the runc containerd runs (its package, else that file), for a hung init's steps."""
        version, binary = runc_version(node)
        parsed = try_parse(version)
        if parsed is None:
            return None
        package = binaries.package_record(node.host_root, node.binary("runc", binary))
        return upgrade_in_place("runc", parsed, binary, package, UPGRADE_FOR_THE_HANG)

    def _init_remedies(
        self, proc: RuntimeProcess, user: UserPipeUsage | None, scan: RuntimeScan, upgrade: Remedy | None
    ) -> list[Remedy]:
        return [
            *raise_soft_limit_steps(user.pages if user else 0, scan.limits.soft_pages),
            Remedy(
                "Then clear the hung init: that container's creation fails and the kubelet retries it with a "
                "fresh, full-size pipe; no running container is touched",
                f"kill -9 {proc.pid}",
                proven=PROVEN_PIPES,
            ),
            upgrade
            or untested(
                f"{UPGRADE_FOR_THE_HANG}; take 1.2.8+ or 1.3.3+, which also carry the container-breakout fixes "
                "(Debian/Ubuntu shown: upgrade the package of the runc containerd runs)",
                "apt-get install --only-upgrade runc",
                NOT_AFFECTED,
            ),
        ]

    # -- pipe budgets ---------------------------------------------------------------------------------

    def over_soft_limit(self, scan: RuntimeScan) -> list[Finding]:
        found = []
        for user in scan.users:
            if not user.over_soft:
                continue
            root_note = (
                " Containers running as root share uid 0's budget with the host, and their processes lack "
                "CAP_SYS_RESOURCE, so their new pipes get the shrunken size."
                if user.uid == 0
                else ""
            )
            found.append(
                self.finding(
                    "pipe.user-soft-limit-exceeded",
                    Severity.WARNING,
                    f"uid {user.uid} holds more pipe pages than fs.pipe-user-pages-soft",
                    f"uid {user.uid} holds about {user.pages} pages in {user.pipes} pipes, over the soft limit of "
                    f"{user.soft_limit}; new pipes made by its processes without CAP_SYS_RESOURCE/CAP_SYS_ADMIN "
                    f"get {scan.limits.shrunk_bytes} bytes instead of {scan.limits.default_bytes}.{root_note}",
                    subject={"kind": "uid", "name": str(user.uid), "uid": user.uid},
                    evidence={
                        "uid": user.uid,
                        "pages": user.pages,
                        "pipes": user.pipes,
                        "shrunk_pipes": user.shrunk_pipes,
                        "soft_limit": user.soft_limit,
                        "hard_limit": user.hard_limit,
                        "pipe_max_size": scan.limits.max_size,
                        "kernel": scan.limits.kernel,
                        "privileged_holders": user.privilege,
                        "holder_pids": user.pids[:50],
                        "estimate": "each pipe counted against its oldest holder's real uid",
                    },
                    remediation=[
                        *raise_soft_limit_steps(user.pages, user.soft_limit),
                        Remedy(
                            "Find what holds the pipes (one line per pipe fd)",
                            f"nodedoc procs -o json  # users[uid={user.uid}]",
                            proven=PROVEN_PIPES,
                        ),
                    ],
                    references=[SYSCTL_DOC, *RUNC_ISSUES[:2]],
                )
            )
        return found

    def shrunk_pipes(self, scan: RuntimeScan) -> list[Finding]:
        found = []
        for user in scan.users:
            if not user.shrunk_pipes:
                continue
            severity = Severity.WARNING if user.over_soft else Severity.INFO
            cause = (
                "its pipes are over fs.pipe-user-pages-soft, so the kernel made them small"
                if user.over_soft
                else "its pipes are under the soft limit now; a program may have set the size itself"
            )
            found.append(
                self.finding(
                    "pipe.shrunk",
                    severity,
                    f"uid {user.uid} has {user.shrunk_pipes} pipe(s) at the shrunken size",
                    f"{user.shrunk_pipes} of uid {user.uid}'s {user.pipes} pipes hold only "
                    f"{scan.limits.shrunk_bytes} bytes ({scan.limits.shrunk_pages} pages on kernel "
                    f"{scan.limits.kernel}); {cause}. A writer of more than that blocks until someone reads.",
                    subject={"kind": "uid", "name": str(user.uid), "uid": user.uid},
                    evidence={
                        "uid": user.uid,
                        "shrunk_pipes": user.shrunk_pipes,
                        "pipes": user.pipes,
                        "shrunk_bytes": scan.limits.shrunk_bytes,
                        "pages": user.pages,
                        "soft_limit": user.soft_limit,
                    },
                    remediation=raise_soft_limit_steps(user.pages, user.soft_limit) if user.over_soft else [],
                    references=[SYSCTL_DOC],
                )
            )
        return found

    # -- shims and containerd -------------------------------------------------------------------------

    def unreparented_shims(self, scan: RuntimeScan) -> list[Finding]:
        containerds = {p.pid for p in scan.of_kind("containerd")}
        found = []
        for shim in scan.of_kind("shim"):
            if shim.ppid not in containerds or _passing_child(shim):
                continue
            found.append(
                self.finding(
                    "runtime.shim-not-reparented",
                    Severity.WARNING,
                    f"shim {shim.pid} is a child of containerd",
                    f"The shim for {shim.container_id or 'an unknown container'} (pid {shim.pid}) still has "
                    f"containerd (pid {shim.ppid}) as its parent instead of PID 1 or a subreaper: restarting or "
                    "stopping containerd will kill its containers. This is runtime v1 (io.containerd.runtime.v1.linux) "
                    "or a service manager that kills the whole group.",
                    subject={
                        "kind": "shim",
                        "name": str(shim.pid),
                        "pid": shim.pid,
                        "container_id": shim.container_id,
                    },
                    evidence=_process_evidence(shim),
                    remediation=[
                        untested(
                            "Do not restart containerd until the pods are drained from this node",
                            "kubectl drain <node> --ignore-daemonsets",
                            NO_KUBELET,
                            disrupts_pods=True,
                        ),
                        untested(
                            "Use the runtime v2 shim (runtime_type io.containerd.runc.v2) in containerd's config "
                            "and KillMode=process in containerd.service",
                            "systemctl show containerd -p KillMode",
                            NO_SYSTEMD,
                        ),
                    ],
                    references=SHIM_ISSUES,
                )
            )
        return found

    def containerd_missing(self, scan: RuntimeScan, node: NodeContext) -> list[Finding]:
        shims = scan.of_kind("shim")
        if not shims:
            return []
        running = bool(scan.of_kind("containerd"))
        addresses = sorted({s.shim_address for s in shims if s.shim_address})
        orphaned = (
            [a for a in addresses if not address_served(str(node.host_path(a)))] if running else addresses
        )
        if running and not orphaned:
            return []
        orphan_shims = [s for s in shims if not running or s.shim_address in orphaned]
        if not orphan_shims:
            return []
        return [
            self.finding(
                "runtime.containerd-not-running",
                Severity.CRITICAL,
                "containerd is not running while its shims are",
                f"{len(orphan_shims)} shim(s) report to {', '.join(orphaned) or 'containerd'} but nothing answers "
                "there: their containers keep running, yet nothing can start, stop or report on them and kubelet "
                "sees the runtime as down.",
                subject={"kind": "service", "name": "containerd", "addresses": orphaned},
                evidence={
                    "containerd_pids": [p.pid for p in scan.of_kind("containerd")],
                    "shim_pids": [s.pid for s in orphan_shims],
                    "shim_ids": [s.container_id for s in orphan_shims],
                },
                remediation=[
                    untested(
                        "Start containerd (the shims reconnect; their containers keep running)",
                        "systemctl start containerd",
                        NO_SYSTEMD,
                    ),
                    untested("See why it stopped", "journalctl -u containerd -n 200 --no-pager", NO_SYSTEMD),
                ],
                references=SHIM_ISSUES[:1],
            )
        ]

    # -- the runc version -----------------------------------------------------------------------------

    def version_affected(self, node: NodeContext) -> tuple[list[Finding], dict[str, Any]]:
        version, binary_or_reason = runc_version(node)
        facts: dict[str, Any] = {"version": version, "binary": binary_or_reason if version else None}
        if version is None:
            facts["reason"] = binary_or_reason
            return [], facts
        package = binaries.package_record(node.host_root, node.binary("runc", binary_or_reason))
        return self.version_findings(version, binary_or_reason, package), facts

    def version_findings(
        self, version: str, binary: str, package: PackageRecord | None = None
    ) -> list[Finding]:
        """runc.version-affected for the knowledge base's pipe-hang issue (other runc issues, such as CVEs,
        are the versions probe's); ``package`` is where a distribution build's backported fix is looked for."""
        try:
            matches = known_issues_for("runc", version, package=package)
        except NodedocError:
            return []
        found = []
        for match in matches:
            issue = match.issue
            if issue.id != PIPE_HANG_ISSUE or not match.affected:
                continue
            fixed = ", ".join(issue.fixed_versions) or "a later release"
            summary = (
                f"runc {version} ({binary}) is affected by {issue.id}: {issue.title}. {issue.symptom} "
                f"Fixed in {fixed}."
            )
            if match.distribution_note:
                summary += f" {match.distribution_note}"
            found.append(
                self.finding(
                    "runc.version-affected",
                    issue.severity,
                    f"runc {version} can hang in runc init on a shrunken pipe",
                    summary,
                    subject={"kind": "component", "name": "runc", "version": version, "issue": issue.id},
                    evidence={
                        "version": version,
                        "upstream": match.version.upstream,
                        "binary": binary,
                        "issue": issue.id,
                        "affected": match.matched_range.describe() if match.matched_range else "",
                        "fixed": fixed,
                        "detection": issue.detection,
                    },
                    remediation=issue_steps(issue, match.version, binary, package),
                    references=list(issue.references) or RUNC_ISSUES,
                )
            )
        return found
