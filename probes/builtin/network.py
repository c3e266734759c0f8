"""Probe ``network``: does each pod's namespace really hold the IP CRI reports for it?

For every ready sandbox that is not host-network, the IPs from ``PodSandboxStatus`` are compared with
the addresses configured inside the pod's network namespace (``/proc/<sandbox pid>/net``).
"""

from __future__ import annotations

from typing import Any

from probes.api import Finding, Need, Outcome, Probe, Remedy, Severity
from probes.errors import NodedocError
from probes.knowledge import known_issues_for
from probes.node import NodeContext
from probes.readers.cri.sandboxes import SandboxView
from probes.readers.procfs.netns import PodNetwork, compare_pod

BUG_7843 = "containerd-7843"
REFS_7843 = [
    "https://github.com/containerd/containerd/issues/7843",
    "https://github.com/containerd/containerd/pull/7848",
    "https://github.com/containerd/containerd/pull/7849",
]


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
            finding = self._judge(view, row, version, affected)
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

    def _judge(
        self, view: SandboxView, row: PodNetwork, version: Any, affected: bool | None
    ) -> Finding | None:
        cri, real = set(row.cri_ips), set(row.netns_ips or [])
        subject = {"kind": "pod", "name": view.name, "namespace": view.namespace, "id": view.id}
        evidence = {
            "cri_ips": row.cri_ips,
            "netns_ips": row.netns_ips,
            "sandbox_pid": view.pid,
            "netns_path": view.netns_path,
            "runtime_version": version.runtime_version,
            "read_from": f"/proc/{view.pid}/net/fib_trie, /proc/{view.pid}/net/if_inet6",
        }
        inspect = Remedy(
            "Compare by hand: CRI's view, then the namespace's",
            f"crictl inspectp {view.id[:13]} | grep -A3 '\"network\"'; "
            f"nsenter --net={view.netns_path or f'/proc/{view.pid}/ns/net'} ip addr",
        )
        if not cri and real:
            if affected:
                why = (
                    f"containerd {version.runtime_version} is affected by containerd #7843 (1.6.9-1.6.14, "
                    "1.5.15-1.5.16): the IP was never saved, so it is lost on every containerd restart and "
                    "the kubelet recreates the pod."
                )
            elif affected is False:
                why = (
                    f"This is the containerd #7843 signature, though {version.runtime_name} "
                    f"{version.runtime_version} is not in its affected range; look for another cause of lost "
                    "sandbox metadata."
                )
            else:
                why = "This is the containerd #7843 signature (pod IP lost after a containerd restart)."
            return self.finding(
                "network.pod-ip-missing",
                Severity.CRITICAL,
                f"CRI reports no IP for {view.namespace}/{view.name}",
                f"The pod's namespace has {', '.join(sorted(real))} but PodSandboxStatus reports none. {why}",
                subject=subject,
                evidence=evidence,
                remediation=[
                    inspect,
                    Remedy(
                        "Do not restart containerd again on this node until it is upgraded; drain it",
                        "kubectl drain <node> --ignore-daemonsets --delete-emptydir-data",
                    ),
                    Remedy(
                        "Upgrade containerd to 1.6.15+ / 1.5.17+ / 1.7.0+",
                        "apt-get install --only-upgrade containerd && systemctl restart containerd",
                    ),
                ],
                references=REFS_7843,
            )
        lost = cri - real
        if lost:
            return self.finding(
                "network.netns-ip-missing",
                Severity.CRITICAL,
                f"{view.namespace}/{view.name} no longer has its IP {', '.join(sorted(lost))}",
                f"CRI reports {', '.join(row.cri_ips)} but the pod's network namespace has "
                f"{', '.join(sorted(real)) or 'no address'}: traffic to the pod is black-holed while the "
                "cluster still routes to it.",
                subject=subject,
                evidence=evidence,
                remediation=[
                    inspect,
                    Remedy(
                        "Find what removed it: the CNI plugin's log and anything that ran in the namespace",
                        "journalctl -u containerd -n 500 --no-pager | grep -i cni",
                    ),
                    Remedy(
                        "Recreate the pod so CNI configures a fresh namespace",
                        f"kubectl delete pod -n {view.namespace} {view.name}",
                    ),
                ],
                references=["https://www.cni.dev/docs/spec/"],
            )
        if real - cri:
            return self.finding(
                "network.ip-mismatch",
                Severity.WARNING,
                f"{view.namespace}/{view.name} has addresses CRI does not report",
                f"CRI reports {', '.join(row.cri_ips)}; the namespace also has "
                f"{', '.join(sorted(real - cri))}.",
                subject=subject,
                evidence=evidence,
                remediation=[
                    inspect,
                    Remedy(
                        "Check the CNI configuration for a second network or IPAM leak",
                        "ls -l /etc/cni/net.d",
                    ),
                ],
            )
        return None
