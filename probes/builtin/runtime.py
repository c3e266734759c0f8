"""Probe ``runtime``: is the CRI runtime reachable, which version, and are its conditions ready.

The kubelet reads only two of the runtime's conditions: ``RuntimeReady`` and ``NetworkReady`` false
make it mark the node NotReady (critical). Any other condition a runtime reports (containerd 2.1's
``ContainerdHasNoDeprecationWarnings``) changes nothing for the node and is passed on as information,
with the runtime's own reason and message.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from probes.api import Finding, Outcome, Probe, Remedy, Severity
from probes.errors import CriError
from probes.node import NeedUnmet, NodeContext
from probes.readers.cri.runtime import RuntimeCondition, RuntimeFacts

CRI_API = "https://github.com/kubernetes/cri-api/blob/master/pkg/apis/runtime/v1/api.proto"
DEPRECATION_CONDITION = "ContainerdHasNoDeprecationWarnings"

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
        findings: list[Finding] = [self._condition(facts, c) for c in facts.conditions if not c.status]
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
                        Remedy(
                            "Upgrade containerd to a release that serves CRI v1 (from 1.6.15 and 1.7.0 on) and that "
                            "no known issue affects: the versions probe names the least such release"
                        )
                    ],
                    references=["https://containerd.io/releases/#kubernetes-support"],
                )
            )
        if not any(f.severity.rank >= Severity.WARNING.rank for f in findings):
            findings.append(
                self.finding(
                    "runtime.ok",
                    Severity.OK,
                    "Runtime reachable and ready",
                    f"{facts.name} {facts.version} (CRI {facts.api_version}) at {facts.endpoint}; "
                    "RuntimeReady and NetworkReady true.",
                    subject={"kind": "runtime", "name": facts.name},
                    evidence={"version": facts.version, "conditions": facts.to_dict()["conditions"]},
                )
            )
        return Outcome(findings=findings, facts=facts.to_dict())

    def _condition(self, facts: RuntimeFacts, cond: RuntimeCondition) -> Finding:
        """A false condition: critical when the kubelet reads it, else information in the runtime's words."""
        said = f" ({cond.reason}: {cond.message})" if cond.reason else ""
        subject = {"kind": "runtime", "name": facts.name, "condition": cond.type}
        evidence: dict[str, Any] = {"condition": asdict(cond)}
        if cond.deprecations():
            evidence["deprecations"] = cond.deprecations()
        if cond.kubelet_reads:
            return self.finding(
                "runtime.condition-not-ready",
                Severity.CRITICAL,
                f"{cond.type} is false",
                f"The runtime reports {cond.type}=false{said}; the kubelet marks the node NotReady while this holds.",
                subject=subject,
                evidence=evidence,
                remediation=CONDITION_REMEDY.get(cond.type, []),
                references=[CRI_API],
            )
        if cond.type == DEPRECATION_CONDITION and cond.deprecations():
            title = f"containerd reports {len(cond.deprecations())} deprecation warning(s)"
            summary = (
                f"{facts.name} {facts.version} reports {cond.type}=false: its configuration or use relies on "
                f"deprecated features ({', '.join(cond.deprecations())}). The kubelet does not act on this "
                "condition; the node stays Ready, but a later containerd release removes what is deprecated."
            )
        else:
            title = f"Runtime condition {cond.type} is false"
            summary = (
                f"The runtime reports {cond.type}=false{said}. The kubelet acts only on RuntimeReady and "
                "NetworkReady, so the node's readiness does not change; the runtime's message says what it means."
            )
        return self.finding(
            "runtime.condition-false",
            Severity.INFO,
            title,
            summary,
            subject=subject,
            evidence=evidence,
            references=[CRI_API, "https://github.com/containerd/containerd/blob/main/RELEASES.md"],
        )

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
