"""containerd, runc, kernel and kubelet versions against the known-issues knowledge base and support table.

containerd's version comes from CRI ``Version`` when the runtime answers, else from its binary; runc from the
binary containerd is configured with (BinaryName) or finds on PATH; the kubelet from its binary when one is
installed. A distribution build's verdicts rest on its upstream number, so they are informational with a note
that the distribution may carry the fix.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any

from probes import knowledge
from probes.api import Finding, Need, Outcome, Probe, Remedy, Severity
from probes.errors import NodedocError
from probes.node import NeedUnmet, NodeContext
from probes.readers.host import binaries
from probes.readers.host.systemd_unit import search_path
from probes.versions import Version, try_parse

KUBELET_PATHS = (
    "/usr/bin/kubelet",
    "/usr/local/bin/kubelet",
    "/opt/bin/kubelet",
    "/var/lib/kubelet/bin/kubelet",
    "/var/lib/rancher/rke2/bin/kubelet",
)


class VersionsProbe(Probe):
    id = "versions"
    title = "Component versions"
    description = (
        "containerd, runc, kernel and kubelet versions checked against known issues, the containerd ↔ "
        "Kubernetes support table and end-of-life dates."
    )
    needs = frozenset({Need.HOST_FILES})
    timeout = 30.0
    #: The date end of life is judged on; tests set it.
    today: dt.date | None = None

    def run(self, node: NodeContext) -> Outcome:
        versions: dict[str, dict[str, Any]] = {}
        ctd = self._containerd(node)
        if ctd:
            versions["containerd"] = ctd
        runc = self._runc(node)
        if runc:
            versions["runc"] = runc
        versions["kernel"] = {
            "version": _host_kernel(node),
            "source": "uname"
            if node.host_root == Path("/")
            else "/proc/sys/kernel/osrelease under the host root",
        }
        kubelet = self._kubelet(node)
        if kubelet:
            versions["kubelet"] = kubelet
        findings: list[Finding] = []
        for component in ("containerd", "runc"):
            info = versions.get(component)
            parsed = try_parse(info.get("version")) if info else None
            if parsed:
                findings += self._known_issues(component, parsed, info)  # type: ignore[arg-type]
        findings += self._compatibility(versions)
        findings += self._eol(versions)
        summary = ", ".join(f"{c} {v.get('version') or 'unknown'}" for c, v in versions.items())
        findings.append(
            self.finding(
                "versions.components",
                Severity.INFO,
                "Component versions",
                summary,
                subject={"components": sorted(versions)},
                evidence={c: {k: v for k, v in info.items() if v} for c, info in versions.items()},
            )
        )
        if not any(
            f.id in ("versions.known-issue", "versions.eol") or f.severity.rank >= Severity.WARNING.rank
            for f in findings
        ):
            findings.append(
                self.finding(
                    "versions.ok",
                    Severity.OK,
                    "No known issue affects these versions",
                    summary,
                    subject={"components": sorted(versions)},
                )
            )
        return Outcome(findings=findings, facts={"versions": versions})

    # -- reading versions -------------------------------------------------------------------------------

    def _containerd(self, node: NodeContext) -> dict[str, Any] | None:
        path = binaries.which(node.host_root, "containerd", search_path(node.containerd_unit()))
        b = node.binary("containerd", path) if path else None
        try:
            answer = node.cri().version()
            if answer.runtime_name == "containerd" or answer.runtime_version:
                cri = try_parse(answer.runtime_version)
                same = (
                    b is not None
                    and b.version is not None
                    and cri is not None
                    and b.version.same_upstream(cri)
                )
                return {
                    "version": answer.runtime_version,
                    "source": "CRI Version",
                    "runtime": answer.runtime_name,
                    "cri_api": answer.runtime_api_version,
                    "package": b.package if same and b else None,
                }
        except (NodedocError, NeedUnmet):
            pass
        if b is None or path is None:
            return None
        if b.version is None:
            return {"version": None, "source": path, "error": b.error}
        return {"version": b.package or b.version.raw, "source": f"{path} --version", "path": path}

    def _runc(self, node: NodeContext) -> dict[str, Any] | None:
        search = search_path(node.containerd_unit())
        configured = ""
        try:
            value = node.containerd_config().runtime_option("BinaryName", "").value
            configured = value if isinstance(value, str) else ""
        except NodedocError:
            pass
        path = (
            configured
            if configured.startswith("/")
            else binaries.which(node.host_root, configured or "runc", search)
        )
        if not path or not binaries.is_executable(node.host_root, path):
            return None
        b = node.binary("runc", path)
        source = f"{path} --version" + (" (BinaryName)" if configured else "")
        return {
            "version": (b.package or b.version.raw) if b.version else None,
            "source": source,
            "path": path,
            "error": b.error or None,
        }

    def _kubelet(self, node: NodeContext) -> dict[str, Any] | None:
        for path in KUBELET_PATHS:
            if binaries.is_executable(node.host_root, path):
                b = node.binary("kubelet", path)
                return {
                    "version": b.version.raw if b.version else None,
                    "source": f"{path} --version",
                    "path": path,
                    "error": b.error or None,
                }
        return None

    # -- checks -----------------------------------------------------------------------------------------

    def _known_issues(self, component: str, version: Version, info: dict[str, Any]) -> list[Finding]:
        findings = []
        for match in knowledge.known_issues_for(component, version):
            if not match.affected:
                continue
            issue = match.issue
            severity = Severity.INFO if match.distribution_note else issue.severity
            title = issue.title + (
                " — may be fixed in this distribution build" if match.distribution_note else ""
            )
            summary = (
                f"{component} {version.raw} is in the affected range {match.matched_range.describe()} "
                f"(fixed in {', '.join(issue.fixed_versions) or 'no release yet'}). {issue.symptom}"
            )
            remediation = list(issue.remediation)
            if match.distribution_note:
                summary += " " + match.distribution_note
                remediation.insert(
                    0,
                    Remedy(
                        "Check whether the distribution backported the fix",
                        knowledge.changelog_command(component, version),
                    ),
                )
            findings.append(
                self.finding(
                    "versions.known-issue",
                    severity,
                    title,
                    summary,
                    subject={"component": component, "version": version.raw, "issue": issue.id},
                    evidence={
                        "version": version.raw,
                        "upstream": version.upstream,
                        "source": info.get("source"),
                        "affected_range": match.matched_range.describe() if match.matched_range else None,
                        "fixed_in": issue.fixed_versions,
                        "detection": issue.detection,
                    },
                    remediation=remediation,
                    references=list(issue.references),
                )
            )
        return findings

    def _compatibility(self, versions: dict[str, dict[str, Any]]) -> list[Finding]:
        kube = try_parse((versions.get("kubelet") or {}).get("version"))
        ctd_info = versions.get("containerd") or {}
        ctd = try_parse(ctd_info.get("version"))
        if kube is None or ctd is None:
            return []
        verdict = knowledge.check_combination(kube, ctd, ctd_info.get("cri_api"))
        subject = {"component": "containerd", "kubelet": kube.raw, "containerd": ctd.raw}
        evidence = {
            "kubelet": kube.raw,
            "containerd": ctd.raw,
            "cri_api": ctd_info.get("cri_api"),
            "supported_minimums": list(verdict.minimums),
        }
        if verdict.supported is True:
            return [
                self.finding(
                    "versions.supported-combination",
                    Severity.OK,
                    f"containerd {ctd.upstream} is supported with Kubernetes {kube.branch}",
                    verdict.reason,
                    subject=subject,
                    evidence=evidence,
                )
            ]
        if verdict.supported is None:
            return [
                self.finding(
                    "versions.unsupported-combination",
                    Severity.INFO,
                    "containerd / Kubernetes combination not in the support table",
                    verdict.reason,
                    subject=subject,
                    evidence=evidence,
                    remediation=[
                        Remedy(
                            "Check containerd's release notes for this Kubernetes minor",
                            "containerd --version && kubelet --version",
                        )
                    ],
                    references=["https://github.com/containerd/containerd/blob/main/RELEASES.md"],
                )
            ]
        return [
            self.finding(
                "versions.unsupported-combination",
                Severity.WARNING if not ctd.is_distribution_build else Severity.INFO,
                f"containerd {ctd.upstream} is not supported with Kubernetes {kube.branch}",
                verdict.reason,
                subject=subject,
                evidence=evidence,
                remediation=[
                    Remedy(
                        f"Upgrade containerd to one of {', '.join(verdict.minimums)} (drain first)",
                        "kubectl drain <node> --ignore-daemonsets --delete-emptydir-data",
                    ),
                    Remedy(
                        "Install it and restart containerd",
                        "apt-get install --only-upgrade containerd && systemctl restart containerd",
                    ),
                ],
                references=["https://github.com/containerd/containerd/blob/main/RELEASES.md"],
            )
        ]

    def _eol(self, versions: dict[str, dict[str, Any]]) -> list[Finding]:
        ctd = try_parse((versions.get("containerd") or {}).get("version"))
        if ctd is None:
            return []
        status = knowledge.eol("containerd", ctd, self.today or dt.date.today())
        if status is None or not status.ended:
            return []
        distro = ctd.is_distribution_build
        summary = f"{status.describe()}: upstream no longer fixes it."
        if distro:
            summary += (
                f" {ctd.raw} is a distribution build; the distribution may still support its package "
                f"({knowledge.changelog_command('containerd', ctd)})."
            )
        return [
            self.finding(
                "versions.eol",
                Severity.INFO if distro else Severity.WARNING,
                f"containerd {status.branch} is past end of life",
                summary,
                subject={"component": "containerd", "version": ctd.raw, "branch": status.branch},
                evidence={
                    "version": ctd.raw,
                    "branch": status.branch,
                    "end_of_life": status.date.isoformat() if status.date else None,
                    "lts": status.lts,
                },
                remediation=[
                    Remedy(
                        "Plan an upgrade to a supported branch, one node at a time (drain first)",
                        "kubectl drain <node> --ignore-daemonsets --delete-emptydir-data",
                    )
                ],
                references=["https://github.com/containerd/containerd/blob/main/RELEASES.md"],
            )
        ]


def _host_kernel(node: NodeContext) -> str | None:
    if node.host_root == Path("/"):
        return os.uname().release
    try:
        return (node.host_path("/proc/sys/kernel/osrelease")).read_text().strip()
    except OSError:
        return os.uname().release
