"""The report's model (``nodedoc.report/v1``): typed, built from probe results, and what it concludes.

A :class:`Report` is made of what the probes returned (their findings, statuses, facts, the runtime
probe's view of the runtime and the component versions the binaries' probes read) and what the caller
says about the run: which node this is, with which options, the container inventory and the runbook
walkthrough. Nothing here reads the node (:mod:`tui.report.gather` does, through
:class:`probes.node.NodeContext`).

The document is the wire form: :meth:`Report.to_document` is the JSON every tool reads, and
:meth:`Report.from_document` reads it back. Everything that leaves the node is redacted by default
(:mod:`tui.redact`), on that document, so the model the writers get says what was removed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace
from typing import Any

from probes.api import Finding, ProbeResult, ProbeStatus, Remedy, Severity, sort_worst_first, worst
from probes.errors import NodedocError
from probes.readers.cri.inventory import PodContainer
from tui.redact import not_redacted, redact_document
from tui.untrusted import neutralise_data

SCHEMA = "nodedoc.report/v1"
#: The probe whose facts are the report's runtime block.
RUNTIME_PROBE = "runtime"


class ReportError(NodedocError):
    """A document that is not a ``nodedoc.report/v1`` report."""


def _str(value: Any) -> str:
    return "" if value is None else str(value)


def _opt(value: Any) -> str | None:
    return None if value is None else str(value)


@dataclass(frozen=True)
class NodeIdentity:
    """Which node the report is about: its Kubernetes name, hostname, kernel and OS."""

    name: str
    hostname: str
    kernel: str
    os: str

    @classmethod
    def from_document(cls, data: dict[str, Any]) -> NodeIdentity:
        return cls(*(_str(data.get(k)) for k in ("name", "hostname", "kernel", "os")))


@dataclass(frozen=True)
class RunOptions:
    """Where this run looked: the endpoint, containerd's root and state, the host root, post-mortem."""

    endpoint: str | None
    containerd_root: str | None
    containerd_state: str | None
    host_root: str
    post_mortem: bool

    @classmethod
    def from_document(cls, data: dict[str, Any]) -> RunOptions:
        return cls(
            endpoint=_opt(data.get("endpoint")),
            containerd_root=_opt(data.get("containerd_root")),
            containerd_state=_opt(data.get("containerd_state")),
            host_root=_str(data.get("host_root")),
            post_mortem=bool(data.get("post_mortem")),
        )


@dataclass(frozen=True)
class RuntimeSection:
    """The runtime as the runtime probe saw it; ``error`` says why there is no name and version."""

    name: str | None = None
    version: str | None = None
    api_version: str | None = None
    endpoint: str | None = None
    error: str | None = None

    @classmethod
    def from_results(cls, results: Iterable[ProbeResult], endpoint: str | None) -> RuntimeSection:
        """From the runtime probe's result: its facts when it reached the runtime, else why it did not."""
        result = next((r for r in results if r.probe == RUNTIME_PROBE), None)
        if result is None:
            return cls(endpoint=endpoint, error="the runtime probe was not run")
        facts = result.facts
        if result.status is ProbeStatus.OK and facts.get("name"):
            return cls(
                name=_str(facts["name"]),
                version=_str(facts.get("version")),
                api_version=_str(facts.get("api_version")),
                endpoint=_str(facts.get("endpoint")),
            )
        unreachable = next((f for f in result.findings if f.id == "runtime.unreachable"), None)
        reason = unreachable.summary if unreachable else result.reason or "the runtime probe read nothing"
        return cls(endpoint=endpoint, error=reason)

    def to_document(self) -> dict[str, Any]:
        data = {k: getattr(self, k) for k in ("name", "version", "api_version", "endpoint")}
        if self.error is not None:
            data["error"] = self.error
        return data

    @classmethod
    def from_document(cls, data: dict[str, Any]) -> RuntimeSection:
        return cls(**{k: _opt(data.get(k)) for k in ("name", "version", "api_version", "endpoint", "error")})


@dataclass(frozen=True)
class CouldNotRun:
    """A probe whose silence is no all-clear: it errored, timed out or could not look where it should."""

    id: str
    title: str
    status: str
    reason: str


@dataclass(frozen=True)
class Verdict:
    """The worst severity found, and whether the verdict is unknown (and why)."""

    worst: Severity
    unknown: bool
    nothing_checked: bool
    could_not_run: tuple[CouldNotRun, ...] = ()

    @classmethod
    def of(cls, results: list[ProbeResult]) -> Verdict:
        """The worst severity found and the probes that could not run; ``unknown`` when any could not.

        A probe that errored, timed out or could not look where it should have leaves the verdict
        unknown: "nothing found" from the others is not an all-clear. A probe that does not apply to this
        run (post-mortem mode, a copied tree with no processes) does not, unless no probe ran at all:
        then nothing was checked (``nothing_checked``) and the verdict is unknown too.
        """
        missing = [r for r in results if r.could_not_run]
        nothing_checked = bool(results) and not any(r.status is ProbeStatus.OK for r in results)
        return cls(
            worst=worst([f for r in results for f in r.findings]),
            unknown=bool(missing) or nothing_checked,
            nothing_checked=nothing_checked,
            could_not_run=tuple(CouldNotRun(r.probe, r.title, str(r.status), r.reason) for r in missing),
        )

    @property
    def line(self) -> str:
        """Why the verdict is unknown, in one line; "" when it is not."""
        if self.could_not_run:
            return could_not_run_text([p.id for p in self.could_not_run])
        if self.nothing_checked:
            return "no probe ran: none of those selected applies to this run"
        return ""

    def to_document(self) -> dict[str, Any]:
        return {
            "worst": str(self.worst),
            "unknown": self.unknown,
            "nothing_checked": self.nothing_checked,
            "could_not_run": [asdict(p) for p in self.could_not_run],
        }

    @classmethod
    def from_document(cls, data: dict[str, Any]) -> Verdict:
        return cls(
            worst=Severity(data.get("worst") or "ok"),
            unknown=bool(data.get("unknown")),
            nothing_checked=bool(data.get("nothing_checked")),
            could_not_run=tuple(
                CouldNotRun(*(_str(p.get(k)) for k in ("id", "title", "status", "reason")))
                for p in data.get("could_not_run") or []
            ),
        )


def could_not_run_text(ids: list[str]) -> str:
    """ "2 probes could not run: snapshots, network": the line every writer shows beside the criticals."""
    return f"{len(ids)} probe{'s' if len(ids) != 1 else ''} could not run: {', '.join(ids)}"


@dataclass(frozen=True)
class ProbeRun:
    """How one probe ran (its findings are the report's, worst first, all together)."""

    id: str
    title: str
    status: ProbeStatus
    reason: str
    duration_ms: float
    not_applicable: bool
    could_not_run: bool

    @classmethod
    def of(cls, result: ProbeResult) -> ProbeRun:
        return cls.from_document(result.to_dict())

    def to_document(self) -> dict[str, Any]:
        return {**asdict(self), "status": str(self.status)}

    @classmethod
    def from_document(cls, data: dict[str, Any]) -> ProbeRun:
        return cls(
            id=_str(data.get("id")),
            title=_str(data.get("title")),
            status=ProbeStatus(data.get("status") or "error"),
            reason=_str(data.get("reason")),
            duration_ms=float(data.get("duration_ms") or 0.0),
            not_applicable=bool(data.get("not_applicable")),
            could_not_run=bool(data.get("could_not_run")),
        )


@dataclass(frozen=True)
class Inventory:
    """Every container on the node, or why they could not be listed."""

    items: tuple[PodContainer, ...] = ()
    error: str = ""

    def to_document(self) -> dict[str, Any]:
        return {"items": [c.to_dict() for c in self.items], "error": self.error}

    @classmethod
    def from_document(cls, data: dict[str, Any]) -> Inventory:
        return cls(tuple(PodContainer.from_dict(c) for c in data.get("items") or []), _str(data.get("error")))


@dataclass(frozen=True)
class WalkStep:
    """One step of a runbook walkthrough as the session recorded it."""

    step: str
    kind: str
    title: str
    entered_at: str = ""
    left_at: str = ""
    answer: str = ""
    answer_label: str = ""
    probes: tuple[ProbeResult, ...] = ()
    matched: tuple[str, ...] = ()
    note: str = ""

    def to_document(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "entered_at": self.entered_at,
            "left_at": self.left_at,
            "answer": self.answer,
            "answer_label": self.answer_label,
            "probes": [r.to_record(facts=False) for r in self.probes],
            "matched": list(self.matched),
            "note": self.note,
            "kind": self.kind,
            "title": self.title,
        }

    @classmethod
    def from_document(cls, data: dict[str, Any]) -> WalkStep:
        return cls(
            **{
                k: _str(data.get(k))
                for k in ("step", "kind", "title", "entered_at", "left_at", "answer", "answer_label", "note")
            },
            probes=tuple(ProbeResult.from_record(r) for r in data.get("probes") or []),
            matched=tuple(str(m) for m in data.get("matched") or []),
        )


@dataclass(frozen=True)
class Conclusion:
    """Where a walkthrough ended: the diagnosis, its severity, and what to do."""

    step: str
    diagnosis: str
    severity: Severity
    summary: str
    remediation: tuple[Remedy, ...] = ()
    references: tuple[str, ...] = ()
    findings: tuple[str, ...] = ()

    def to_document(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "diagnosis": self.diagnosis,
            "severity": str(self.severity),
            "summary": self.summary,
            "remediation": [asdict(r) for r in self.remediation],
            "references": list(self.references),
            "findings": list(self.findings),
        }

    @classmethod
    def from_document(cls, data: dict[str, Any]) -> Conclusion:
        return cls(
            step=_str(data.get("step")),
            diagnosis=_str(data.get("diagnosis")),
            severity=Severity(data.get("severity") or "info"),
            summary=_str(data.get("summary")),
            remediation=tuple(Remedy(**r) for r in data.get("remediation") or []),
            references=tuple(str(r) for r in data.get("references") or []),
            findings=tuple(str(f) for f in data.get("findings") or []),
        )


@dataclass(frozen=True)
class Walkthrough:
    """A runbook session as saved by :meth:`tui.runbook.RunbookSession.to_dict`: the path and its end."""

    schema: str
    runbook_id: str
    runbook_title: str
    runbook_source: str
    started_at: str
    finished: bool
    path: tuple[WalkStep, ...] = ()
    conclusion: Conclusion | None = None

    def to_document(self) -> dict[str, Any]:
        return {
            "schema": self.schema,
            "runbook": {"id": self.runbook_id, "title": self.runbook_title, "source": self.runbook_source},
            "started_at": self.started_at,
            "finished": self.finished,
            "path": [s.to_document() for s in self.path],
            "conclusion": self.conclusion.to_document() if self.conclusion else None,
        }

    @classmethod
    def from_document(cls, data: dict[str, Any]) -> Walkthrough:
        runbook = data.get("runbook") or {}
        conclusion = data.get("conclusion")
        return cls(
            schema=_str(data.get("schema")),
            runbook_id=_str(runbook.get("id")),
            runbook_title=_str(runbook.get("title")),
            runbook_source=_str(runbook.get("source")),
            started_at=_str(data.get("started_at")),
            finished=bool(data.get("finished")),
            path=tuple(WalkStep.from_document(s) for s in data.get("path") or []),
            conclusion=Conclusion.from_document(conclusion) if conclusion else None,
        )


@dataclass(frozen=True)
class Redaction:
    """What was removed before the report left the node (``enabled`` False: nothing, on request)."""

    enabled: bool
    values: int
    kinds: dict[str, int]
    marker: str
    rules: str

    @property
    def line(self) -> str:
        """The line at the top of every human-readable report."""
        if not self.enabled:
            return "NOT REDACTED (--no-redact): this report may contain passwords, tokens and container env values."
        kinds = ", ".join(f"{n} {k}" for k, n in self.kinds.items())
        return (
            f"Redacted {self.values} value(s)"
            + (f": {kinds}" if kinds else "")
            + f" (shown as {self.marker})."
        )

    @classmethod
    def from_document(cls, data: dict[str, Any]) -> Redaction:
        return cls(
            enabled=bool(data.get("enabled", True)),
            values=int(data.get("values") or 0),
            kinds={str(k): int(v) for k, v in (data.get("kinds") or {}).items()},
            marker=_str(data.get("marker")) or "[redacted]",
            rules=_str(data.get("rules")),
        )


@dataclass(frozen=True)
class Report:
    """One node's findings report: what every writer formats and ``nodedoc fleet`` merges."""

    generated_at: str
    node: NodeIdentity
    runtime: RuntimeSection
    components: dict[str, str]
    options: RunOptions
    verdict: Verdict
    probes: tuple[ProbeRun, ...]
    findings: tuple[Finding, ...]
    containers: Inventory
    walkthrough: Walkthrough | None
    facts: dict[str, dict[str, Any]]
    redaction: Redaction
    schema: str = SCHEMA

    @property
    def exit_code(self) -> int:
        """0 nothing worse than info, 1 a warning, 2 a critical finding, 3 the verdict is unknown.

        A critical finding (2) wins over probes that could not run (3), which win over a warning (1).
        """
        severity = worst(list(self.findings))
        if severity is Severity.CRITICAL:
            return 2
        if self.verdict.line:
            return 3
        return 1 if severity is Severity.WARNING else 0

    def displayable(self) -> Report:
        """The report as the text, Markdown and HTML writers show it: every string from the node made
        inert (:mod:`tui.untrusted`); the runbook's hard-wrapped conclusion joined into one paragraph."""
        report = self
        walk = self.walkthrough
        if walk is not None and walk.conclusion is not None:
            conclusion = replace(walk.conclusion, summary=" ".join(walk.conclusion.summary.split()))
            report = replace(self, walkthrough=replace(walk, conclusion=conclusion))
        shown: Report = neutralise_data(report)
        return shown

    def to_document(self) -> dict[str, Any]:
        """The ``nodedoc.report/v1`` JSON document."""
        return {
            "schema": self.schema,
            "generated_at": self.generated_at,
            "node": asdict(self.node),
            "runtime": self.runtime.to_document(),
            "components": dict(self.components),
            "options": asdict(self.options),
            "verdict": self.verdict.to_document(),
            "probes": [p.to_document() for p in self.probes],
            "findings": [f.to_dict() for f in self.findings],
            "containers": self.containers.to_document(),
            "walkthrough": self.walkthrough.to_document() if self.walkthrough else None,
            "facts": dict(self.facts),
            "redaction": asdict(self.redaction),
        }

    @classmethod
    def from_document(cls, doc: Any) -> Report:
        """Read a report back; :class:`ReportError` when it is not one this version can read."""
        if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
            schema = doc.get("schema") if isinstance(doc, dict) else type(doc).__name__
            raise ReportError(f"not a {SCHEMA} report (schema {schema!r})")
        try:
            walk = doc.get("walkthrough")
            return cls(
                schema=SCHEMA,
                generated_at=_str(doc.get("generated_at")),
                node=NodeIdentity.from_document(doc.get("node") or {}),
                runtime=RuntimeSection.from_document(doc.get("runtime") or {}),
                components={str(k): _str(v) for k, v in (doc.get("components") or {}).items()},
                options=RunOptions.from_document(doc.get("options") or {}),
                verdict=Verdict.from_document(doc.get("verdict") or {}),
                probes=tuple(ProbeRun.from_document(p) for p in doc.get("probes") or []),
                findings=tuple(Finding.from_dict(f) for f in doc.get("findings") or []),
                containers=Inventory.from_document(doc.get("containers") or {}),
                walkthrough=Walkthrough.from_document(walk) if walk else None,
                facts={str(k): dict(v) for k, v in (doc.get("facts") or {}).items()},
                redaction=Redaction.from_document(doc.get("redaction") or {}),
            )
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise ReportError(f"not a readable {SCHEMA} report: {type(exc).__name__}: {exc}") from None


def component_versions(runtime: RuntimeSection, results: list[ProbeResult]) -> dict[str, str]:
    """containerd, shim, ctr and runc versions from the runtime and the probes that read the binaries."""
    versions: dict[str, str] = {}
    if runtime.name:
        versions[f"{runtime.name} (running)"] = runtime.version or ""
    facts = {r.probe: r.facts for r in results}
    for name, items in ((facts.get("service") or {}).get("binaries") or {}).items():
        for item in items[:1]:
            if isinstance(item, dict) and item.get("version"):
                versions[name] = f"{item['version']} ({item.get('path', '')})"
    runc = (facts.get("runc") or {}).get("runc") or {}
    if runc.get("version") and "runc" not in versions:
        versions["runc"] = f"{runc['version']} ({runc.get('binary') or ''})"
    return versions


def build_report(
    results: list[ProbeResult],
    node: NodeIdentity,
    options: RunOptions,
    *,
    containers: Inventory,
    walkthrough: Walkthrough | None = None,
    now: dt.datetime | None = None,
    redact: bool = True,
) -> Report:
    """The report of one run of the probes, redacted unless ``redact`` is False.

    ``node``, ``options`` and ``containers`` are the caller's (see :func:`tui.report.gather.report_of`);
    everything else comes from ``results``: the runtime block from the runtime probe, the component
    versions from the probes that read the binaries, the findings worst first, the verdict.
    """
    runtime = RuntimeSection.from_results(results, options.endpoint)
    report = Report(
        generated_at=(now or dt.datetime.now(dt.timezone.utc)).isoformat(timespec="seconds"),
        node=node,
        runtime=runtime,
        components=component_versions(runtime, results),
        options=options,
        verdict=Verdict.of(results),
        probes=tuple(ProbeRun.of(r) for r in results),
        findings=tuple(sort_worst_first([f for r in results for f in r.findings])),
        containers=containers,
        walkthrough=walkthrough,
        facts={r.probe: r.facts for r in results if r.facts},
        redaction=Redaction.from_document(not_redacted()),
    )
    if not redact:
        return report
    doc = report.to_document()
    del doc["redaction"]  # what the redactor says it removed, not something to redact
    cleaned, summary = redact_document(doc)
    return Report.from_document({**cleaned, "redaction": summary})
