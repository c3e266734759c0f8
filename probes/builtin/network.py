"""Probe ``network``: does each pod's namespace really hold the IP CRI reports for it?

For every ready sandbox that is not host-network, the IPs from ``PodSandboxStatus`` are compared with
the addresses configured inside the pod's network namespace (``/proc/<sandbox pid>/net``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from probes.api import (
    NO_KUBELET,
    NO_SYSTEMD,
    NOT_AFFECTED,
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
from probes.knowledge.known_issues import describe_floors, known_issues_for, upgrade_floors
from probes.node import NodeContext
from probes.readers.cri.sandboxes import SandboxView
from probes.readers.host.cni_cache import CACHE_DIR, read_cni_results, restore_commands
from probes.readers.procfs.netns import PodNetwork, compare_pod
from probes.shell import quote

BUG_7843 = "containerd-7843"
REFS_7843 = [
    "https://github.com/containerd/containerd/issues/7843",
    "https://github.com/containerd/containerd/pull/7848",
    "https://github.com/containerd/containerd/pull/7849",
]
#: The lab test that runs netns-ip-missing's steps as printed and shows the pod reachable again.
PROVEN_RESTORE = "tests/test_remedies_lab.py::test_flushed_pod_address_restored_as_printed"


def upgrade_target(version: str) -> str:
    """What a containerd upgrade from ``version`` should reach, from the whole knowledge base."""
    try:
        floors = describe_floors(upgrade_floors("containerd", version))
    except NodedocError:  # a version string the knowledge base cannot parse
        floors = ""
    where = f" ({floors})" if floors else ""
    return f"a release no warning or critical known issue affects{where}"


def affected_by_7843(runtime_name: str, version: str) -> bool | None:
    """True/False when the knowledge base can tell for this runtime version, None when it cannot."""
    if runtime_name != "containerd" or not version:
        return None
    try:
        matches = known_issues_for("containerd", version)
    except NodedocError:  # a version string the knowledge base cannot parse
        return None
    return any(m.issue.id == BUG_7843 and m.affected for m in matches)


class NetworkProbe(Probe):
    id = "network"
    title = "Pod networks"
    description = "Compares the IPs CRI reports for each pod with the addresses inside its network namespace."
    needs = frozenset({Need.CRI, Need.PROCFS})
    timeout = 20.0

    def run(self, node: NodeContext) -> Outcome:
        client = node.cri()
        version = client.version()
        affected = affected_by_7843(version.runtime_name, version.runtime_version)
        views = node.sandboxes()
        rows, findings = [], []
        checked = 0
        for view in views:
            if not view.ready or view.host_network:
                continue
            row = compare_pod(view, node.proc_root)
            rows.append(row)
            if row.netns_ips is None:
                continue
            checked += 1
            pod = PodCheck(self, node, view, row, version, affected)
            finding = next((f for check in POD_CHECKS if (f := check(pod)) is not None), None)
            if finding:
                findings.append(finding)
        if not findings:
            findings.append(
                self.finding(
                    "network.ok",
                    Severity.OK,
                    "Pod IPs match their namespaces",
                    f"{checked} ready pod(s) checked: every IP CRI reports is configured in the pod's namespace.",
                    subject={"kind": "node"},
                    evidence={"checked": checked},
                )
            )
        return Outcome(
            findings=findings,
            facts={
                "pods": [r.to_dict() for r in rows],
                "runtime_version": version.runtime_version,
                "affected_by_7843": affected,
            },
        )

    def _restore_steps(self, node: NodeContext, view: SandboxView, lost: set[str], look: str) -> list[Remedy]:
        """Put the lost address back as CNI made it (from libcni's result cache), check it, and the
        alternatives: find the cause, or recreate the pod."""
        steps = []
        cache = read_cni_results(node.host_path(CACHE_DIR) / "results", view.id)
        for attachment in cache.attachments:
            commands = restore_commands(attachment, view.netns_path, lost) if view.netns_path else []
            if commands:
                steps.append(
                    Remedy(
                        f"Put {', '.join(a for a in attachment.addresses if a.split('/')[0] in lost)} back on "
                        f"{attachment.ifname} as CNI configured it (from {attachment.path}); the IPAM still "
                        "holds the address for this sandbox, and the pod keeps running",
                        " && ".join(commands),
                        proven=PROVEN_RESTORE,
                    )
                )
        if steps:
            steps.append(
                Remedy("Check the address is back in the pod's namespace", look, proven=PROVEN_RESTORE)
            )
        else:
            steps.append(untested("Look at the namespace's addresses yourself", look, SHOWS_ONLY))
        return [
            *steps,
            untested(
                "Find what removed it: the CNI plugin's log and anything that ran in the namespace",
                "journalctl -u containerd -n 500 --no-pager | grep -i cni",
                NO_SYSTEMD,
            ),
            untested(
                "Or recreate the pod: the kubelet removes this sandbox and CNI configures a fresh namespace",
                f"kubectl delete pod -n {quote(view.namespace)} {quote(view.name)}",
                NO_KUBELET,
                disrupts_pods=True,
            ),
        ]


# -- the checks of one pod: the first that finds something is its finding ---------------------------------


@dataclass(frozen=True)
class PodCheck:
    """One ready pod as every check sees it: CRI's IPs beside its namespace's, and the runtime it runs on."""

    probe: NetworkProbe
    node: NodeContext
    view: SandboxView
    row: PodNetwork
    version: Any
    affected: bool | None

    @property
    def cri(self) -> set[str]:
        return set(self.row.cri_ips)

    @property
    def real(self) -> set[str]:
        return set(self.row.netns_ips or [])

    @property
    def name(self) -> str:
        return f"{self.view.namespace}/{self.view.name}"

    @property
    def subject(self) -> dict[str, Any]:
        v = self.view
        return {"kind": "pod", "name": v.name, "namespace": v.namespace, "id": v.id}

    @property
    def evidence(self) -> dict[str, Any]:
        v = self.view
        return {
            "cri_ips": self.row.cri_ips,
            "netns_ips": self.row.netns_ips,
            "sandbox_pid": v.pid,
            "netns_path": v.netns_path,
            "runtime_version": self.version.runtime_version,
            "read_from": f"/proc/{v.pid}/net/fib_trie, /proc/{v.pid}/net/if_inet6",
        }

    @property
    def look(self) -> str:
        """The command that shows the namespace's addresses."""
        return f"nsenter --net={quote(self.view.netns_path or f'/proc/{self.view.pid}/ns/net')} ip addr"

    @property
    def inspect(self) -> Remedy:
        return untested("Look at the namespace's addresses yourself", self.look, SHOWS_ONLY)


def pod_ip_missing(pod: PodCheck) -> Finding | None:
    """The namespace has addresses but CRI reports none: containerd #7843's signature."""
    if pod.cri or not pod.real:
        return None
    version = pod.version
    if pod.affected:
        why = (
            f"containerd {version.runtime_version} is affected by containerd #7843 (1.6.9-1.6.14, "
            "1.5.15-1.5.16, 1.7.0's betas): the IP was never saved, so it is lost on every containerd restart "
            "and the kubelet recreates the pod."
        )
    elif pod.affected is False:
        why = (
            f"This is the containerd #7843 signature, though {version.runtime_name} "
            f"{version.runtime_version} is not in its affected range; look for another cause of lost "
            "sandbox metadata."
        )
    else:
        why = "This is the containerd #7843 signature (pod IP lost after a containerd restart)."
    return pod.probe.finding(
        "network.pod-ip-missing",
        Severity.CRITICAL,
        f"CRI reports no IP for {pod.name}",
        f"The pod's namespace has {', '.join(sorted(pod.real))} but PodSandboxStatus reports none. {why}",
        subject=pod.subject,
        evidence=pod.evidence,
        remediation=[
            pod.inspect,
            untested(
                "Do not restart containerd again on this node until it is upgraded; drain it",
                "kubectl drain <node> --ignore-daemonsets --delete-emptydir-data",
                NO_KUBELET,
                disrupts_pods=True,
            ),
            untested(
                "Upgrade containerd: #7843 is fixed in 1.6.15 and 1.5.17, and 1.7.0 never had it (only its "
                f"betas did); take {upgrade_target(version.runtime_version)}",
                "apt-get install --only-upgrade containerd && systemctl restart containerd",
                NOT_AFFECTED,
                disrupts_pods=True,
            ),
        ],
        references=REFS_7843,
    )


def netns_ip_missing(pod: PodCheck) -> Finding | None:
    """CRI reports an IP the namespace no longer has: traffic to the pod is black-holed."""
    lost = pod.cri - pod.real
    if not lost:
        return None
    return pod.probe.finding(
        "network.netns-ip-missing",
        Severity.CRITICAL,
        f"{pod.name} no longer has its IP {', '.join(sorted(lost))}",
        f"CRI reports {', '.join(pod.row.cri_ips)} but the pod's network namespace has "
        f"{', '.join(sorted(pod.real)) or 'no address'}: traffic to the pod is black-holed while the "
        "cluster still routes to it.",
        subject=pod.subject,
        evidence=pod.evidence,
        remediation=pod.probe._restore_steps(pod.node, pod.view, lost, pod.look),
        references=["https://www.cni.dev/docs/spec/"],
    )


def addresses_cri_does_not_report(pod: PodCheck) -> Finding | None:
    """The namespace has more addresses than CRI reports (a second network, or an IPAM leak)."""
    extra = pod.real - pod.cri
    if not extra:
        return None
    return pod.probe.finding(
        "network.ip-mismatch",
        Severity.WARNING,
        f"{pod.name} has addresses CRI does not report",
        f"CRI reports {', '.join(pod.row.cri_ips)}; the namespace also has {', '.join(sorted(extra))}.",
        subject=pod.subject,
        evidence=pod.evidence,
        remediation=[
            pod.inspect,
            untested(
                "Check the CNI configuration for a second network or IPAM leak",
                "ls -l /etc/cni/net.d",
                SHOWS_ONLY,
            ),
        ],
    )


#: The checks of one pod, in the order they are tried; the first that finds something wins.
POD_CHECKS: tuple[Callable[[PodCheck], Finding | None], ...] = (
    pod_ip_missing,
    netns_ip_missing,
    addresses_cri_does_not_report,
)
