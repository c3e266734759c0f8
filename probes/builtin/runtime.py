"""Probe ``runtime``: is the CRI runtime reachable, which version, and are its conditions ready."""

from __future__ import annotations

from dataclasses import asdict

from probes.api import Finding, Outcome, Probe, Remedy, Severity
from probes.errors import CriError
from probes.node import NeedUnmet, NodeContext

CONDITION_REMEDY = {
    "RuntimeReady": [
        Remedy(
            "Look at containerd's log for the error behind the condition", "journalctl -u containerd -n 200"
        ),
    ],
    "NetworkReady": [
        Remedy(
            "Check that a CNI config exists in the CNI conf dir (/etc/cni/net.d by default)",
            "ls -l /etc/cni/net.d",
        ),
        Remedy(
            "Check the CNI plugin pods (calico, flannel, cilium ...) on this node are running",
            "kubectl get pods -A -o wide --field-selector spec.nodeName=$(hostname)",
        ),
    ],
}


class RuntimeProbe(Probe):
    id = "runtime"
    title = "Container runtime"
    description = "Reachable over CRI, which version and API, and whether RuntimeReady and NetworkReady hold."
    timeout = 10.0

    def run(self, node: NodeContext) -> Outcome:
        try:
            facts = node.runtime_facts()
        except NeedUnmet:
            raise
        except CriError as exc:
            return Outcome(findings=[self._unreachable(exc)])
        findings: list[Finding] = []
        for cond in facts.conditions:
            if not cond.status:
                findings.append(
                    self.finding(
                        "runtime.condition-not-ready",
                        Severity.CRITICAL,
                        f"{cond.type} is false",
                        f"The runtime reports {cond.type}=false"
                        + (f" ({cond.reason}: {cond.message})" if cond.reason else "")
                        + "; the kubelet marks the node NotReady while this holds.",
                        subject={"kind": "runtime", "name": facts.name, "condition": cond.type},
                        evidence={"condition": asdict(cond)},
                        remediation=CONDITION_REMEDY.get(cond.type, []),
                        references=[
                            "https://github.com/kubernetes/cri-api/blob/master/pkg/apis/runtime/v1/api.proto"
                        ],
                    )
                )
        if facts.api_package != "runtime.v1":
            findings.append(
                self.finding(
                    "runtime.cri-v1alpha2",
                    Severity.WARNING,
                    "The runtime speaks only CRI v1alpha2",
                    f"{facts.name} {facts.version} does not implement CRI runtime.v1; kubelet 1.26 and "
                    "newer need v1 (containerd >= 1.6.15 or >= 1.7.0).",
                    subject={"kind": "runtime", "name": facts.name},
                    evidence={"version": facts.version, "api": facts.api_package},
                    remediation=[
                        Remedy("Upgrade containerd to a release that serves CRI v1 (1.6.15+ or 1.7+)")
                    ],
                    references=["https://containerd.io/releases/#kubernetes-support"],
                )
            )
        if not findings:
            findings.append(
                self.finding(
                    "runtime.ok",
                    Severity.OK,
                    "Runtime reachable and ready",
                    f"{facts.name} {facts.version} (CRI {facts.api_version}) at {facts.endpoint}; "
                    "all conditions true.",
                    subject={"kind": "runtime", "name": facts.name},
                    evidence={"version": facts.version, "conditions": facts.to_dict()["conditions"]},
                )
            )
        return Outcome(findings=findings, facts=facts.to_dict())

    def _unreachable(self, exc: CriError) -> Finding:
        return self.finding(
            "runtime.unreachable",
            Severity.CRITICAL,
            "The container runtime cannot be reached",
            str(exc),
            subject={"kind": "runtime"},
            evidence={"error": str(exc), "error_type": type(exc).__name__},
            remediation=[
                Remedy("Check that containerd is running", "systemctl status containerd"),
                Remedy("Read its recent log", "journalctl -u containerd -n 200 --no-pager"),
                Remedy(
                    "Look at the disk with no runtime (post-mortem)",
                    "nodedoc check --containerd-root /var/lib/containerd",
                ),
            ],
        )
