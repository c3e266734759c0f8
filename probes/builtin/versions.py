"""containerd, runc, kernel and kubelet versions against the known-issues knowledge base and support table.

containerd's version comes from CRI ``Version`` when the runtime answers, else from its binary; runc from the
binary containerd is configured with (BinaryName) or finds on PATH; the kubelet from its binary when one is
installed. Binaries are read, never run (:mod:`probes.binaries`); each version says where it came from.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any

from probes.api import NO_KUBELET, Finding, Need, Outcome, Probe, Remedy, Severity, untested
from probes.errors import NodedocError
from probes.knowledge import known_issues
from probes.knowledge.remedies.upgrade import issue_steps
from probes.node import NeedUnmet, NodeContext
from probes.readers.host import binaries
from probes.readers.host.packages import PackageRecord
from probes.readers.host.systemd_unit import search_path
from probes.versions import Version, parse, try_parse

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
            parsed = try_parse(info.get("package") or info.get("version")) if info else None
            if parsed:
                findings += self._known_issues(node, component, parsed, info)  # type: ignore[arg-type]
        findings += self._compatibility(versions)
        findings += self._eol(node, versions)
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

                def describes(binary: binaries.Binary | None) -> bool:
                    return bool(binary and binary.version and cri and binary.version.same_upstream(cri))

                if not describes(b):  # PATH finds another build than runs (mid-upgrade): the one running
                    running = node.serving_containerd_binary()
                    serving = node.binary("containerd", running) if running else None
                    if describes(serving):
                        path, b = running, serving
                same = describes(b)
                return {
                    "version": answer.runtime_version,
                    "source": "CRI Version",
                    "runtime": answer.runtime_name,
                    "cri_api": answer.runtime_api_version,
                    "package": b.package if same and b else None,
                    "path": path if same else None,
                    "binary": b.evidence if same and b else None,
                }
        except (NodedocError, NeedUnmet):
            pass
        if b is None or path is None:
            return None
        return _from_binary(b, path)

    def _runc(self, node: NodeContext) -> dict[str, Any] | None:
        path, configured = node.containerd_runc()
        if path is None:
            return None
        info = _from_binary(node.binary("runc", path), path)
        if configured:
            info["configured"] = f"BinaryName = {configured}"
        return info

    def _kubelet(self, node: NodeContext) -> dict[str, Any] | None:
        for path in KUBELET_PATHS:
            if binaries.is_executable(node.host_root, path):
                return _from_binary(node.binary("kubelet", path), path)
        return None

    # -- checks -----------------------------------------------------------------------------------------

    def _known_issues(
        self, node: NodeContext, component: str, version: Version, info: dict[str, Any]
    ) -> list[Finding]:
        package = _package_record(node, component, info)
        findings = []
        for match in known_issues.known_issues_for(component, version, package=package):
            if match.evidence:
                findings.append(self._backported(component, version, match, info))
            if match.affected:
                findings.append(self._affected(component, version, match, info, package))
        return findings

    def _affected(
        self,
        component: str,
        version: Version,
        match: known_issues.Match,
        info: dict[str, Any],
        package: PackageRecord | None,
    ) -> Finding:
        issue = match.issue
        floors = known_issues.describe_floors(known_issues.upgrade_floors(component, version))
        summary = (
            f"{component} {version.raw} is in the affected range {match.matched_range.describe()} "  # type: ignore[union-attr]
            f"(fixed in {', '.join(issue.fixed_versions) or 'no release yet'}). {issue.symptom} "
            + (
                f"The least to upgrade to that no warning or critical known issue affects: {floors}."
                if floors
                else f"No {component} release from this branch on is free of the known issues."
            )
        )
        remediation = issue_steps(issue, version, info.get("path"), package)
        if match.distribution_note:
            summary += " " + match.distribution_note
            looked = ", ".join(issue.names) or issue.id
            remediation.append(known_issues.changelog_step(version, component, package, looked))
        return self.finding(
            "versions.known-issue",
            issue.severity,
            issue.title,
            summary,
            subject={"component": component, "version": version.raw, "issue": issue.id},
            evidence={
                "version": version.raw,
                "upstream": version.upstream,
                "source": info.get("source"),
                "affected_range": match.matched_range.describe() if match.matched_range else None,
                "fixed_in": issue.fixed_versions,
                "distribution_build": match.distribution_note,
                "detection": issue.detection,
            },
            remediation=remediation,
            references=list(issue.references),
        )

    def _backported(
        self, component: str, version: Version, match: known_issues.Match, info: dict[str, Any]
    ) -> Finding:
        issue = match.issue
        return self.finding(
            "versions.backported-fix",
            Severity.INFO,
            f"{issue.id}: fixed in this {component} build though upstream {version.upstream} is affected",
            f"Upstream {component} {version.upstream} is in the affected range "
            f"{match.matched_range.describe() if match.matched_range else ''} of {issue.id}, but {match.evidence}.",
            subject={"component": component, "version": version.raw, "issue": issue.id},
            evidence={
                "version": version.raw,
                "upstream": version.upstream,
                "source": info.get("source"),
                "fix_evidence": match.evidence,
                "fix_evidence_from": match.evidence_source,
            },
            references=list(issue.references)
            + (
                [match.evidence_source]
                if match.evidence_source and match.evidence_source.startswith("https://")
                else []
            ),
        )

    def _compatibility(self, versions: dict[str, dict[str, Any]]) -> list[Finding]:
        kube = try_parse((versions.get("kubelet") or {}).get("version"))
        ctd_info = versions.get("containerd") or {}
        ctd = try_parse(ctd_info.get("version"))
        if kube is None or ctd is None:
            return []
        verdict = known_issues.check_combination(kube, ctd, ctd_info.get("cri_api"))
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
                Severity.WARNING,
                f"containerd {ctd.upstream} is not supported with Kubernetes {kube.branch}",
                verdict.reason
                + (
                    f" {ctd.raw} is a distribution build, judged by its upstream release as the support table "
                    "lists releases."
                    if ctd.is_distribution_build
                    else ""
                ),
                subject=subject,
                evidence=evidence,
                remediation=[
                    Remedy(
                        f"Upgrade containerd to one of {', '.join(_upgrade_targets(verdict.minimums))} (the "
                        "support table's minimums, raised past known issues; drain first)",
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

    def _eol(self, node: NodeContext, versions: dict[str, dict[str, Any]]) -> list[Finding]:
        ctd = try_parse((versions.get("containerd") or {}).get("version"))
        if ctd is None:
            return []
        status = known_issues.eol("containerd", ctd, self.today or dt.date.today())
        if status is None or not status.ended:
            return []
        distro = ctd.is_distribution_build
        summary = f"{status.describe()}: upstream no longer fixes it."
        steps = [
            untested(
                "Plan an upgrade to a supported branch, one node at a time (drain first)",
                "kubectl drain <node> --ignore-daemonsets --delete-emptydir-data",
                NO_KUBELET,
                disrupts_pods=True,
            )
        ]
        if distro:
            summary += f" {ctd.raw} is a distribution build; the distribution may still support its package."
            package = _package_record(node, "containerd", versions.get("containerd") or {})
            steps.insert(0, known_issues.changelog_step(ctd, "containerd", package))
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
                remediation=steps,
                references=["https://github.com/containerd/containerd/blob/main/RELEASES.md"],
            )
        ]


def _package_record(node: NodeContext, component: str, info: dict[str, Any]) -> PackageRecord | None:
    """The package that installed the component's binary, when it describes the version judged."""
    if not info.get("package") or not info.get("path"):
        return None
    return binaries.package_record(node.host_root, node.binary(component, info["path"]))


def _from_binary(b: binaries.Binary, path: str) -> dict[str, Any]:
    """A component's version as read from its binary, with where it came from."""
    return {
        "version": b.version_text if b.version else None,
        "source": f"{path}: {b.source}" if b.source else path,
        "path": path,
        "package": b.package or None,
        "binary": b.evidence,
        "error": b.error or None,
    }


def _upgrade_targets(minimums: tuple[str, ...]) -> list[str]:
    """The support table's minimum on each branch raised to the branch's first release that no warning or
    critical known issue affects; a branch with no such release is left out (all of them, if none has one)."""
    targets = []
    for minimum in minimums:
        version = parse(minimum.rstrip("+"))
        floor = known_issues.lowest_unaffected("containerd", version.branch)
        if floor is not None:
            targets.append(f"{max(version, floor).upstream}+")
    return targets or list(minimums)


def _host_kernel(node: NodeContext) -> str | None:
    if node.host_root == Path("/"):
        return os.uname().release
    try:
        return (node.host_path("/proc/sys/kernel/osrelease")).read_text().strip()
    except OSError:
        return os.uname().release
