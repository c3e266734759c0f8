"""The probe API: what a probe declares, what it returns, and how a result is recorded.

A probe looks at one aspect of the node and says what is wrong, with the evidence and what to do.
The same results feed ``nodedoc check``, the screens, the runbooks and the exported report.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

from probes.compat import StrEnum
from probes.node import Need, NodeContext

__all__ = [
    "Finding",
    "Need",
    "NodeContext",
    "Outcome",
    "Probe",
    "ProbeResult",
    "ProbeStatus",
    "Remedy",
    "Severity",
]


class Severity(StrEnum):
    """How bad a finding is. ``ok`` says a check passed and is worth showing as such."""

    OK = "ok"
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        """0 for ok up to 3 for critical: the order to sort findings worst first."""
        return _RANK[self]


_RANK = {Severity.OK: 0, Severity.INFO: 1, Severity.WARNING: 2, Severity.CRITICAL: 3}


class ProbeStatus(StrEnum):
    """Whether a probe ran. ``skipped`` (could not look, with a reason) is not ``error`` (it broke).

    Whether a skip leaves the verdict unknown is :attr:`ProbeResult.not_applicable`'s to say.
    """

    OK = "ok"
    SKIPPED = "skipped"
    ERROR = "error"


@dataclass(frozen=True)
class Remedy:
    """One remediation step: what to do, the exact command when there is one, and its cost.

    ``disrupts_pods`` says whether running the step stops or restarts pods already running on the node
    (a drain, a sandbox removal, a runtime restart that kills shims); the operator must know before
    pasting it. ``proven`` names the lab test that runs this step as printed and shows the node
    recovered; empty means nobody ran it on a node, and the step says so where it is shown.
    """

    text: str
    command: str | None = None
    disrupts_pods: bool = False
    proven: str = ""


#: What the text of a step nobody ran on a node says about it (see :func:`untested`).
NOT_TESTED = "not tested on a node"


# Why a step was not run on the project's lab node (``tui/lab``: a real containerd, runc and CNI node with
# no systemd, kubelet or crictl, whose tests never change the machine's binaries, disks or boot).
NO_SYSTEMD = "the lab runs containerd without systemd"
NO_KUBELET = "the lab has no kubelet or API server"
NO_CRICTL = "the lab has no crictl"
BY_HAND = "it is an edit by hand"
SHOWS_ONLY = "it only shows the state"
CHANGES_MACHINE = "it changes the machine's binaries, packages or disks, which the tests never do"
NOT_AFFECTED = "the lab's runc and containerd are not affected versions"
SHARED_SETTING = "the tests do not turn this machine-wide setting off under the other labs on the machine"
REPLACES_CONFIG = "it replaces the whole config, and with it the lab's private root, state and socket"
WHOLE_MACHINE = "it acts on every such process on the machine, other test runs' included"


def untested(text: str, command: str | None, why: str, disrupts_pods: bool = False) -> Remedy:
    """A step the project's lab cannot run (no kubelet, no systemd, ...): its text says so, and why."""
    return Remedy(f"{text} ({NOT_TESTED}: {why})", command, disrupts_pods=disrupts_pods)


@dataclass(frozen=True)
class Finding:
    """Something a probe concluded, with everything a person needs to act on it."""

    id: str
    probe: str
    severity: Severity
    title: str
    summary: str
    subject: dict[str, Any] = field(default_factory=dict)
    evidence: dict[str, Any] = field(default_factory=dict)
    remediation: list[Remedy] = field(default_factory=list)
    references: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["severity"] = str(self.severity)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Finding:
        return cls(
            id=data["id"],
            probe=data["probe"],
            severity=Severity(data["severity"]),
            title=data["title"],
            summary=data["summary"],
            subject=dict(data.get("subject") or {}),
            evidence=dict(data.get("evidence") or {}),
            remediation=[Remedy(**step) for step in data.get("remediation") or []],
            references=list(data.get("references") or []),
        )


@dataclass
class Outcome:
    """What a probe's ``run`` returns: its findings and the structured facts screens can show."""

    findings: list[Finding] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)


@dataclass
class ProbeResult:
    """One probe's run as recorded in reports: status, reason, duration, findings and facts.

    ``not_applicable`` marks a skip of something this run does not look at (post-mortem mode has no live
    runtime; a copied tree has no processes): the verdict stands without it. Any other skip, and every
    error, means the probe *could not run* where it should have: the verdict is unknown.
    """

    probe: str
    title: str
    status: ProbeStatus
    reason: str = ""
    duration_ms: float = 0.0
    findings: list[Finding] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)
    not_applicable: bool = False

    @property
    def could_not_run(self) -> bool:
        """It errored, timed out, or could not look at what it should: nothing it found is an all-clear."""
        if self.status is ProbeStatus.ERROR:
            return True
        return self.status is ProbeStatus.SKIPPED and not self.not_applicable

    def to_dict(self) -> dict[str, Any]:
        """How the probe ran, without its findings: the report's list of probes."""
        return {
            "id": self.probe,
            "title": self.title,
            "status": str(self.status),
            "reason": self.reason,
            "duration_ms": round(self.duration_ms, 1),
            "not_applicable": self.not_applicable,
            "could_not_run": self.could_not_run,
        }

    def to_record(self, facts: bool = True) -> dict[str, Any]:
        """The whole result as JSON data (the facts left out when ``facts`` is False)."""
        data = {**self.to_dict(), "findings": [f.to_dict() for f in self.findings]}
        if facts:
            data["facts"] = self.facts
        return data

    @classmethod
    def from_record(cls, data: dict[str, Any]) -> ProbeResult:
        return cls(
            probe=data["id"],
            title=data.get("title") or data["id"],
            status=ProbeStatus(data["status"]),
            reason=data.get("reason") or "",
            duration_ms=float(data.get("duration_ms") or 0.0),
            findings=[Finding.from_dict(f) for f in data.get("findings") or []],
            facts=dict(data.get("facts") or {}),
            not_applicable=bool(data.get("not_applicable", False)),
        )


class Probe:
    """Base of every probe. Subclasses declare themselves with class attributes and implement ``run``.

    ``run`` may return an :class:`Outcome` or just a list of findings. It may raise: the runner records
    the exception as this probe's error and the other probes carry on. :class:`probes.node.NeedUnmet`
    raised from ``run`` marks the probe skipped with its message (the verdict is then unknown);
    :class:`probes.node.NotApplicable` marks it skipped as not part of this run.
    """

    id: ClassVar[str]
    title: ClassVar[str]
    description: ClassVar[str]
    needs: ClassVar[frozenset[Need]] = frozenset()
    timeout: ClassVar[float] = 15.0

    def run(self, node: NodeContext) -> Outcome | list[Finding]:
        raise NotImplementedError

    def finding(self, id: str, severity: Severity, title: str, summary: str, **kw: Any) -> Finding:
        """Build a finding attributed to this probe."""
        return Finding(id=id, probe=self.id, severity=severity, title=title, summary=summary, **kw)


def worst(findings: list[Finding]) -> Severity:
    """The worst severity among findings, ``ok`` when there are none."""
    return max((f.severity for f in findings), key=lambda s: s.rank, default=Severity.OK)


def sort_worst_first(findings: list[Finding]) -> list[Finding]:
    return sorted(findings, key=lambda f: (-f.severity.rank, f.id, str(f.subject.get("name", ""))))
